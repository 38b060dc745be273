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
from ..shapes import check_input_ndim, output_size, pair, pool2d_args, pool2d_geometry
from ..tensor import Tensor, as_tensor
from ._batch import run_batched

__all__ = ["max_pool2d", "max_unpool2d", "avg_pool2d", "adaptive_avg_pool2d", "adaptive_max_pool2d",
           "global_avg_pool2d", "blur_pool2d"]


class _ToArgmax(Function):
    """What max poolings share: the forward keeps each window's argmax (and hands it to ``indices``, a dict,
    when ``return_indices`` asks for it); the backward sends each gradient to its argmax."""

    @staticmethod
    def keep(ctx, argmax, in_size, indices):
        ctx.save_for_backward(argmax)
        ctx.in_size = in_size
        if indices is not None:
            indices["argmax"] = argmax

    @staticmethod
    def backward(ctx, grad):
        (argmax,) = ctx.saved
        return engine.max_pool2d_backward(np.ascontiguousarray(grad), argmax, ctx.in_size)


def _with_indices(op, function, x, return_indices, **settings):
    """``function.apply`` on x (batched or not), and the argmax as an int64 Tensor when ``return_indices``."""
    found = {} if return_indices else None
    y = run_batched(op, lambda xb: function.apply(xb, indices=found, **settings), x)
    return (y, Tensor._wrap(found["argmax"].reshape(y.shape))) if return_indices else y


class MaxPool2d(_ToArgmax):
    """Inputs: x (N, C, H, W). Settings: kernel, stride, padding, dilation, out_size, checked pairs.
    Output: (N, C, OH, OW)."""

    @staticmethod
    def forward(ctx, x, *, kernel, stride, padding, dilation, out_size, indices=None):
        y, argmax = engine.max_pool2d_forward(np.ascontiguousarray(x), kernel, stride, padding, dilation, out_size)
        _ToArgmax.keep(ctx, argmax, x.shape[2:], indices)
        return y


def max_pool2d(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode: bool = False,
               return_indices: bool = False):
    """The maximum of each window (``torch.nn.functional.max_pool2d``).

    Args:
        input: (N, C, H, W) or (C, H, W).
        kernel_size: window size, an int or a pair. stride: defaults to ``kernel_size``.
        padding: implicit padding on both sides, at most half the window; padded cells never win.
        dilation: the spacing of the window's cells.
        ceil_mode: round the output size up (see module docstring).
        return_indices: also return where each maximum was, as int64 flat indices h·W + w into its input plane
            (what ``max_unpool2d`` takes).

    >>> import numpy as np, minicnn as mc, minicnn.functional as F
    >>> F.max_pool2d(mc.Tensor(np.arange(1, 17).reshape(1, 1, 4, 4)), 2).numpy()[0, 0].tolist()
    [[6.0, 8.0], [14.0, 16.0]]
    """
    x = as_tensor(input)
    kernel, stride, padding, dilation, out_size = pool2d_geometry(x.shape, kernel_size, stride, padding, ceil_mode,
                                                                  "max_pool2d", dilation)
    return _with_indices("max_pool2d", MaxPool2d, x, return_indices, kernel=kernel, stride=stride, padding=padding,
                         dilation=dilation, out_size=out_size)


class MaxUnpool2d(Function):
    """The inverse of max pooling where it can be: each value goes back to the place its index names, zeros
    elsewhere. Inputs: x and indices (N, C, h, w); out_size (H, W). dx = dy at those places."""

    @staticmethod
    def forward(ctx, x, *, indices, out_size):
        N, C = x.shape[:2]
        y = np.zeros((N * C, out_size[0] * out_size[1]), dtype=x.dtype)
        flat = indices.reshape(N * C, -1)
        np.put_along_axis(y, flat, x.reshape(N * C, -1), axis=1)
        ctx.flat, ctx.x_shape = flat, x.shape
        return y.reshape((N, C) + tuple(out_size))

    @staticmethod
    def backward(ctx, grad):
        g = grad.reshape(ctx.flat.shape[0], -1)
        return np.take_along_axis(g, ctx.flat, axis=1).reshape(ctx.x_shape)


def max_unpool2d(input, indices, kernel_size, stride=None, padding=0, output_size=None) -> Tensor:
    """``torch.nn.functional.max_unpool2d``: put each value of ``input`` back where ``indices`` (from
    ``max_pool2d(..., return_indices=True)``) says, zeros elsewhere. The output is (H, W) =
    ((h − 1)·S − 2P + K) per axis, or ``output_size`` (its last two numbers), within a stride of that."""
    x = as_tensor(input)
    check_input_ndim(x.shape, "max_unpool2d")
    idx = indices.data if isinstance(indices, Tensor) else np.asarray(indices)
    if idx.shape != x.shape or idx.dtype.kind not in "iu":
        raise ValueError(f"max_unpool2d: indices must be integers of the input's shape {x.shape}, got "
                         f"{idx.dtype} of shape {idx.shape}")
    kernel, stride, padding, _ = pool2d_args(kernel_size, stride, padding, "max_unpool2d")   # the pooling's checks
    default = tuple((n - 1) * s - 2 * p + k for n, s, p, k in zip(x.shape[-2:], stride, padding, kernel))
    if output_size is None:
        out_size = default
    else:
        out_size = tuple(int(n) for n in tuple(output_size)[-2:])
        for n, d, s in zip(out_size, default, stride):
            if not d - s < n < d + s:
                raise ValueError(f"max_unpool2d: output_size {tuple(output_size)} must be within a stride of the "
                                 f"default {default}, i.e. between {tuple(d - s + 1 for d, s in zip(default, stride))}"
                                 f" and {tuple(d + s - 1 for d, s in zip(default, stride))}")
    if idx.size and (idx.min() < 0 or idx.max() >= out_size[0] * out_size[1]):
        raise ValueError(f"max_unpool2d: indices must lie in [0, {out_size[0] * out_size[1]}) for an output of "
                         f"size {out_size}, got {idx.min()} to {idx.max()}")
    if x.ndim == 3:
        return MaxUnpool2d.apply(x.unsqueeze(0), indices=idx[None].astype(np.int64), out_size=out_size).squeeze(0)
    return MaxUnpool2d.apply(x, indices=idx.astype(np.int64), out_size=out_size)


