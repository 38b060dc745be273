"""The layers of a classic CNN. Each holds its settings and parameters and calls one ``minicnn.functional``
op in ``forward``; none re-implements maths or calls a kernel.

Names, arguments, defaults and printed forms follow PyTorch (``torch.nn``), so code and habits carry over.
"""
import numbers

from .. import functional as F
from ..shapes import check_groups, conv2d_args, pool2d_args
from . import init
from .module import Module, Parameter

__all__ = ["Conv2d", "MaxPool2d", "MaxUnpool2d", "AvgPool2d", "AdaptiveAvgPool2d", "AdaptiveMaxPool2d",
           "GlobalAvgPool2d", "BlurPool2d", "ReLU", "Linear", "Flatten", "Dropout"]


def _positive_int(value, name, op):
    if not isinstance(value, numbers.Integral) or isinstance(value, bool) or value <= 0:
        raise ValueError(f"{op}: {name} must be a positive int, got {value!r}")
    return int(value)


class Conv2d(Module):
    """2-D convolution layer: (N, C_in, H, W) → (N, C_out, OH, OW), OH = floor((H + 2P − D·(KH − 1) − 1)/S) + 1.

    Arguments and defaults are PyTorch's, in its order: ``Conv2d(in_channels, out_channels, kernel_size,
    stride=1, padding=0, dilation=1, groups=1, bias=True, padding_mode='zeros')``.
    Parameters: ``weight`` (C_out, C_in / groups, KH, KW) and ``bias`` (C_out,), initialised as PyTorch does
    (``nn/init.py``). Conv2d(1, 6, 5) has 6 · 1 · 5 · 5 + 6 = 156.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size, stride=1, padding=0, dilation=1,
                 groups: int = 1, bias: bool = True, padding_mode: str = "zeros"):
        super().__init__()
        self.in_channels = _positive_int(in_channels, "in_channels", "Conv2d")
        self.out_channels = _positive_int(out_channels, "out_channels", "Conv2d")
        self.kernel_size, self.stride, self.padding, self.dilation = conv2d_args(kernel_size, stride, padding,
                                                                                 "Conv2d", dilation)
        self.groups = check_groups(groups, self.in_channels, self.out_channels, "Conv2d")
        if padding_mode != "zeros":
            raise NotImplementedError(f"Conv2d: padding_mode {padding_mode!r} is not supported; only 'zeros'")
        self.padding_mode = padding_mode
        shape = (self.out_channels, self.in_channels // self.groups) + self.kernel_size
        self.weight = Parameter(init.default_weight(shape))
        self.bias = Parameter(init.default_bias(shape)) if bias else None

    def forward(self, x):
        return F.conv2d(x, self.weight, self.bias, self.stride, self.padding, self.dilation, self.groups)

    def extra_repr(self) -> str:
        text = f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, stride={self.stride}"
        if self.padding != (0, 0):
            text += f", padding={self.padding!r}" if isinstance(self.padding, str) else f", padding={self.padding}"
        if self.dilation != (1, 1):
            text += f", dilation={self.dilation}"
        if self.groups != 1:
            text += f", groups={self.groups}"
        return text + ("" if self.bias is not None else ", bias=False")


class _Pool2d(Module):
    """Settings shared by the pooling layers; pooling owns no parameters."""

    def __init__(self, kernel_size, stride=None, padding=0, dilation=1, ceil_mode: bool = False):
        super().__init__()
        pool2d_args(kernel_size, stride, padding, type(self).__name__, dilation)   # refuse bad settings now
        self.kernel_size = kernel_size
        self.stride = kernel_size if stride is None else stride
        self.padding = padding
        self.dilation = dilation
        self.ceil_mode = bool(ceil_mode)


class MaxPool2d(_Pool2d):
    """The maximum of each window: (N, C, H, W) → (N, C, OH, OW). PyTorch's arguments, in its order:
    ``MaxPool2d(kernel_size, stride=None, padding=0, dilation=1, return_indices=False, ceil_mode=False)``;
    ``stride`` defaults to ``kernel_size``."""

    def __init__(self, kernel_size, stride=None, padding=0, dilation=1, return_indices: bool = False,
                 ceil_mode: bool = False):
        super().__init__(kernel_size, stride, padding, dilation, ceil_mode)
        self.return_indices = bool(return_indices)

    def forward(self, x):
        """The pooled input; with ``return_indices``, ``(pooled, indices)`` for ``MaxUnpool2d``."""
        return F.max_pool2d(x, self.kernel_size, self.stride, self.padding, self.dilation, self.ceil_mode,
                            self.return_indices)

    def extra_repr(self) -> str:
        return (f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}, "
                f"dilation={self.dilation}, ceil_mode={self.ceil_mode}")


class AvgPool2d(_Pool2d):
    """The mean of each window: (N, C, H, W) → (N, C, OH, OW). PyTorch's arguments, in its order:
    ``AvgPool2d(kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True,
    divisor_override=None)``; ``count_include_pad``: padded zeros count in the divisor."""

    def __init__(self, kernel_size, stride=None, padding=0, ceil_mode: bool = False, count_include_pad: bool = True,
                 divisor_override=None):
        super().__init__(kernel_size, stride, padding, 1, ceil_mode)
        self.count_include_pad = bool(count_include_pad)
        self.divisor_override = divisor_override

    def forward(self, x):
        return F.avg_pool2d(x, self.kernel_size, self.stride, self.padding, self.ceil_mode, self.count_include_pad,
                            self.divisor_override)

    def extra_repr(self) -> str:
        text = f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"
        if self.ceil_mode:
            text += ", ceil_mode=True"
        if self.divisor_override is not None:
            text += f", divisor_override={self.divisor_override}"
        return text + ("" if self.count_include_pad else ", count_include_pad=False")


class MaxUnpool2d(Module):
    """Max pooling undone where it can be: each value back where ``MaxPool2d(return_indices=True)`` found it,
    zeros elsewhere (``F.max_unpool2d``). ``forward(input, indices, output_size=None)``."""

    def __init__(self, kernel_size, stride=None, padding=0):
        super().__init__()
        pool2d_args(kernel_size, stride, padding, "MaxUnpool2d")
        self.kernel_size, self.stride, self.padding = kernel_size, kernel_size if stride is None else stride, padding

    def forward(self, x, indices, output_size=None):
        return F.max_unpool2d(x, indices, self.kernel_size, self.stride, self.padding, output_size)

    def extra_repr(self) -> str:
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"


class AdaptiveAvgPool2d(Module):
    """The mean over windows that tile each plane into ``output_size`` (``F.adaptive_avg_pool2d``)."""

    def __init__(self, output_size):
        super().__init__()
        self.output_size = output_size

    def forward(self, x):
        return F.adaptive_avg_pool2d(x, self.output_size)

    def extra_repr(self) -> str:
        return f"output_size={self.output_size}"


class AdaptiveMaxPool2d(Module):
    """The maximum over windows that tile each plane into ``output_size`` (``F.adaptive_max_pool2d``)."""

    def __init__(self, output_size, return_indices: bool = False):
        super().__init__()
        self.output_size, self.return_indices = output_size, bool(return_indices)

    def forward(self, x):
        return F.adaptive_max_pool2d(x, self.output_size, self.return_indices)

    def extra_repr(self) -> str:
        return f"output_size={self.output_size}"


class GlobalAvgPool2d(Module):
    """The mean of each channel: (N, C, H, W) → (N, C, 1, 1) (PyTorch's ``AdaptiveAvgPool2d(1)``)."""

    def forward(self, x):
        return F.global_avg_pool2d(x)


class BlurPool2d(Module):
    """Anti-aliased downsampling (Zhang, 2019): a fixed [1, 2, 1]ᵀ[1, 2, 1] / 16 blur per channel, then
    stride ``stride``. Place it after a stride-1 max pooling: MaxPool2d(2, stride=1) → BlurPool2d(C) is the
    anti-aliased version of MaxPool2d(2). No parameters; ``channels`` is checked against the input."""

    def __init__(self, channels: int, stride: int = 2):
        super().__init__()
        self.channels = _positive_int(channels, "channels", "BlurPool2d")
        self.stride = _positive_int(stride, "stride", "BlurPool2d")

    def forward(self, x):
        if x.shape[-3] != self.channels:
            raise ValueError(f"BlurPool2d: expected input with {self.channels} channels, got shape {tuple(x.shape)}")
        return F.blur_pool2d(x, self.stride)

    def extra_repr(self) -> str:
        return f"channels={self.channels}, stride={self.stride}"


class ReLU(Module):
    """max(x, 0), elementwise. ``inplace`` is accepted for PyTorch's code and changes nothing here: the result
    is always a new tensor (the input keeps its values)."""

    def __init__(self, inplace: bool = False):
        super().__init__()
        self.inplace = bool(inplace)

    def forward(self, x):
        return F.relu(x)

    def extra_repr(self) -> str:
        return "inplace=True" if self.inplace else ""


class Linear(Module):
    """Fully connected layer: (N, in_features) → (N, out_features), y = x Wᵀ + b.

    Parameters: ``weight`` (out_features, in_features), ``bias`` (out_features,): Linear(400, 120) has 48,120.
    """

    def __init__(self, in_features: int, out_features: int, bias: bool = True):
        super().__init__()
        self.in_features = _positive_int(in_features, "in_features", "Linear")
        self.out_features = _positive_int(out_features, "out_features", "Linear")
        shape = (out_features, in_features)
        self.weight = Parameter(init.default_weight(shape))
        self.bias = Parameter(init.default_bias(shape)) if bias else None

    def forward(self, x):
        return F.linear(x, self.weight, self.bias)

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, bias={self.bias is not None}"


class Flatten(Module):
    """Merge axes ``start_dim..end_dim``: (N, C, H, W) → (N, C·H·W) with the defaults."""

    def __init__(self, start_dim: int = 1, end_dim: int = -1):
        super().__init__()
        self.start_dim, self.end_dim = start_dim, end_dim

    def forward(self, x):
        return F.flatten(x, self.start_dim, self.end_dim)

    def extra_repr(self) -> str:
        return f"start_dim={self.start_dim}, end_dim={self.end_dim}"


class Dropout(Module):
    """Zero each element with probability ``p`` while training (scaling the rest by 1/(1−p)); identity in eval."""

    def __init__(self, p: float = 0.5, inplace: bool = False):
        super().__init__()
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"Dropout: p must be a probability in [0, 1], got {p!r}")
        self.p, self.inplace = p, bool(inplace)        # inplace: accepted, the result is a new tensor (see ReLU)

    def forward(self, x):
        return F.dropout(x, self.p, self.training)

    def extra_repr(self) -> str:
        return f"p={self.p}"
