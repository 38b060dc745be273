"""Shape ops: reshape, permute (transpose), flatten, indexing. They move numbers, so backward moves the
gradient back: reshape it back, permute it back, or scatter it into the indexed places."""
import numpy as np

from ..autograd import Function
from ..tensor import Tensor, as_tensor

__all__ = ["reshape", "permute", "flatten", "getitem"]


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
        raise ValueError(f"reshape: cannot reshape a tensor of shape {x.shape} ({x.size} elements) "
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
    shape = x.shape[:start] + (int(np.prod(x.shape[start:end + 1])),) + x.shape[end + 1:]
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
    if isinstance(index, Tensor):
        index = index.data.astype(np.int64)
    elif isinstance(index, tuple):
        index = tuple(i.data.astype(np.int64) if isinstance(i, Tensor) else i for i in index)
    return GetItem.apply(x, index=index)
