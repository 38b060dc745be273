"""Losses: ``log_softmax``, ``softmax``, ``nll_loss``, ``cross_entropy``, ``mse_loss``, with PyTorch's arguments.

    log_softmax(x)_c = x_c − log Σ_j exp(x_j) = (x_c − m) − log Σ_j exp(x_j − m),   m = max_j x_j
    nll_loss(logp, t) = Σ_n w[t_n] · (−logp[n, t_n]) / Σ_n w[t_n]        (reduction='mean'; ignored n left out)
    cross_entropy(x, t) = nll_loss(log_softmax(x, dim=1), t)

Subtracting the maximum m first (the log-sum-exp trick) keeps exp from overflowing: logits of 1000 give
exp(0) = 1 instead of inf, and the result is the same.

The class axis is 1, as in PyTorch: input (N, C) or (N, C, d1, d2, ...) (a score per class for every pixel,
say), target (N,) or (N, d1, d2, ...) class indices. ``cross_entropy`` also takes class probabilities as the
target (the input's shape, floats), and both take an unbatched (C,) input with a scalar target.

Options, as PyTorch defines them:

- ``weight`` (C,): each class's weight; with ``reduction='mean'`` the sum is divided by the weights of the
  targets, not by the count.
- ``ignore_index``: targets equal to it add nothing and count in no denominator.
- ``reduction``: ``'mean'``, ``'sum'`` or ``'none'`` (the loss of each element, shape (N, d1, ...)).
- ``label_smoothing`` ε: the target becomes (1 − ε)·onehot + ε/C, i.e. the loss is
  (1 − ε)·nll + ε/C · Σ_c w_c·(−logp_c), the second term reduced like the first.
"""
import numbers

import numpy as np

from ..autograd import Function
from ..tensor import Tensor, as_tensor
from .reduction import sum as _sum

__all__ = ["log_softmax", "softmax", "nll_loss", "cross_entropy", "mse_loss"]

_REDUCTIONS = ("mean", "sum", "none")


def _shifted_exponentials(x, axis):
    """(x − m, exp(x − m), Σ exp(x − m)) along ``axis``, m the maximum (kept as an axis of size 1): the
    log-sum-exp trick of the module docstring, log Σ exp(x) = m + log(the sum), written once for both ops."""
    shifted = x - np.max(x, axis=axis, keepdims=True)
    exponentials = np.exp(shifted)
    return shifted, exponentials, np.sum(exponentials, axis=axis, keepdims=True)


class LogSoftmax(Function):
    """y = x − logsumexp(x) along ``axis``;  dx = dy − softmax(x) · Σ dy  (softmax = exp(y))."""

    @staticmethod
    def forward(ctx, x, *, axis):
        shifted, _, total = _shifted_exponentials(x, axis)
        y = shifted - np.log(total)
        ctx.save_for_backward(y)
        ctx.axis = axis
        return y

    @staticmethod
    def backward(ctx, grad):
        (y,) = ctx.saved
        return grad - np.exp(y) * np.sum(grad, axis=ctx.axis, keepdims=True)


def _dim(dim, axis, ndim, op):
    """The axis an op works along: ``dim`` (PyTorch's name) or ``axis`` (an alias), checked against ``ndim``."""
    if dim is not None and axis is not None and dim != axis:
        raise TypeError(f"{op}: got both dim={dim} and axis={axis}; give one")
    dim = axis if dim is None else dim
    if dim is None:
        if ndim in (0, 1, 3):               # PyTorch's implicit choice, deprecated there: say it instead
            dim = 0
        else:
            raise TypeError(f"{op}: dim is required for a {ndim}-D input (PyTorch's implicit choice is deprecated)")
    if not isinstance(dim, numbers.Integral) or not -max(ndim, 1) <= dim < max(ndim, 1):
        raise ValueError(f"{op}: dim {dim!r} is out of range for a {ndim}-D tensor")
    return int(dim)


