"""Shape ops: reshape, permute (transpose), flatten, indexing. They move numbers, so backward moves the
gradient back: reshape it back, permute it back, or scatter it into the indexed places."""
import math

import numpy as np

from ..autograd import Function
from ..tensor import Tensor, as_tensor

__all__ = ["reshape", "permute", "flatten", "getitem", "unsqueeze", "squeeze", "cat", "stack", "pad"]


class Reshape(Function):
    """y = x seen with another shape (same number of elements);  dx = dy reshaped back."""

    @staticmethod
    def forward(ctx, x, *, shape):
        ctx.shape = x.shape
        return x.reshape(shape)

    @staticmethod
    def backward(ctx, grad):
        return grad.reshape(ctx.shape)


def reshape(x, shape) -> Tensor:
    x = as_tensor(x)
    try:
        target = x.data.reshape(shape).shape              # resolves a -1; a view, nothing is copied
    except ValueError:
        raise ValueError(f"reshape: cannot reshape a tensor of shape {x.shape} ({x.numel()} elements) "
                         f"into shape {tuple(shape)}") from None
    return Reshape.apply(x, shape=target)


class Permute(Function):
    """y = x with its axes reordered by ``axes``;  dx = dy with the inverse order."""

    @staticmethod
    def forward(ctx, x, *, axes):
        ctx.axes = axes
        return np.transpose(x, axes)

    @staticmethod
    def backward(ctx, grad):
        return np.transpose(grad, np.argsort(ctx.axes))


def permute(x, axes) -> Tensor:
    x = as_tensor(x)
    if sorted(a % x.ndim for a in axes) != list(range(x.ndim)):
        raise ValueError(f"permute: axes must be a permutation of 0..{x.ndim - 1}, got {tuple(axes)}")
    return Permute.apply(x, axes=tuple(a % x.ndim for a in axes))


def flatten(x, start_dim: int = 0, end_dim: int = -1) -> Tensor:
    """Merge axes ``start_dim..end_dim`` into one (PyTorch's ``torch.flatten``). (N, C, H, W) with
    start_dim=1 → (N, C·H·W)."""
    x = as_tensor(x)
    if x.ndim == 0:
        return reshape(x, (1,))
    start, end = start_dim % x.ndim, end_dim % x.ndim
    if start > end:
        raise ValueError(f"flatten: start_dim ({start_dim}) must not come after end_dim ({end_dim})")
    shape = x.shape[:start] + (math.prod(x.shape[start:end + 1]),) + x.shape[end + 1:]
    return reshape(x, shape)


class GetItem(Function):
    """y = x[index] (slices, ints, index arrays);  dx = zeros with dy added at the indexed places.
    ``np.add.at`` adds repeated indices once per occurrence, so ``x[[0, 0]]`` gets both gradients."""

    @staticmethod
    def forward(ctx, x, *, index):
        ctx.shape, ctx.dtype, ctx.index = x.shape, x.dtype, index
        return np.array(x[index], order="C")               # a copy: later in-place updates of x don't leak in

    @staticmethod
    def backward(ctx, grad):
        grad_x = np.zeros(ctx.shape, dtype=ctx.dtype)
        np.add.at(grad_x, ctx.index, grad)
        return grad_x


def getitem(x, index) -> Tensor:
    x = as_tensor(x)
    index = tuple(map(_index_array, index)) if isinstance(index, tuple) else _index_array(index)
    return GetItem.apply(x, index=index)


def _index_array(index):
    """A Tensor used as an index: its boolean mask as it is (``t[t > 2]``), anything else as int64 positions."""
    if not isinstance(index, Tensor):
        return index
    return index.data if index.dtype == np.bool_ else index.data.astype(np.int64)


def unsqueeze(x, dim: int) -> Tensor:
    """A new axis of size 1 at ``dim`` (from −ndim − 1 to ndim), as PyTorch."""
    x = as_tensor(x)
    if not -x.ndim - 1 <= dim <= x.ndim:
        raise ValueError(f"unsqueeze: dim {dim} is out of range for a {x.ndim}-D tensor")
    dim = dim % (x.ndim + 1)
    return reshape(x, x.shape[:dim] + (1,) + x.shape[dim:])


def squeeze(x, dim=None) -> Tensor:
    """Drop axes of size 1: all of them, or those of ``dim`` (an int or tuple; an axis not of size 1 stays)."""
    x = as_tensor(x)
    if dim is None:
        dims = {a for a, n in enumerate(x.shape) if n == 1}
    else:
        dims = set()
        for d in (dim if isinstance(dim, (tuple, list)) else (dim,)):
            if not -max(x.ndim, 1) <= d < max(x.ndim, 1):
                raise ValueError(f"squeeze: dim {d} is out of range for a {x.ndim}-D tensor")
            if x.ndim and x.shape[d % x.ndim] == 1:
                dims.add(d % x.ndim)
    return reshape(x, tuple(n for a, n in enumerate(x.shape) if a not in dims))


