"""Pooling: ``max_pool2d``, ``avg_pool2d``, ``global_avg_pool2d``, differentiable.

Kernels: ``kernels/pool.py`` ↔ ``reference/pool.py`` (whose docstrings give the window and divisor rules).
Pooling has no parameters: it summarises each K × K window of each channel by one number, so a feature that
moves by less than the stride inside its window, or a pixel that is masked, may leave the output unchanged.

    OH = floor((H + 2P − K) / S) + 1     (ceil_mode: rounded up, but the last window must start inside the
                                          input or its left padding)

What backward needs: max pooling saves the argmax of each window (never recomputes it), average pooling only
the geometry.
"""
import numpy as np

from ..autograd import Function
from ..kernels import ahead, pool as kernels
from ..kernels.shapes import check_input_ndim, output_size, pair, pool2d_geometry
from ..tensor import Tensor, as_tensor
from ._batch import run_batched

__all__ = ["max_pool2d", "avg_pool2d", "global_avg_pool2d", "blur_pool2d"]


class MaxPool2d(Function):
    """Inputs: x (N, C, H, W). Settings: kernel, stride, padding, out_size, checked pairs. Output (N, C, OH, OW)."""

    @staticmethod
    def forward(ctx, x, *, kernel, stride, padding, out_size):
        y, argmax = kernels.max_pool2d_forward(np.ascontiguousarray(x), *kernel, *stride, *padding, *out_size)
        if any(ctx.needs_input_grad):
            ahead.expect("max_pool2d", x.dtype)      # the backward's kernel compiles meanwhile (kernels/ahead.py)
        ctx.save_for_backward(argmax)
        ctx.in_size = x.shape[2:]
        return y

    @staticmethod
    def backward(ctx, grad):
        (argmax,) = ctx.saved
        ahead.ready("max_pool2d", grad.dtype)
        return kernels.max_pool2d_backward(np.ascontiguousarray(grad), argmax, *ctx.in_size)


def max_pool2d(x, kernel_size, stride=None, padding=0, ceil_mode: bool = False) -> Tensor:
    """The maximum of each window.

    Args:
        x: (N, C, H, W) or (C, H, W).
        kernel_size: window size, an int or a pair. stride: defaults to ``kernel_size``.
        padding: implicit padding on both sides, at most half the kernel; padded cells never win.
        ceil_mode: round the output size up (see module docstring).

    >>> import numpy as np, minicnn as mc, minicnn.functional as F
    >>> F.max_pool2d(mc.Tensor(np.arange(1, 17).reshape(1, 1, 4, 4)), 2).numpy()[0, 0].tolist()
    [[6.0, 8.0], [14.0, 16.0]]
    """
    x = as_tensor(x)
    kernel, stride, padding, out_size = pool2d_geometry(x.shape, kernel_size, stride, padding, ceil_mode,
                                                        "max_pool2d")
    return run_batched("max_pool2d", lambda xb: MaxPool2d.apply(xb, kernel=kernel, stride=stride,
                                                                padding=padding, out_size=out_size), x)


class AvgPool2d(Function):
    """Inputs: x (N, C, H, W). Settings: kernel, stride, padding, out_size, count_include_pad."""

    @staticmethod
    def forward(ctx, x, *, kernel, stride, padding, out_size, count_include_pad):
        ctx.in_size = x.shape[2:]
        ctx.geometry = (*kernel, *stride, *padding)
        ctx.count_include_pad = count_include_pad
        if any(ctx.needs_input_grad):
            ahead.expect("avg_pool2d", x.dtype)      # the backward's kernels compile meanwhile (kernels/ahead.py)
        return kernels.avg_pool2d_forward(np.ascontiguousarray(x), *kernel, *stride, *padding, *out_size,
                                          count_include_pad)

    @staticmethod
    def backward(ctx, grad):
        ahead.ready("avg_pool2d", grad.dtype)
        return kernels.avg_pool2d_backward(np.ascontiguousarray(grad), *ctx.in_size, *ctx.geometry,
                                           ctx.count_include_pad)


def avg_pool2d(x, kernel_size, stride=None, padding=0, ceil_mode: bool = False,
               count_include_pad: bool = True) -> Tensor:
    """The mean of each window.

    Args as ``max_pool2d``, and ``count_include_pad``: whether padded zeros count in the divisor.

    >>> import numpy as np, minicnn as mc, minicnn.functional as F
    >>> F.avg_pool2d(mc.Tensor(np.arange(1, 17).reshape(1, 1, 4, 4)), 2).numpy()[0, 0].tolist()
    [[3.5, 5.5], [11.5, 13.5]]
    """
    x = as_tensor(x)
    kernel, stride, padding, out_size = pool2d_geometry(x.shape, kernel_size, stride, padding, ceil_mode,
                                                        "avg_pool2d")
    return run_batched("avg_pool2d", lambda xb: AvgPool2d.apply(
        xb, kernel=kernel, stride=stride, padding=padding, out_size=out_size,
        count_include_pad=bool(count_include_pad)), x)


class GlobalAvgPool2d(Function):
    """Inputs: x (N, C, H, W). Output: (N, C, 1, 1), each plane's mean."""

    @staticmethod
    def forward(ctx, x):
        ctx.in_size = x.shape[2:]
        if any(ctx.needs_input_grad):
            ahead.expect("global_avg_pool2d", x.dtype)   # its backward compiles meanwhile (kernels/ahead.py)
        return kernels.global_avg_pool2d_forward(np.ascontiguousarray(x))

    @staticmethod
    def backward(ctx, grad):
        ahead.ready("global_avg_pool2d", grad.dtype)
        return kernels.global_avg_pool2d_backward(np.ascontiguousarray(grad), *ctx.in_size)


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
        return kernels.blur_pool2d_forward(np.ascontiguousarray(x), stride, *out_size)

    @staticmethod
    def backward(ctx, grad):
        return kernels.blur_pool2d_backward(np.ascontiguousarray(grad), *ctx.in_size, ctx.stride)


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
