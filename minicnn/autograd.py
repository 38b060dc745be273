"""Reverse-mode automatic differentiation: the ``Function`` base class and the backward walk.

Every differentiable op is a subclass of ``Function`` with two static methods side by side::

    class Exp(Function):
        @staticmethod
        def forward(ctx, x):                 # plain ndarrays in ...
            y = np.exp(x)
            ctx.save_for_backward(y)         # ... keep exactly what backward needs ...
            return y                         # ... a plain ndarray out
        @staticmethod
        def backward(ctx, grad):             # dL/dy in ...
            (y,) = ctx.saved
            return grad * y                  # ... dL/dx out, one per forward input

``Exp.apply(t)`` unwraps Tensors, runs ``forward``, and wraps the result in a Tensor that remembers the
``Function`` and its inputs (the graph). ``Tensor.backward()`` calls ``backward`` below, which visits the graph
once, in reverse topological order, iteratively (so a chain of thousands of ops never hits Python's recursion
limit), and sums every contribution a node receives before passing its gradient on: a tensor used twice gets
both. Broadcasting is undone here, in one place (``unbroadcast``): an op may return a gradient of its output's
broadcast shape and this file sums it back to its input's shape, then checks the shape and names the op if it
is still wrong.

The engine (``minicnn/engine.py``) hears of each kind of op once, in ``Function.apply`` and in ``backward``:
that a backward will come and that it is about to run, so that it can compile the backward's kernels ahead.
"""
from __future__ import annotations

import contextlib
import time

import numpy as np

from . import engine

__all__ = ["Function", "Context", "backward", "no_grad", "enable_grad", "is_grad_enabled", "unbroadcast",
           "profile"]

_grad_enabled = True
_profile = None     # while profiling: op name → [calls, forward seconds, backward seconds]


def is_grad_enabled() -> bool:
    """True unless inside ``no_grad()``."""
    return _grad_enabled


@contextlib.contextmanager
def _set_grad_enabled(mode: bool):
    global _grad_enabled
    previous, _grad_enabled = _grad_enabled, mode
    try:
        yield
    finally:
        _grad_enabled = previous


def no_grad():
    """Context manager: ops inside record no graph and save nothing for backward (evaluation, updates).

    >>> import minicnn as mc
    >>> w = mc.Tensor([1.0], requires_grad=True)
    >>> with mc.no_grad():
    ...     y = w * 2
    >>> y.requires_grad
    False
    """
    return _set_grad_enabled(False)


def enable_grad():
    """Context manager: turn graph recording back on inside a ``no_grad()`` block."""
    return _set_grad_enabled(True)


class _Profile(dict):
    """Seconds spent in each op's forward and backward while ``profile()`` was active."""

    def table(self) -> str:
        total = sum(f + b for _, f, b in self.values()) or 1.0
        lines = [f"{'op':<18}{'calls':>7}{'forward ms':>12}{'backward ms':>13}{'share':>8}"]
        for name, (calls, f, b) in sorted(self.items(), key=lambda kv: -(kv[1][1] + kv[1][2])):
            lines.append(f"{name:<18}{calls:>7}{f * 1e3:>12.2f}{b * 1e3:>13.2f}{(f + b) / total:>8.1%}")
        return "\n".join(lines)


@contextlib.contextmanager
def profile():
    """Time every op's forward and backward while active; the yielded dict holds, per op name,
    [calls, forward seconds, backward seconds], and its ``table()`` shows where the time goes.

    >>> import minicnn as mc
    >>> with mc.autograd.profile() as stats:
    ...     (mc.Tensor([1.0, 2.0], requires_grad=True) * 3).sum().backward()
    >>> sorted(stats)
    ['Mul', 'Sum']
    """
    global _profile
    previous, _profile = _profile, _Profile()
    stats = _profile
    try:
        yield stats
    finally:
        _profile = previous


def _account(name: str, slot: int, seconds: float) -> None:
    entry = _profile.setdefault(name, [0, 0.0, 0.0])
    entry[slot] += seconds
    if slot == 1:
        entry[0] += 1


class Context:
    """What a ``Function`` keeps between its forward and its backward.

    ``needs_input_grad[i]`` says whether input i wants a gradient, so backward can skip work nobody uses
    (for example the gradient of a network's input image).
    """

    __slots__ = ("saved", "needs_input_grad", "__dict__")

    def __init__(self, needs_input_grad):
        self.saved = ()
        self.needs_input_grad = needs_input_grad

    def save_for_backward(self, *arrays):
        self.saved = arrays


class Function:
    """Base class of every differentiable op. Subclasses define ``forward`` and ``backward`` (see module doc)."""

    @staticmethod
    def forward(ctx, *args, **kwargs):
        raise NotImplementedError

    @staticmethod
    def backward(ctx, grad_output):
        raise NotImplementedError

    @classmethod
    def apply(cls, *args, **kwargs):
        """Run the op on Tensors (or plain values) and record it in the graph when a gradient is wanted.

        Positional Tensor arguments are differentiable inputs; keyword arguments are settings (stride, axis).
        """
        tensors = [a if isinstance(a, Tensor) else None for a in args]
        needs = tuple([_grad_enabled and t is not None and t.requires_grad for t in tensors])
        record = True in needs         # under no_grad nothing is recorded, so no input wants a gradient
        ctx = Context(needs)
        raw = [a if t is None else t.data for a, t in zip(args, tensors)]
        if record:
            _tell_engine(engine.expect, cls.__name__, getattr(raw[0], "dtype", None))
        if _profile is None:
            out = Tensor._wrap(cls.forward(ctx, *raw, **kwargs), requires_grad=record)
        else:
            started = time.perf_counter()
            out = Tensor._wrap(cls.forward(ctx, *raw, **kwargs), requires_grad=record)
            _account(cls.__name__, 1, time.perf_counter() - started)
        if record:
            out._node = _Node(cls, ctx, tuple(tensors), tuple([None if t is None else t._version for t in tensors]))
        return out


