"""ReLU, compiled with Numba.

Twins: ``minicnn/reference/activation.py`` (plain loops), ``minicnn/functional/elementwise.py`` (``relu``).

    relu(x) = x if x > 0 else 0            d relu / dx = 1 where x > 0, else 0

NaN propagates as in PyTorch: the test is written ``not (x <= 0)``, which is true for NaN, so NaN passes
through forward, and its gradient passes through backward. Backward reads the *output* y (y > 0 exactly where
x > 0), so the op saves one array, not two.

Both kernels see the array as one flat run of numbers; large arrays are split among threads in contiguous
chunks (``by_size``: serial below ``PARALLEL_MIN_ELEMENTS``), each element written by one iteration only.
"""
import numpy as np
from numba import prange

from . import by_size


@by_size
def relu_forward(x):
    """Inputs: x, any shape. Returns: y = max(x, 0) of the same shape (NaN stays NaN)."""
    flat = x.ravel()
    y = np.empty_like(flat)
    for i in prange(flat.size):
        v = flat[i]
        y[i] = 0 if v <= 0 else v
    return y.reshape(x.shape)


@by_size
def relu_backward(grad_out, y):
    """Inputs: grad_out and y = relu(x), the same shape. Returns: grad_x = grad_out where y > 0 (or NaN), else 0."""
    g = grad_out.ravel()
    flat_y = y.ravel()
    grad_x = np.empty_like(g)
    for i in prange(g.size):
        grad_x[i] = 0 if flat_y[i] <= 0 else g[i]
    return grad_x.reshape(grad_out.shape)
