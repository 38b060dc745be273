"""Reductions: sum, mean, max, min over some axes (``dim``, PyTorch's name; ``axis`` is an alias), and argmax,
argmin. One ``Function`` per op, its wrapper right below.

Backward of a reduction spreads the gradient of each result back over the elements it was computed from:
the gradient of the reduced shape is first given its axes back (size 1) and then broadcast.

As in PyTorch, ``max(x)`` over every element returns the maximum (its gradient split among ties), while
``max(x, dim)`` returns ``(values, indices)``, the gradient going to each index (the first maximum). With
NumPy's ``axis=`` instead, ``max`` returns the values over those axes, as ``np.max`` does.
"""
import builtins
from collections import namedtuple

import numpy as np

from ..autograd import Function
from ..tensor import Tensor, as_tensor

__all__ = ["sum", "mean", "max", "min", "argmax", "argmin"]

#: What ``max(x, dim)`` and ``min(x, dim)`` return, as ``torch.return_types.max``: a pair with names.
MinMax = namedtuple("MinMax", ["values", "indices"])


def _axes_and_keep(op, dim, keepdim, axis, keepdims):
    """``dim``/``keepdim`` (PyTorch's names) or ``axis``/``keepdims`` (NumPy's), whichever was given."""
    if axis is not None:
        if dim is not None:
            raise TypeError(f"{op}: got both dim and axis; give one")
        dim = axis
    if keepdims is not None:
        keepdim = keepdims
    return dim, bool(keepdim)


def _normalise_axis(axis, ndim, op):
    """``axis`` (None, int or tuple) as a sorted tuple of non-negative ints; None means all axes."""
    if axis is None:
        return tuple(range(ndim))
    axes = (axis,) if isinstance(axis, (int, np.integer)) else tuple(axis)
    out = []
    for a in axes:
        if not -ndim <= a < ndim:
            raise ValueError(f"{op}: axis {a} is out of range for a {ndim}-D tensor")
        out.append(a % ndim)
    return tuple(sorted(set(out)))


def _expand(grad, axes, keepdims):
    """Give a reduced gradient back its reduced axes (as size 1), so it broadcasts against the input."""
    return grad if keepdims else np.expand_dims(grad, axes)


class Sum(Function):
    """y = Σ x over ``axes``;  dy/dx = 1 for every element summed."""

    @staticmethod
    def forward(ctx, x, *, axes, keepdims):
        ctx.shape, ctx.axes, ctx.keepdims = x.shape, axes, keepdims
        return np.sum(x, axis=axes, keepdims=keepdims)

    @staticmethod
    def backward(ctx, grad):
        return np.broadcast_to(_expand(grad, ctx.axes, ctx.keepdims), ctx.shape)


def sum(input, dim=None, keepdim: bool = False, *, axis=None, keepdims=None) -> Tensor:  # noqa: A001
    """Σ over ``dim`` (an int, a tuple, or None for every axis)."""
    x = as_tensor(input)
    dim, keepdim = _axes_and_keep("sum", dim, keepdim, axis, keepdims)
    return Sum.apply(x, axes=_normalise_axis(dim, x.ndim, "sum"), keepdims=keepdim)


class Mean(Function):
    """y = (1/n) Σ x over ``axes`` (n elements);  dy/dx = 1/n."""

    @staticmethod
    def forward(ctx, x, *, axes, keepdims):
        ctx.shape, ctx.axes, ctx.keepdims = x.shape, axes, keepdims
        ctx.count = int(np.prod([x.shape[a] for a in axes]))
        return np.mean(x, axis=axes, keepdims=keepdims)

    @staticmethod
    def backward(ctx, grad):
        share = _expand(grad, ctx.axes, ctx.keepdims) / ctx.count
        return np.broadcast_to(share, ctx.shape)


def mean(input, dim=None, keepdim: bool = False, *, axis=None, keepdims=None) -> Tensor:
    """The mean over ``dim`` (an int, a tuple, or None for every axis)."""
    x = as_tensor(input)
    dim, keepdim = _axes_and_keep("mean", dim, keepdim, axis, keepdims)
    return Mean.apply(x, axes=_normalise_axis(dim, x.ndim, "mean"), keepdims=keepdim)