class Cat(Function):
    """y = the inputs joined along ``axis``;  each input's gradient is its slice of dy."""

    @staticmethod
    def forward(ctx, *xs, axis):
        ctx.axis, ctx.sizes = axis, [x.shape[axis] for x in xs]
        return np.concatenate(xs, axis=axis)

    @staticmethod
    def backward(ctx, grad):
        return tuple(np.split(grad, np.cumsum(ctx.sizes)[:-1], axis=ctx.axis))


def cat(tensors, dim: int = 0) -> Tensor:
    """Join tensors of one shape but along ``dim`` (``torch.cat``)."""
    tensors = [as_tensor(t) for t in tensors]
    if not tensors:
        raise ValueError("cat: expected a non-empty sequence of tensors")
    ndim = tensors[0].ndim
    if ndim == 0 or not -ndim <= dim < ndim:
        raise ValueError(f"cat: dim {dim} is out of range for {ndim}-D tensors")
    axis = dim % ndim
    for k, t in enumerate(tensors):
        if t.ndim != ndim or t.shape[:axis] + t.shape[axis + 1:] != tensors[0].shape[:axis] + tensors[0].shape[axis + 1:]:
            raise ValueError(f"cat: tensor {k} has shape {t.shape}, which differs from tensor 0's {tensors[0].shape} "
                             f"outside dim {dim}")
        if t.dtype != tensors[0].dtype:
            raise TypeError(f"cat: tensor {k} is {t.dtype}, tensor 0 is {tensors[0].dtype}")
    return Cat.apply(*tensors, axis=axis)


def stack(tensors, dim: int = 0) -> Tensor:
    """Tensors of one shape stacked along a new axis ``dim`` (``torch.stack``)."""
    tensors = [as_tensor(t) for t in tensors]
    if not tensors:
        raise ValueError("stack: expected a non-empty sequence of tensors")
    for k, t in enumerate(tensors):
        if t.shape != tensors[0].shape:
            raise ValueError(f"stack: tensor {k} has shape {t.shape}, tensor 0 has {tensors[0].shape}")
    return cat([unsqueeze(t, dim) for t in tensors], dim)


class Pad(Function):
    """y = x with ``before[a]`` and ``after[a]`` cells of ``value`` added along each axis a (negative: cells
    cut off);  dx = dy with the added cells cut off again (and zeros where cells were cut)."""

    @staticmethod
    def forward(ctx, x, *, widths, value):
        ctx.shape, ctx.widths = x.shape, widths
        cut = tuple(slice(-min(b, 0), n + min(a, 0)) for (b, a), n in zip(widths, x.shape))
        return np.pad(x[cut], [(max(b, 0), max(a, 0)) for b, a in widths], constant_values=value)

    @staticmethod
    def backward(ctx, grad):
        inner = tuple(slice(max(b, 0), n - max(a, 0)) for (b, a), n in zip(ctx.widths, grad.shape))
        return np.pad(grad[inner], [(-min(b, 0), -min(a, 0)) for b, a in ctx.widths])


def pad(input, pad, mode: str = "constant", value=None) -> Tensor:
    """``torch.nn.functional.pad``: ``pad`` = (left, right) for the last axis, then (top, bottom) for the one
    before, and so on; negative numbers cut cells off. Only ``mode='constant'`` (``value``, default 0)."""
    x = as_tensor(input)
    if mode != "constant":
        raise NotImplementedError(f"pad: mode {mode!r} is not supported; only 'constant'")
    if not isinstance(pad, (tuple, list)) or len(pad) % 2 or len(pad) // 2 > x.ndim or not all(
            isinstance(p, (int, np.integer)) for p in pad):
        raise ValueError(f"pad: expected an even number of ints, two per padded axis (at most {x.ndim} axes), "
                         f"got {pad!r}")
    widths = [(0, 0)] * x.ndim
    for k in range(len(pad) // 2):
        widths[x.ndim - 1 - k] = (int(pad[2 * k]), int(pad[2 * k + 1]))
    for (b, a), n in zip(widths, x.shape):
        if n + b + a < 0 or n + min(b, 0) + min(a, 0) < 0:
            raise ValueError(f"pad: padding {pad} would leave an axis of size {n} with a negative size")
    return Pad.apply(x, widths=tuple(widths), value=0.0 if value is None else float(value))
