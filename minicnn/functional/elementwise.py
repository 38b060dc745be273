"""Elementwise ops: arithmetic, exp/log, ReLU, dropout. One ``Function`` per op, its wrapper right below.

Binary ops broadcast like NumPy. Their backward returns the gradient at the *broadcast* shape and autograd
sums it back to each input's shape (``autograd.unbroadcast``), so no op here repeats that logic.

ReLU's loops are the engine's (``minicnn/plain/activation.py``); the rest is NumPy's own vectorised arithmetic.
"""
import numbers

import numpy as np

from ..autograd import Function
from .. import engine
from ..random import generator
from ..tensor import Tensor, as_tensor

__all__ = ["add", "sub", "mul", "div", "neg", "pow", "exp", "log", "sqrt", "abs", "clamp", "cast", "relu", "dropout"]


class Add(Function):
    """y = a + b;  dy/da = 1, dy/db = 1."""

    @staticmethod
    def forward(ctx, a, b):
        return a + b

    @staticmethod
    def backward(ctx, grad):
        return grad, grad


def add(a, b) -> Tensor:
    return Add.apply(as_tensor(a), as_tensor(b))


class Sub(Function):
    """y = a - b;  dy/da = 1, dy/db = -1."""

    @staticmethod
    def forward(ctx, a, b):
        return a - b

    @staticmethod
    def backward(ctx, grad):
        return grad, -grad


def sub(a, b) -> Tensor:
    return Sub.apply(as_tensor(a), as_tensor(b))


class Mul(Function):
    """y = a * b;  dy/da = b, dy/db = a."""

    @staticmethod
    def forward(ctx, a, b):
        ctx.save_for_backward(a, b)
        return a * b

    @staticmethod
    def backward(ctx, grad):
        a, b = ctx.saved
        return (grad * b if ctx.needs_input_grad[0] else None,
                grad * a if ctx.needs_input_grad[1] else None)


def mul(a, b) -> Tensor:
    return Mul.apply(as_tensor(a), as_tensor(b))


class Div(Function):
    """y = a / b;  dy/da = 1/b, dy/db = -a/b²."""

    @staticmethod
    def forward(ctx, a, b):
        ctx.save_for_backward(a, b)
        return a / b

    @staticmethod
    def backward(ctx, grad):
        a, b = ctx.saved
        return (grad / b if ctx.needs_input_grad[0] else None,
                -grad * a / (b * b) if ctx.needs_input_grad[1] else None)


def div(a, b) -> Tensor:
    return Div.apply(as_tensor(a), as_tensor(b))


class Neg(Function):
    """y = -x;  dy/dx = -1."""

    @staticmethod
    def forward(ctx, x):
        return -x

    @staticmethod
    def backward(ctx, grad):
        return -grad


def neg(x) -> Tensor:
    return Neg.apply(as_tensor(x))


class Pow(Function):
    """y = x ** p for a constant number p;  dy/dx = p * x ** (p - 1)."""

    @staticmethod
    def forward(ctx, x, *, exponent):
        ctx.save_for_backward(x)
        ctx.exponent = exponent
        return x ** exponent

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved
        p = ctx.exponent
        return grad * p * x ** (p - 1)


def pow(x, exponent) -> Tensor:  # noqa: A001  (the name PyTorch uses)
    if not isinstance(exponent, numbers.Real) or isinstance(exponent, bool):
        raise TypeError(f"pow: exponent must be a number (a constant), got {type(exponent).__name__}")
    x = as_tensor(x)
    return Pow.apply(x, exponent=x.dtype.type(exponent))


class Exp(Function):
    """y = eˣ;  dy/dx = eˣ = y (so the output is what backward keeps)."""

    @staticmethod
    def forward(ctx, x):
        y = np.exp(x)
        ctx.save_for_backward(y)
        return y

    @staticmethod
    def backward(ctx, grad):
        (y,) = ctx.saved
        return grad * y


def exp(x) -> Tensor:
    return Exp.apply(as_tensor(x))


class Log(Function):
    """y = ln x;  dy/dx = 1/x."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return np.log(x)

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved
        return grad / x


def log(x) -> Tensor:
    return Log.apply(as_tensor(x))


def sqrt(x) -> Tensor:
    """√x, as ``x ** 0.5`` (dy/dx = 1 / (2√x))."""
    return pow(x, 0.5)


class Abs(Function):
    """y = |x|;  dy/dx = sign(x) (0 at 0, as PyTorch)."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return np.abs(x)

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved
        return grad * np.sign(x)


