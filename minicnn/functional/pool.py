"""Pooling: ``max_pool2d``, ``avg_pool2d``, ``global_avg_pool2d``, ``blur_pool2d``, differentiable.

The loops, and the window and divisor rules, are in ``minicnn/plain/pool.py``. Pooling has no parameters: it
summarises each K × K window of each channel by one number, so a feature that moves by less than the stride
inside its window, or a pixel that is masked, may leave the output unchanged.

    OH = floor((H + 2P − D·(K − 1) − 1) / S) + 1    (ceil_mode: rounded up, but the last window must start
                                                     inside the input or its left padding)

What backward needs: max pooling saves the argmax of each window (never recomputes it), average pooling only
the geometry.
"""
import numbers

import numpy as np

from .. import engine
from ..autograd import Function
from ..shapes import check_input_ndim, output_size, pair, pool2d_geometry
from ..tensor import Tensor, as_tensor
from ._batch import run_batched

__all__ = ["max_pool2d", "avg_pool2d", "global_avg_pool2d", "blur_pool2d"]


class MaxPool2d(Function):
    """Inputs: x (N, C, H, W). Settings: kernel, stride, padding, dilation, out_size, checked pairs.
    Output: (N, C, OH, OW)."""

    @staticmethod
    def forward(ctx, x, *, kernel, stride, padding, dilation, out_size):
        y, argmax = engine.max_pool2d_forward(np.ascontiguousarray(x), kernel, stride, padding, dilation, out_size)
        ctx.save_for_backward(argmax)
        ctx.in_size = x.shape[2:]
        return y

    @staticmethod
    def backward(ctx, grad):
        (argmax,) = ctx.saved
        return engine.max_pool2d_backward(np.ascontiguousarray(grad), argmax, ctx.in_size)


def max_pool2d(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode: bool = False,
               return_indices: bool = False) -> Tensor:
    """The maximum of each window (``torch.nn.functional.max_pool2d``).

    Args:
        input: (N, C, H, W) or (C, H, W).
        kernel_size: window size, an int or a pair. stride: defaults to ``kernel_size``.
        padding: implicit padding on both sides, at most half the window; padded cells never win.
        dilation: the spacing of the window's cells.
        ceil_mode: round the output size up (see module docstring).
        return_indices: not supported yet (raises).

    >>> import numpy as np, minicnn as mc, minicnn.functional as F
    >>> F.max_pool2d(mc.Tensor(np.arange(1, 17).reshape(1, 1, 4, 4)), 2).numpy()[0, 0].tolist()
    [[6.0, 8.0], [14.0, 16.0]]
    """
    if return_indices:
        raise NotImplementedError("max_pool2d: return_indices=True is not supported yet")
    x = as_tensor(input)
    kernel, stride, padding, dilation, out_size = pool2d_geometry(x.shape, kernel_size, stride, padding, ceil_mode,
                                                                  "max_pool2d", dilation)
    return run_batched("max_pool2d", lambda xb: MaxPool2d.apply(xb, kernel=kernel, stride=stride, padding=padding,
                                                                dilation=dilation, out_size=out_size), x)


class AvgPool2d(Function):
    """Inputs: x (N, C, H, W). Settings: kernel, stride, padding, out_size, count_include_pad, divisor_override."""

    @staticmethod
    def forward(ctx, x, *, kernel, stride, padding, out_size, count_include_pad, divisor_override):
        ctx.in_size = x.shape[2:]
        ctx.settings = (kernel, stride, padding, count_include_pad, divisor_override)
        return engine.avg_pool2d_forward(np.ascontiguousarray(x), kernel, stride, padding, out_size,
                                         count_include_pad, divisor_override)

    @staticmethod
    def backward(ctx, grad):
        return engine.avg_pool2d_backward(np.ascontiguousarray(grad), ctx.in_size, *ctx.settings)