_told = set()


def _tell_engine(hook, op, dtype):
    """Tell the engine, the first time only, that a backward of ``op`` will come (``engine.expect``: it may
    start compiling its kernels meanwhile) or is about to run (``engine.ready``)."""
    key = (hook, engine._chosen, op, dtype)
    if key not in _told:
        _told.add(key)
        hook(op, dtype)


class _Node:
    """An edge of the graph: which Function made a tensor, its context, its inputs, and their versions then
    (each in-place change of a tensor counts one), so that a backward can refuse inputs changed since."""

    __slots__ = ("function", "ctx", "inputs", "versions")

    def __init__(self, function, ctx, inputs, versions):
        self.function, self.ctx, self.inputs, self.versions = function, ctx, inputs, versions


def unbroadcast(grad: np.ndarray, shape: tuple, op: str) -> np.ndarray:
    """Sum a gradient of a broadcast result back to the shape of the input that was broadcast.

    Broadcasting (N, 3) + (3,) repeats the (3,) operand N times, so its gradient is the sum over those N rows:
    leading axes that broadcasting added are summed away, and axes where the input had size 1 are summed with
    keepdims. Raises ``RuntimeError`` naming the op when the result still does not match.

    >>> unbroadcast(np.ones((4, 3)), (3,), "add").tolist()
    [4.0, 4.0, 4.0]
    >>> unbroadcast(np.ones((4, 3)), (4, 1), "add").shape
    (4, 1)
    """
    if grad.shape == tuple(shape):
        return grad
    extra = grad.ndim - len(shape)
    if extra > 0:
        grad = grad.sum(axis=tuple(range(extra)))
    if extra >= 0:
        axes = tuple(i for i, n in enumerate(shape) if n == 1 and grad.shape[i] != 1)
        if axes:
            grad = grad.sum(axis=axes, keepdims=True)
    if grad.shape != tuple(shape):
        raise RuntimeError(f"{op}.backward returned a gradient of shape {grad.shape} for an input of shape "
                           f"{tuple(shape)}; the op's backward is wrong")
    return grad


def _topological_order(root):
    """Tensors reachable from ``root`` through recorded ops, each after everything that consumes it reversed:
    i.e. the returned list has every tensor after all the tensors it was computed from. Iterative DFS."""
    order, visited = [], set()
    stack = [(root, False)]
    while stack:
        tensor, expanded = stack.pop()
        if expanded:
            order.append(tensor)
            continue
        if id(tensor) in visited:
            continue
        visited.add(id(tensor))
        stack.append((tensor, True))
        if tensor._node is not None:
            for parent in tensor._node.inputs:
                if parent is not None and parent.requires_grad and id(parent) not in visited:
                    stack.append((parent, False))
    return order


def backward(root, grad: np.ndarray, retain_graph: bool = False) -> None:
    """Propagate ``grad`` (dL/droot) to every leaf tensor that requires a gradient; see ``Tensor.backward``."""
    grads = {id(root): grad}
    for tensor in reversed(_topological_order(root)):
        g = grads.pop(id(tensor), None)
        if g is None:
            continue
        node = tensor._node
        if node is None:                                   # a leaf: accumulate into .grad
            tensor.grad = g.copy() if tensor.grad is None else tensor.grad + g
            continue
        if node.ctx is None:
            raise RuntimeError(f"{node.function.__name__}: trying to backward through the graph a second "
                               "time; its saved arrays were freed. Pass retain_graph=True to the first "
                               "backward() if you need to call it twice.")
        name = node.function.__name__
        for parent, version in zip(node.inputs, node.versions):
            if parent is not None and parent._version != version:
                raise RuntimeError(f"{name}.backward: one of its inputs (shape {parent.shape}) was changed in place "
                                   "after the forward pass; its gradient would be wrong. Change it after "
                                   "backward(), or work on a copy (.clone()).")
        _tell_engine(engine.ready, name, g.dtype)
        started = time.perf_counter()
        input_grads = node.function.backward(node.ctx, g)
        if _profile is not None:
            _account(name, 2, time.perf_counter() - started)
        if not isinstance(input_grads, tuple):
            input_grads = (input_grads,)
        if len(input_grads) != len(node.inputs):
            raise RuntimeError(f"{name}.backward returned {len(input_grads)} gradients for "
                               f"{len(node.inputs)} inputs")
        for parent, pg in zip(node.inputs, input_grads):
            if parent is None or pg is None or not parent.requires_grad:
                continue
            pg = unbroadcast(np.asarray(pg, dtype=parent.data.dtype), parent.shape, name)
            key = id(parent)
            grads[key] = pg if key not in grads else grads[key] + pg
        if not retain_graph:
            node.ctx = None                                 # free the saved arrays


from .tensor import Tensor  # noqa: E402  (tensor.py imports this module at its end; Tensor is defined by then)