def abs(x) -> Tensor:  # noqa: A001  (the name PyTorch uses)
    return Abs.apply(as_tensor(x))


class Clamp(Function):
    """y = min(max(x, low), high);  dy/dx = 1 where low ≤ x ≤ high, else 0 (PyTorch's rule at the bounds)."""

    @staticmethod
    def forward(ctx, x, *, low, high):
        ctx.save_for_backward(x)
        ctx.low, ctx.high = low, high
        return np.clip(x, low, high)

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved
        inside = np.ones(x.shape, dtype=bool)
        if ctx.low is not None:
            inside &= x >= ctx.low
        if ctx.high is not None:
            inside &= x <= ctx.high
        return grad * inside


def clamp(x, min=None, max=None) -> Tensor:  # noqa: A002  (PyTorch's argument names)
    """Each element limited to [min, max] (either bound may be None, not both)."""
    if min is None and max is None:
        raise ValueError("clamp: at least one of min and max must be given")
    for name, bound in (("min", min), ("max", max)):
        if bound is not None and (not isinstance(bound, numbers.Real) or isinstance(bound, bool)):
            raise TypeError(f"clamp: {name} must be a number or None, got {bound!r}")
    x = as_tensor(x)
    return Clamp.apply(x, low=None if min is None else x.dtype.type(min), high=None if max is None else x.dtype.type(max))


class Cast(Function):
    """y = x in another float dtype (or a copy in the same one: ``clone``);  dx = dy in x's dtype."""

    @staticmethod
    def forward(ctx, x, *, dtype):
        ctx.dtype = x.dtype
        return x.astype(dtype, copy=True)

    @staticmethod
    def backward(ctx, grad):
        return grad.astype(ctx.dtype, copy=False)


def cast(x, dtype) -> Tensor:
    """``x`` converted to ``dtype`` (float32 or float64), differentiably; a copy even in the same dtype."""
    dtype = np.dtype(dtype)
    if dtype not in (np.float32, np.float64):
        raise TypeError(f"cast: dtype must be float32 or float64, got {dtype}")
    return Cast.apply(as_tensor(x), dtype=dtype)


class ReLU(Function):
    """y = max(x, 0);  dy/dx = 1 where x > 0, else 0. Loops: ``minicnn/plain/activation.py``."""

    @staticmethod
    def forward(ctx, x):
        y = engine.relu_forward(x)
        ctx.save_for_backward(y)
        return y

    @staticmethod
    def backward(ctx, grad):
        (y,) = ctx.saved
        return engine.relu_backward(grad, y)


def relu(input, inplace: bool = False) -> Tensor:
    """Rectified linear unit, elementwise. NaN propagates, as in PyTorch. ``inplace`` is accepted and the result
    is a new tensor all the same (the input keeps its values)."""
    return ReLU.apply(as_tensor(input))


class Dropout(Function):
    """y = x * mask / (1 - p), mask ~ Bernoulli(1 - p) per element (inverted dropout: the expected value of y
    is x, so nothing changes at evaluation time);  dy/dx = mask / (1 - p)."""

    @staticmethod
    def forward(ctx, x, *, p):
        keep = generator().random(x.shape) >= p
        scale = (keep / (1.0 - p)).astype(x.dtype)
        ctx.save_for_backward(scale)
        return x * scale

    @staticmethod
    def backward(ctx, grad):
        (scale,) = ctx.saved
        return grad * scale


def dropout(x, p: float = 0.5, training: bool = True, inplace: bool = False) -> Tensor:
    """Zero each element with probability ``p`` and scale the rest by 1/(1-p) when ``training``; else identity.

    The random mask comes from minicnn's generator, so ``mc.manual_seed`` makes it reproducible. ``inplace`` is
    accepted; the result is a new tensor all the same.
    """
    if not isinstance(p, numbers.Real) or not 0.0 <= p <= 1.0:
        raise ValueError(f"dropout: p must be a probability in [0, 1], got {p!r}")
    x = as_tensor(x)
    if not training or p == 0.0:
        return x
    if p == 1.0:
        return x * 0.0
    return Dropout.apply(x, p=float(p))
