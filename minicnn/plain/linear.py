"""The fully connected layer's products: numpy's ``@`` (BLAS does the loops; nothing to gain by writing them).

    y = x @ Wᵀ + b             x (N, in), W (out, in), b (out,), y (N, out); max(y, 0) when ``relu``
    grad_x = g @ W             grad_W = gᵀ @ x             grad_b = Σ_n g        (g: grad_y, through the ReLU)
"""
import numpy as np

from .activation import relu_backward, relu_forward

__all__ = ["linear_forward", "linear_backward", "matmul"]


def linear_forward(x, weight, bias, relu=False):
    """x (N, in), weight (out, in), bias (out,) or None → y (N, out), through max(·, 0) when ``relu``."""
    y = x @ weight.T
    if bias is not None:
        y += bias
    return relu_forward(y) if relu else y


def linear_backward(grad_y, x, weight, y, need_input, need_weight, need_bias):
    """The wanted gradients of ``linear_forward`` (None for the others): (grad_x, grad_weight, grad_bias).
    ``y`` is the forward's output when the ReLU was fused in (the gradient is masked with it first), else None."""
    if y is not None:
        grad_y = relu_backward(grad_y, y)
    grad_x = grad_y @ weight if need_input else None
    grad_w = grad_y.T @ x if need_weight else None
    grad_b = grad_y.sum(axis=0) if need_bias else None
    return grad_x, grad_w, grad_b


def matmul(a, b):
    """a @ b with numpy's broadcasting rules (``functional/linear.py``'s ``matmul``)."""
    return a @ b
