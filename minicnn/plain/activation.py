"""ReLU as loops: the plain engine's ``relu_forward`` and ``relu_backward``, on arrays of any shape.

    y = x where x > 0, else 0          (NaN stays NaN: ``NaN <= 0`` is false, as in PyTorch)
    grad_x = 0 where y <= 0, else grad_y   (where y is NaN the gradient passes, as PyTorch's threshold_backward)

The arrays are walked flat (``ravel``: every shape is one loop, and one compiled kernel).
"""
import numpy as np
from ._jit import jit

__all__ = ["relu_forward", "relu_backward"]


@jit()
def _relu(x, y):
    for i in range(x.size):
        y[i] = 0 if x[i] <= 0 else x[i]


@jit()
def _relu_gradient(grad_y, y, grad_x):
    for i in range(y.size):
        grad_x[i] = 0 if y[i] <= 0 else grad_y[i]


def relu_forward(x):
    """x (any shape) → y, the same shape and dtype."""
    x = np.asarray(x, order="C")                     # (np.ascontiguousarray would make a 0-d array 1-d)
    y = np.empty_like(x)
    _relu(x.reshape(-1), y.reshape(-1))
    return y


def relu_backward(grad_y, y):
    """grad_y, y (the forward's output, same shape) → grad_x."""
    grad_y, y = np.asarray(grad_y, order="C"), np.asarray(y, order="C")
    grad_x = np.empty_like(grad_y)
    _relu_gradient(grad_y.reshape(-1), y.reshape(-1), grad_x.reshape(-1))
    return grad_x