def log_softmax(input, dim=None, *, axis=None, dtype=None) -> Tensor:
    """The logarithm of the softmax along ``dim``, computed stably (see module docstring)."""
    x = as_tensor(input)
    if dtype is not None:
        x = x.to(dtype)
    return LogSoftmax.apply(x, axis=_dim(dim, axis, x.ndim, "log_softmax"))


def softmax(input, dim=None, *, axis=None, dtype=None) -> Tensor:
    """exp(x_c) / Σ_j exp(x_j) along ``dim``: ``exp(log_softmax(x, dim))``, stable for large logits."""
    return log_softmax(input, dim, axis=axis, dtype=dtype).exp()


def _reduction(reduction, op):
    if reduction not in _REDUCTIONS:
        raise ValueError(f"{op}: reduction must be one of {', '.join(map(repr, _REDUCTIONS))}, got {reduction!r}")
    return reduction


def _legacy(op, **arguments):
    """PyTorch's deprecated ``size_average``/``reduce``: accepted as None (their default) only."""
    for name, value in arguments.items():
        if value is not None:
            raise NotImplementedError(f"{op}: {name} is deprecated in PyTorch and not supported here; "
                                      "use reduction='mean', 'sum' or 'none'")


def _class_labels(target, input_shape, op) -> np.ndarray:
    """``target`` as an int64 array of class indices of the input's shape without its class axis."""
    t = target.data if isinstance(target, Tensor) else np.asarray(target)
    if t.dtype.kind == "f" and np.all(np.mod(t, 1) == 0):
        t = t.astype(np.int64)            # a Tensor holds floats; whole numbers are labels all the same
    if t.dtype.kind not in "iu":
        raise TypeError(f"{op}: target must hold integer class labels, got dtype {t.dtype}")
    expected = input_shape[:1] + input_shape[2:] if len(input_shape) > 1 else ()
    if t.shape != expected:
        raise ValueError(f"{op}: expected target of shape {expected} (one label per input row"
                         f"{' and position' if len(input_shape) > 2 else ''}), got {t.shape}")
    return t.astype(np.int64, copy=False)


def _check_weight(weight, C, op):
    if weight is None:
        return None
    w = weight.data if isinstance(weight, Tensor) else np.asarray(weight, dtype=np.float64)
    if w.shape != (C,):
        raise ValueError(f"{op}: weight must have one entry per class, shape ({C},), got {w.shape}")
    return w


class NLLLoss(Function):
    """Per element m (rows and positions flattened, class axis last): loss_m = −w[t_m] · logp[m, t_m], or 0
    where t_m is ignored. Reduced by ``reduction``: 'mean' divides by Σ w[t_m] over the kept elements."""

    @staticmethod
    def forward(ctx, logp, *, target, weight, ignore_index, reduction, op="nll_loss"):
        C = logp.shape[1]
        flat = logp if logp.ndim == 2 else np.moveaxis(logp, 1, -1).reshape(-1, C)     # (M, C)
        t = target.reshape(-1)
        kept = t != ignore_index
        every = bool(kept.all())
        safe = t if every else np.where(kept, t, 0)                   # an ignored target reads class 0, weighted 0
        if safe.size and (safe.min() < 0 or safe.max() >= C):
            bad = t[kept & ((t < 0) | (t >= C))][0]
            raise ValueError(f"{op}: target labels must be in [0, {C - 1}] for {C} classes, got {bad} "
                             f"(ignore_index={ignore_index} marks a target to leave out)")
        if weight is None and every:
            w = None                                                  # every weight 1
        else:
            w = kept.astype(logp.dtype) if weight is None else weight.astype(logp.dtype)[safe] * kept
        picked = flat[np.arange(len(t)), safe]
        per = -picked if w is None else -w * picked
        ctx.saved_w, ctx.safe, ctx.shape, ctx.reduction = w, safe, logp.shape, reduction
        if reduction == "none":
            return per.reshape(target.shape)
        total = per.sum()
        if reduction == "sum":
            return np.asarray(total, dtype=logp.dtype)
        ctx.denominator = len(t) if w is None else w.sum()
        return np.asarray(total / ctx.denominator, dtype=logp.dtype)   # 0/0 = nan when every target is ignored

    @staticmethod
    def backward(ctx, grad):
        w, safe = ctx.saved_w, ctx.safe
        g = grad.reshape(-1) if ctx.reduction == "none" else grad / (ctx.denominator if ctx.reduction == "mean" else 1)
        N, C = ctx.shape[0], ctx.shape[1]
        flat = np.zeros((len(safe), C), dtype=grad.dtype)
        flat[np.arange(len(safe)), safe] = -g if w is None else -w * g
        if len(ctx.shape) == 2:
            return flat
        return np.moveaxis(flat.reshape((N,) + tuple(ctx.shape[2:]) + (C,)), -1, 1)


