"""ReLU, compiled with Numba.

Twins: ``minicnn/reference/activation.py`` (plain loops), ``minicnn/functional/elementwise.py`` (``relu``).

    relu(x) = x if x > 0 else 0            d relu / dx = 1 where x > 0, else 0

NaN propagates as in PyTorch: the test is written ``not (x <= 0)``, which is true for NaN, so NaN passes
through forward, and its gradient passes through backward. Backward reads the *output* y (y > 0 exactly where
x > 0), so the op saves one array, not two.

Both kernels see the array as one flat run of numbers (so one compiled version serves every shape); large
arrays are split among threads in contiguous chunks (``by_size``: serial below ``PARALLEL_MIN_ELEMENTS``), each
element written by one iteration only.
"""
import numpy as np
from numba import prange

from . import by_size


def relu_forward(x):
    """Inputs: x, any shape, C-contiguous. Returns: y = max(x, 0) of the same shape (NaN stays NaN)."""
    return _relu_forward(x.reshape(-1)).reshape(x.shape)


def relu_backward(grad_out, y):
    """Inputs: grad_out and y = relu(x), the same shape, C-contiguous. Returns: grad_x = grad_out where y > 0 (or
    NaN), else 0."""
    return _relu_backward(grad_out.reshape(-1), y.reshape(-1)).reshape(grad_out.shape)


# The kernels see flat arrays, so that one compiled version serves every shape (a convolution's 4-D outputs, a
# linear layer's 2-D ones): each number of dimensions would otherwise be compiled on its own.

@by_size
def _relu_forward(x):
    y = np.empty_like(x)
    for i in prange(x.size):
        v = x[i]
        y[i] = 0 if v <= 0 else v
    return y


@by_size
def _relu_backward(grad_out, y):
    grad_x = np.empty_like(grad_out)
    for i in prange(grad_out.size):
        grad_x[i] = 0 if y[i] <= 0 else grad_out[i]
    return grad_x