def _adaptive_windows(size, out):
    """PyTorch's adaptive windows along one axis: window i covers [floor(i·size/out), ceil((i + 1)·size/out))."""
    return [(i * size // out, -(-(i + 1) * size // out)) for i in range(out)]


def _adaptive_out_size(x_shape, output_size, op):
    check_input_ndim(x_shape, op)
    sizes = (output_size, output_size) if not isinstance(output_size, (tuple, list)) else tuple(output_size)
    if len(sizes) != 2:
        raise ValueError(f"{op}: output_size must be an int or a pair, got {output_size!r}")
    out = tuple(x_shape[-2 + a] if n is None else n for a, n in enumerate(sizes))
    if not all(isinstance(n, (int, np.integer)) and n > 0 for n in out):
        raise ValueError(f"{op}: output_size must hold positive ints (or None), got {output_size!r}")
    return tuple(int(n) for n in out)


class AdaptiveAvgPool2d(Function):
    """y[:, :, i, j] = the mean of window (i, j) (``_adaptive_windows``);  dx: g / (the window's cells) to
    each of its cells. Windows may overlap by a cell when the sizes do not divide; gradients then add up."""

    @staticmethod
    def forward(ctx, x, *, out_size):
        ctx.in_shape, ctx.rows, ctx.cols = x.shape, _adaptive_windows(x.shape[2], out_size[0]), \
            _adaptive_windows(x.shape[3], out_size[1])
        y = np.empty(x.shape[:2] + tuple(out_size), dtype=x.dtype)
        for i, (h0, h1) in enumerate(ctx.rows):
            for j, (w0, w1) in enumerate(ctx.cols):
                y[:, :, i, j] = x[:, :, h0:h1, w0:w1].mean(axis=(2, 3))
        return y

    @staticmethod
    def backward(ctx, grad):
        grad_x = np.zeros(ctx.in_shape, dtype=grad.dtype)
        for i, (h0, h1) in enumerate(ctx.rows):
            for j, (w0, w1) in enumerate(ctx.cols):
                grad_x[:, :, h0:h1, w0:w1] += (grad[:, :, i, j] / ((h1 - h0) * (w1 - w0)))[:, :, None, None]
        return grad_x


def adaptive_avg_pool2d(input, output_size) -> Tensor:
    """The mean over windows that tile the input into ``output_size`` (an int, a pair; None keeps that axis),
    PyTorch's ``adaptive_avg_pool2d``. ``global_avg_pool2d`` is the output size 1."""
    x = as_tensor(input)
    out_size = _adaptive_out_size(x.shape, output_size, "adaptive_avg_pool2d")
    return run_batched("adaptive_avg_pool2d", lambda xb: AdaptiveAvgPool2d.apply(xb, out_size=out_size), x)


class AdaptiveMaxPool2d(_ToArgmax):
    """y[:, :, i, j] = the maximum of window (i, j), its argmax (flat h·W + w, first maximum, a NaN wins) kept;
    dx = dy at each argmax."""

    @staticmethod
    def forward(ctx, x, *, out_size, indices=None):
        N, C, H, W = x.shape
        y = np.empty((N, C) + tuple(out_size), dtype=x.dtype)
        argmax = np.empty((N, C) + tuple(out_size), dtype=np.int64)
        for i, (h0, h1) in enumerate(_adaptive_windows(H, out_size[0])):
            for j, (w0, w1) in enumerate(_adaptive_windows(W, out_size[1])):
                window = x[:, :, h0:h1, w0:w1].reshape(N, C, -1)
                nan = np.isnan(window)
                last_nan = window.shape[2] - 1 - np.argmax(nan[:, :, ::-1], axis=2)
                k = np.where(nan.any(axis=2), last_nan, np.argmax(window, axis=2))
                y[:, :, i, j] = np.take_along_axis(window, k[:, :, None], axis=2)[:, :, 0]
                argmax[:, :, i, j] = (h0 + k // (w1 - w0)) * W + w0 + k % (w1 - w0)
        _ToArgmax.keep(ctx, argmax, (H, W), indices)
        return y


def adaptive_max_pool2d(input, output_size, return_indices: bool = False):
    """The maximum over windows that tile the input into ``output_size``, PyTorch's ``adaptive_max_pool2d``;
    with ``return_indices``, also where each maximum was (flat h·W + w in its plane)."""
    x = as_tensor(input)
    out_size = _adaptive_out_size(x.shape, output_size, "adaptive_max_pool2d")
    return _with_indices("adaptive_max_pool2d", AdaptiveMaxPool2d, x, return_indices, out_size=out_size)


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
