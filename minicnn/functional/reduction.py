"""Reductions: sum, mean, max over some axes. One ``Function`` per op, its wrapper right below.

Backward of a reduction spreads the gradient of each result back over the elements it was computed from:
the gradient of the reduced shape is first given its axes back (size 1) and then broadcast.
"""
import numpy as np

from ..autograd import Function
from ..tensor import Tensor, as_tensor

__all__ = ["sum", "mean", "max"]


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


def sum(x, axis=None, keepdims: bool = False) -> Tensor:  # noqa: A001
    x = as_tensor(x)
    return Sum.apply(x, axes=_normalise_axis(axis, x.ndim, "sum"), keepdims=keepdims)


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


def mean(x, axis=None, keepdims: bool = False) -> Tensor:
    x = as_tensor(x)
    return Mean.apply(x, axes=_normalise_axis(axis, x.ndim, "mean"), keepdims=keepdims)


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


def max(x, axis=None, keepdims: bool = False) -> Tensor:  # noqa: A001
    x = as_tensor(x)
    if x.size == 0:
        raise ValueError("max: cannot reduce an empty tensor")
    return Max.apply(x, axes=_normalise_axis(axis, x.ndim, "max"), keepdims=keepdims)
