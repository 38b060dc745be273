"""Losses: ``log_softmax``, ``nll_loss``, ``cross_entropy`` (the two composed), ``mse_loss``.

    log_softmax(x)_i = x_i − log Σ_j exp(x_j) = (x_i − m) − log Σ_j exp(x_j − m),   m = max_j x_j
    nll_loss(logp, t) = −(1/N) Σ_n logp[n, t_n]
    cross_entropy(x, t) = nll_loss(log_softmax(x, axis=1), t)

Subtracting the maximum m first (the log-sum-exp trick) keeps exp from overflowing: logits of 1000 give
exp(0) = 1 instead of inf, and the result is the same.
"""
import numpy as np

from ..autograd import Function
from ..tensor import Tensor, as_tensor

__all__ = ["log_softmax", "nll_loss", "cross_entropy", "mse_loss"]


class LogSoftmax(Function):
    """y = x − logsumexp(x) along ``axis``;  dx = dy − softmax(x) · Σ dy  (softmax = exp(y))."""

    @staticmethod
    def forward(ctx, x, *, axis):
        shifted = x - np.max(x, axis=axis, keepdims=True)
        y = shifted - np.log(np.sum(np.exp(shifted), axis=axis, keepdims=True))
        ctx.save_for_backward(y)
        ctx.axis = axis
        return y

    @staticmethod
    def backward(ctx, grad):
        (y,) = ctx.saved
        return grad - np.exp(y) * np.sum(grad, axis=ctx.axis, keepdims=True)


def log_softmax(x, axis: int = -1) -> Tensor:
    """The logarithm of the softmax along ``axis``, computed stably (see module docstring)."""
    x = as_tensor(x)
    if not -x.ndim <= axis < x.ndim:
        raise ValueError(f"log_softmax: axis {axis} is out of range for a {x.ndim}-D tensor")
    return LogSoftmax.apply(x, axis=axis)


def _class_labels(target, logits_shape, op) -> np.ndarray:
    """``target`` as an int64 array of N class indices in [0, C); a clear error for anything else."""
    t = target.data if isinstance(target, Tensor) else np.asarray(target)
    if t.dtype.kind == "f" and np.all(np.mod(t, 1) == 0):
        t = t.astype(np.int64)            # a Tensor holds floats; whole numbers are labels all the same
    if t.dtype.kind not in "iu":
        raise TypeError(f"{op}: target must hold integer class labels, got dtype {t.dtype}")
    N, C = logits_shape
    if t.shape != (N,):
        raise ValueError(f"{op}: expected target of shape ({N},) (one label per row of input), got {t.shape}")
    if t.size and (t.min() < 0 or t.max() >= C):
        bad = t[(t < 0) | (t >= C)][0]
        raise ValueError(f"{op}: target labels must be in [0, {C - 1}] for {C} classes, got {bad}")
    return t.astype(np.int64, copy=False)


class NLLLoss(Function):
    """L = −(1/N) Σ_n logp[n, t_n];  dL/dlogp[n, c] = −1/N where c = t_n, else 0."""

    @staticmethod
    def forward(ctx, logp, *, target):
        N = logp.shape[0]
        ctx.target, ctx.shape, ctx.dtype = target, logp.shape, logp.dtype
        return np.asarray(-logp[np.arange(N), target].mean(), dtype=logp.dtype)

    @staticmethod
    def backward(ctx, grad):
        N = ctx.shape[0]
        grad_logp = np.zeros(ctx.shape, dtype=ctx.dtype)
        grad_logp[np.arange(N), ctx.target] = -grad / N
        return grad_logp


def nll_loss(log_probs, target) -> Tensor:
    """Mean negative log-likelihood of the target classes. log_probs (N, C), target (N,) ints in [0, C)."""
    log_probs = as_tensor(log_probs)
    if log_probs.ndim != 2:
        raise ValueError(f"nll_loss: expected input of shape (N, C) (2-D), got shape {log_probs.shape}")
    return NLLLoss.apply(log_probs, target=_class_labels(target, log_probs.shape, "nll_loss"))


def cross_entropy(logits, target) -> Tensor:
    """Mean cross-entropy between the softmax of ``logits`` and integer class labels.

    Args: logits (N, C), unnormalised scores; target (N,) ints in [0, C) (an array, a list or a Tensor).
    Returns: a one-element Tensor, the mean over the batch.

    >>> import minicnn as mc, minicnn.functional as F
    >>> round(F.cross_entropy(mc.Tensor([[0.0, 0.0]]), [1]).item(), 4)   # log 2
    0.6931
    """
    logits = as_tensor(logits)
    if logits.ndim != 2:
        raise ValueError(f"cross_entropy: expected input of shape (N, C) (2-D), got shape {logits.shape}")
    target = _class_labels(target, logits.shape, "cross_entropy")
    return nll_loss(log_softmax(logits, axis=1), target)


def mse_loss(input, target) -> Tensor:  # noqa: A002  (PyTorch's argument name)
    """Mean squared error ``mean((input − target)²)``; target is a Tensor or an array of the same shape."""
    input, target = as_tensor(input), as_tensor(target)
    if input.shape != target.shape:
        raise ValueError(f"mse_loss: input and target must have the same shape, got {input.shape} and {target.shape}")
    return ((input - target) ** 2).mean()
