"""Unbatched input, as PyTorch accepts it: a (C, H, W) image is run as a batch of one, then unwrapped."""
from ..shapes import check_input_ndim


def run_batched(op: str, fn, x, *args, **kwargs):
    """``fn(x, ...)`` for x of shape (N, C, H, W); for x of shape (C, H, W), the same on a batch of one."""
    check_input_ndim(x.shape, op)
    if x.ndim == 4:
        return fn(x, *args, **kwargs)
    y = fn(x.reshape((1,) + x.shape), *args, **kwargs)
    return y.reshape(y.shape[1:])
