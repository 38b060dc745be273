"""ReLU as the definition reads (twin of ``minicnn/kernels/activation.py``)."""
import numpy as np


def relu_forward(x):
    """y = x where x > 0, else 0. NaN stays NaN (``np.where`` picks x because ``NaN <= 0`` is false)."""
    return np.where(x <= 0, np.zeros_like(x), x)


def relu_backward(grad_out, y):
    """grad_x = grad_out where the output was positive (or NaN), else 0."""
    return np.where(y <= 0, np.zeros_like(grad_out), grad_out)