class CrossEntropy(Function):
    """The common case of ``cross_entropy`` in one op: scores x (N, C), labels t (N,), every label counted, no
    weights, the mean over the batch. Forward and backward each take a few array operations where
    log_softmax followed by nll_loss takes two ops and twice as many (a training step's loss)::

        loss = (1/N) Σ_n (log Σ_c exp(x[n, c]) − x[n, t_n])          (the maximum subtracted first, as above)
        dx[n, c] = g/N · (softmax(x)[n, c] − [c = t_n])
    """

    @staticmethod
    def forward(ctx, x, *, target):
        shifted, exponentials, total = _shifted_exponentials(x, 1)
        rows = np.arange(len(target))
        ctx.softmax, ctx.rows, ctx.target = exponentials / total, rows, target
        return np.asarray((np.log(total[:, 0]) - shifted[rows, target]).mean(), dtype=x.dtype)

    @staticmethod
    def backward(ctx, grad):
        scale = grad / len(ctx.target)
        dx = ctx.softmax * scale
        dx[ctx.rows, ctx.target] -= scale
        return dx


def _batched(input, target, op):
    """An unbatched (C,) input and scalar target as a batch of one; returns (input, target, was_unbatched)."""
    if input.ndim == 1:
        t = target.data if isinstance(target, Tensor) else np.asarray(target)
        return input.reshape(1, input.shape[0]), (t.reshape(1) if t.ndim == 0 else t.reshape(1, -1)), True
    if input.ndim == 0:
        raise ValueError(f"{op}: expected input of shape (N, C), (N, C, d1, ...) or (C,), got a 0-d tensor")
    return input, target, False


def nll_loss(input, target, weight=None, size_average=None, ignore_index: int = -100, reduce=None,
             reduction: str = "mean") -> Tensor:
    """The negative log-likelihood of the target classes (``torch.nn.functional.nll_loss``).

    Args: input (N, C) or (N, C, d1, ...) log-probabilities; target (N,) or (N, d1, ...) class indices in
    [0, C) (or ``ignore_index``); weight, ignore_index, reduction as in the module docstring.
    """
    _legacy("nll_loss", size_average=size_average, reduce=reduce)
    reduction = _reduction(reduction, "nll_loss")
    x, target, unbatched = _batched(as_tensor(input), target, "nll_loss")
    labels = _class_labels(target, x.shape, "nll_loss")
    out = NLLLoss.apply(x, target=labels, weight=_check_weight(weight, x.shape[1], "nll_loss"),
                        ignore_index=int(ignore_index), reduction=reduction)
    return out.reshape(()) if unbatched and reduction == "none" else out


