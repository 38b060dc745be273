"""Matrix products: ``matmul`` (the ``@`` operator) and ``linear`` (a fully connected layer). BLAS does the work,
through the engine contract (``minicnn/plain/linear.py`` is numpy's ``@``; the fast engine splits the linear
layer's rows among its threads).

    matmul:  Y = A @ B            dA = dY @ Bᵀ           dB = Aᵀ @ dY        (batched over leading axes)
    linear:  y = x @ Wᵀ + b       dx = dy @ W            dW = dyᵀ @ x         db = Σ_n dy
             x (N, in), W (out, in), b (out,), y (N, out)

``linear_relu`` is ``relu(linear(...))`` in one pass, as ``conv2d_relu`` is for the convolution: the engine
applies bias and ReLU to the result while it is in cache, and backward masks the gradient with the output
before the linear layer's own. ``nn.LinearReLU`` (made by ``nn.fuse``) runs it.
"""
import numpy as np

from .. import engine
from ..autograd import Function
from ..shapes import check_same_dtype
from ..tensor import Tensor, as_tensor

__all__ = ["matmul", "linear", "linear_relu"]


class MatMul(Function):
    """Y = A @ B with NumPy's rules: 1-D operands are treated as a row (A) or a column (B) vector, and leading
    axes broadcast (autograd sums the gradient of a broadcast operand back to its shape)."""

    @staticmethod
    def forward(ctx, a, b):
        ctx.save_for_backward(a, b)
        return engine.matmul(a, b)

    @staticmethod
    def backward(ctx, grad):
        a, b = ctx.saved
        a2 = a[None, :] if a.ndim == 1 else a                      # (…, M, K)
        b2 = b[:, None] if b.ndim == 1 else b                      # (…, K, P)
        g2 = grad
        if b.ndim == 1:
            g2 = g2[..., None]                                     # give back the column's axis P = 1
        if a.ndim == 1:
            g2 = g2[..., None, :]                                  # give back the row's axis M = 1: (…, M, P)
        grad_a = grad_b = None
        if ctx.needs_input_grad[0]:
            grad_a = engine.matmul(g2, np.swapaxes(b2, -1, -2))
            grad_a = grad_a[..., 0, :] if a.ndim == 1 else grad_a
        if ctx.needs_input_grad[1]:
            grad_b = engine.matmul(np.swapaxes(a2, -1, -2), g2)
            grad_b = grad_b[..., 0] if b.ndim == 1 else grad_b
        return grad_a, grad_b


def matmul(a, b) -> Tensor:
    a, b = as_tensor(a), as_tensor(b)
    if a.ndim == 0 or b.ndim == 0:
        raise ValueError(f"matmul: both operands must have at least 1 dimension, got shapes {a.shape} and {b.shape}")
    k_a, k_b = a.shape[-1], (b.shape[0] if b.ndim == 1 else b.shape[-2])
    if k_a != k_b:
        raise ValueError(f"matmul: inner dimensions differ: {a.shape} @ {b.shape} ({k_a} != {k_b})")
    return MatMul.apply(a, b)


class Linear(Function):
    """y = x @ Wᵀ + b for x (N, in), through max(·, 0) when ``relu``; inputs with more leading axes (…, in) are
    flattened to (N, in) first."""

    @staticmethod
    def forward(ctx, x, weight, bias, *, relu=False):
        x2 = x.reshape(-1, x.shape[-1])
        y = engine.linear_forward(x2, weight, bias, relu=relu)
        ctx.save_for_backward(x2, weight, y if relu else None)
        ctx.x_shape = x.shape
        return y.reshape(x.shape[:-1] + (weight.shape[0],))

    @staticmethod
    def backward(ctx, grad):
        x2, weight, y = ctx.saved
        grad_x, grad_w, grad_b = engine.linear_backward(grad.reshape(-1, weight.shape[0]), x2, weight, y,
                                                        *ctx.needs_input_grad)
        return (None if grad_x is None else grad_x.reshape(ctx.x_shape)), grad_w, grad_b


def linear(x, weight, bias=None) -> Tensor:
    """A fully connected layer: ``x @ weight.T + bias``.

    Args: x (N, in_features) (or (…, in_features)), weight (out_features, in_features), bias (out_features,).
    Returns: (N, out_features).
    """
    return _linear("linear", x, weight, bias, relu=False)


def linear_relu(x, weight, bias=None) -> Tensor:
    """``relu(linear(x, weight, bias))`` in one pass (see the module docstring); same arguments and shapes."""
    return _linear("linear_relu", x, weight, bias, relu=True)


def _linear(name, x, weight, bias, relu):
    x, weight = as_tensor(x), as_tensor(weight)
    if weight.ndim != 2:
        raise ValueError(f"{name}: expected weight of shape (out_features, in_features) (2-D), "
                         f"got shape {weight.shape}")
    if x.ndim == 0 or x.shape[-1] != weight.shape[1]:
        raise ValueError(f"{name}: expected input with {weight.shape[1]} features in its last axis "
                         f"(weight of shape {weight.shape}), got input of shape {x.shape}")
    if bias is not None:
        bias = as_tensor(bias)
        if bias.shape != (weight.shape[0],):
            raise ValueError(f"{name}: expected bias of shape ({weight.shape[0]},), got {bias.shape}")
    check_same_dtype(name, input=x, weight=weight, bias=bias)
    return Linear.apply(x, weight, bias, relu=relu)