def avg_pool2d(input, kernel_size, stride=None, padding=0, ceil_mode: bool = False, count_include_pad: bool = True,
               divisor_override=None) -> Tensor:
    """The mean of each window (``torch.nn.functional.avg_pool2d``).

    Args as ``max_pool2d`` (no dilation), and ``count_include_pad``: whether padded zeros count in the divisor;
    ``divisor_override``: a positive int to divide every window's sum by instead.

    >>> import numpy as np, minicnn as mc, minicnn.functional as F
    >>> F.avg_pool2d(mc.Tensor(np.arange(1, 17).reshape(1, 1, 4, 4)), 2).numpy()[0, 0].tolist()
    [[3.5, 5.5], [11.5, 13.5]]
    """
    x = as_tensor(input)
    kernel, stride, padding, _, out_size = pool2d_geometry(x.shape, kernel_size, stride, padding, ceil_mode,
                                                           "avg_pool2d")
    if divisor_override is not None and (not isinstance(divisor_override, numbers.Integral)
                                         or isinstance(divisor_override, bool) or divisor_override <= 0):
        raise ValueError(f"avg_pool2d: divisor_override must be None or a positive int, got {divisor_override!r}")
    divisor = None if divisor_override is None else int(divisor_override)
    return run_batched("avg_pool2d", lambda xb: AvgPool2d.apply(
        xb, kernel=kernel, stride=stride, padding=padding, out_size=out_size,
        count_include_pad=bool(count_include_pad), divisor_override=divisor), x)


class GlobalAvgPool2d(Function):
    """Inputs: x (N, C, H, W). Output: (N, C, 1, 1), each plane's mean."""

    @staticmethod
    def forward(ctx, x):
        ctx.in_size = x.shape[2:]
        return engine.global_avg_pool2d_forward(np.ascontiguousarray(x))

    @staticmethod
    def backward(ctx, grad):
        return engine.global_avg_pool2d_backward(np.ascontiguousarray(grad), ctx.in_size)


def global_avg_pool2d(x) -> Tensor:
    """The mean of each channel: (N, C, H, W) → (N, C, 1, 1), as PyTorch's ``adaptive_avg_pool2d(x, 1)``."""
    x = as_tensor(x)
    check_input_ndim(x.shape, "global_avg_pool2d")
    return run_batched("global_avg_pool2d", GlobalAvgPool2d.apply, x)


class BlurPool2d(Function):
    """Inputs: x (N, C, H, W). Settings: stride, out_size. Output: (N, C, OH, OW), blurred then subsampled."""

    @staticmethod
    def forward(ctx, x, *, stride, out_size):
        ctx.in_size, ctx.stride = x.shape[2:], stride
        return engine.blur_pool2d_forward(np.ascontiguousarray(x), stride, out_size)

    @staticmethod
    def backward(ctx, grad):
        return engine.blur_pool2d_backward(np.ascontiguousarray(grad), ctx.in_size, ctx.stride)


def blur_pool2d(x, stride: int = 2) -> Tensor:
    """Anti-aliased downsampling (Zhang, 2019): blur each channel with [1, 2, 1]ᵀ[1, 2, 1] / 16 (reflect
    padding), then keep every ``stride``-th row and column. (N, C, H, W) → (N, C, ⌊(H − 1)/S⌋ + 1, ...).

    >>> import numpy as np, minicnn as mc, minicnn.functional as F
    >>> F.blur_pool2d(mc.Tensor(np.ones((1, 1, 4, 4)))).numpy()[0, 0].tolist()    # a flat image stays flat
    [[1.0, 1.0], [1.0, 1.0]]
    """
    x = as_tensor(x)
    check_input_ndim(x.shape, "blur_pool2d")
    s = pair(stride, "stride", "blur_pool2d")[0]
    if s <= 0:
        raise ValueError(f"blur_pool2d: stride must be positive, got {stride!r}")
    H, W = x.shape[-2:]
    if H < 2 or W < 2:
        raise ValueError(f"blur_pool2d: reflect padding needs an input of at least 2 × 2, got {(H, W)}")
    out_size = (output_size(H, 3, s, 1), output_size(W, 3, s, 1))
    return run_batched("blur_pool2d", lambda xb: BlurPool2d.apply(xb, stride=s, out_size=out_size), x)