def cross_entropy(input, target, weight=None, size_average=None, ignore_index: int = -100, reduce=None,
                  reduction: str = "mean", label_smoothing: float = 0.0) -> Tensor:
    """Cross-entropy between the softmax of ``input`` and ``target`` (``torch.nn.functional.cross_entropy``).

    Args:
        input: (N, C) or (N, C, d1, ...) unnormalised scores, or (C,) for one sample.
        target: class indices (N,) or (N, d1, ...) (an array, a list or a Tensor), or class probabilities of
            the input's shape (floats).
        weight, ignore_index, reduction, label_smoothing: see the module docstring.
    Returns: a one-element Tensor (``'mean'``, ``'sum'``), or the loss of each element (``'none'``).

    >>> import minicnn as mc, minicnn.functional as F
    >>> round(F.cross_entropy(mc.Tensor([[0.0, 0.0]]), [1]).item(), 4)   # log 2
    0.6931
    """
    _legacy("cross_entropy", size_average=size_average, reduce=reduce)
    reduction = _reduction(reduction, "cross_entropy")
    if not isinstance(label_smoothing, numbers.Real) or not 0.0 <= label_smoothing <= 1.0:
        raise ValueError(f"cross_entropy: label_smoothing must be in [0, 1], got {label_smoothing!r}")
    x = as_tensor(input)
    probabilities = isinstance(target, Tensor) and target.shape == x.shape or (
        not isinstance(target, Tensor) and np.asarray(target).dtype.kind == "f" and np.shape(target) == x.shape
        and x.ndim > 0)
    if probabilities and not isinstance(target, Tensor):
        target = Tensor(target, dtype=x.dtype)
    x, target, unbatched = _batched(x, target, "cross_entropy")
    C = x.shape[1]
    w = _check_weight(weight, C, "cross_entropy")
    if not probabilities and w is None and not label_smoothing and reduction == "mean" and x.ndim == 2:
        labels = _class_labels(target, x.shape, "cross_entropy")
        ignored = 0 <= ignore_index < C and (labels == ignore_index).any()
        if labels.size and labels.min() >= 0 and labels.max() < C and not ignored:   # every label counts
            return CrossEntropy.apply(x, target=labels)
    logp = log_softmax(x, 1)
    # the class weights, shaped to multiply logp (1, C, 1, ...)
    w_b = None if w is None else Tensor._wrap(w.astype(x.dtype).reshape((1, C) + (1,) * (x.ndim - 2)))

    if probabilities:
        p = target.reshape(x.shape)
        if label_smoothing:
            p = p * (1 - label_smoothing) + label_smoothing / C
        per = -_sum(logp * p * (w_b if w_b is not None else 1.0), axis=1)          # (N, d1, ...)
        out = per if reduction == "none" else per.sum() if reduction == "sum" else per.sum() / per.numel()
        return out.reshape(()) if unbatched and reduction == "none" else out

    labels = _class_labels(target, x.shape, "cross_entropy")
    nll = NLLLoss.apply(logp, target=labels, weight=w, ignore_index=int(ignore_index), reduction=reduction,
                        op="cross_entropy")
    if label_smoothing:
        kept = (labels != ignore_index).astype(x.dtype)
        smooth = -_sum(logp * w_b if w_b is not None else logp, axis=1) * Tensor._wrap(kept)   # (N, d1, ...)
        if reduction == "sum":
            smooth = smooth.sum()
        elif reduction == "mean":
            safe = np.where(labels != ignore_index, labels, 0)
            denominator = kept.sum() if w is None else (w[safe] * kept).sum()
            smooth = smooth.sum() / float(denominator)
        nll = nll * (1 - label_smoothing) + smooth * (label_smoothing / C)
    return nll.reshape(()) if unbatched and reduction == "none" else nll


def mse_loss(input, target, size_average=None, reduce=None, reduction: str = "mean") -> Tensor:  # noqa: A002
    """Squared error ``(input − target)²``, averaged (``'mean'``), summed (``'sum'``) or not (``'none'``)."""
    _legacy("mse_loss", size_average=size_average, reduce=reduce)
    reduction = _reduction(reduction, "mse_loss")
    input, target = as_tensor(input), as_tensor(target)
    if input.shape != target.shape:
        raise ValueError(f"mse_loss: input and target must have the same shape, got {input.shape} and {target.shape}")
    squared = (input - target) ** 2
    return squared if reduction == "none" else squared.sum() if reduction == "sum" else squared.mean()