class Max(Function):
    """y = max x over ``axes``;  the gradient goes to the elements equal to the maximum, split evenly among
    ties (PyTorch's ``amax`` rule; max pooling, by contrast, sends it to the first maximum only)."""

    @staticmethod
    def forward(ctx, x, *, axes, keepdims):
        y = np.max(x, axis=axes, keepdims=True)
        ctx.save_for_backward(x, y)
        ctx.axes, ctx.keepdims = axes, keepdims
        return y if keepdims else np.squeeze(y, axis=axes)

    @staticmethod
    def backward(ctx, grad):
        x, y = ctx.saved
        winners = (x == y) | (np.isnan(x) & np.isnan(y))
        share = _expand(grad, ctx.axes, ctx.keepdims) / np.sum(winners, axis=ctx.axes, keepdims=True)
        return np.where(winners, share, 0).astype(x.dtype)


class Pick(Function):
    """y = x at ``indices`` along axis ``axis`` (the values of max/min along a dim); dx = dy at those indices."""

    @staticmethod
    def forward(ctx, x, *, indices, axis, keepdims):
        ctx.shape, ctx.indices, ctx.axis = x.shape, indices, axis
        y = np.take_along_axis(x, indices, axis=axis)
        return y if keepdims else np.squeeze(y, axis=axis)

    @staticmethod
    def backward(ctx, grad):
        grad_x = np.zeros(ctx.shape, dtype=grad.dtype)
        g = grad if grad.ndim == len(ctx.shape) else np.expand_dims(grad, ctx.axis)
        np.put_along_axis(grad_x, ctx.indices, g, axis=ctx.axis)
        return grad_x


def _extreme(op, find, x, dim, keepdim, axis, keepdims):
    x = as_tensor(x)
    if x.numel() == 0:
        raise ValueError(f"{op}: cannot reduce an empty tensor")
    numpy_style = axis is not None                  # NumPy's axis=: the values over those axes, as np.max
    dim, keepdim = _axes_and_keep(op, dim, keepdim, axis, keepdims)
    if dim is None or numpy_style:
        axes = _normalise_axis(dim, x.ndim, op)
        return Max.apply(x, axes=axes, keepdims=keepdim) if op == "max" else -Max.apply(-x, axes=axes,
                                                                                        keepdims=keepdim)
    if not isinstance(dim, (int, np.integer)):
        raise TypeError(f"{op}: dim must be an int (one axis) when given, got {dim!r}")
    (a,) = _normalise_axis(dim, builtins.max(x.ndim, 1), op)
    data = x.data if x.ndim else x.data.reshape(1)
    indices = np.expand_dims(find(data, axis=a), a)
    values = Pick.apply(x if x.ndim else x.reshape(1), indices=indices, axis=a, keepdims=keepdim or not x.ndim)
    if not x.ndim:
        values = values.reshape(())
    return MinMax(values, Tensor._wrap(indices if keepdim and x.ndim else np.squeeze(indices, axis=a)))


def _first_nan_or(find):
    """np.argmax/argmin, except that a NaN wins (PyTorch's max and min propagate NaN)."""
    def pick(data, axis):
        nan = np.isnan(data)
        return np.where(nan.any(axis=axis), np.argmax(nan, axis=axis), find(data, axis=axis))
    return pick


def max(input, dim=None, keepdim: bool = False, *, axis=None, keepdims=None):  # noqa: A001
    """The largest element (``dim`` None: a Tensor), or ``(values, indices)`` along ``dim``, as PyTorch."""
    return _extreme("max", _first_nan_or(np.argmax), input, dim, keepdim, axis, keepdims)


def min(input, dim=None, keepdim: bool = False, *, axis=None, keepdims=None):  # noqa: A001
    """The smallest element (``dim`` None: a Tensor), or ``(values, indices)`` along ``dim``, as PyTorch."""
    return _extreme("min", _first_nan_or(np.argmin), input, dim, keepdim, axis, keepdims)


def argmax(input, dim=None, keepdim: bool = False) -> Tensor:
    """The index of the largest element (of the flattened tensor when ``dim`` is None), int64, no gradient."""
    x = as_tensor(input)
    if dim is None:
        return Tensor._wrap(np.asarray(_first_nan_or(np.argmax)(x.data.reshape(-1), axis=0), dtype=np.int64))
    return max(x, dim, keepdim).indices


def argmin(input, dim=None, keepdim: bool = False) -> Tensor:
    """The index of the smallest element (of the flattened tensor when ``dim`` is None), int64, no gradient."""
    x = as_tensor(input)
    if dim is None:
        return Tensor._wrap(np.asarray(_first_nan_or(np.argmin)(x.data.reshape(-1), axis=0), dtype=np.int64))
    return min(x, dim, keepdim).indices
