"""Optimizers: read each parameter's ``.grad``, update its ``.data`` in place. PyTorch's update rules exactly.

SGD (``torch.optim.SGD``), for gradient g of parameter p::

    g ← g + weight_decay · p
    b ← g                                  on the first step (no dampening then)
    b ← momentum · b + (1 − dampening) · g afterwards
    g ← g + momentum · b  (nesterov)   or   g ← b
    p ← p − lr · g

Adam (``torch.optim.Adam``), step t = 1, 2, …::

    g ← g + weight_decay · p
    m ← β1 · m + (1 − β1) · g              v ← β2 · v + (1 − β2) · g²
    p ← p − lr / (1 − β1ᵗ) · m / (√v / √(1 − β2ᵗ) + eps)

Parameters whose ``.grad`` is None (unused, or frozen) are skipped. ``state_dict()``/``load_state_dict()``
save and restore the momentum buffers, so a resumed run continues exactly where it stopped.
"""
from __future__ import annotations

import math
import numbers

import numpy as np

from . import engine

__all__ = ["Optimizer", "SGD", "Adam"]


class Optimizer:
    """Holds the parameter list and the per-parameter state. Subclasses implement ``step``."""

    def __init__(self, params, defaults: dict):
        self.params = list(params)
        if not self.params:
            raise ValueError(f"{type(self).__name__}: got an empty parameter list")
        for key, value in defaults.items():
            setattr(self, key, value)
        self.state: dict[int, dict] = {}        # index of the parameter → its buffers
        self.step_count = 0

    def zero_grad(self, set_to_none: bool = True) -> None:
        """Forget every gradient: ``.grad = None`` (PyTorch's default), or zeros with ``set_to_none=False``."""
        for p in self.params:
            p.zero_grad(set_to_none)

    def step(self) -> None:
        raise NotImplementedError

    def state_dict(self) -> dict:
        """The optimizer's buffers and step count, as a flat dict of arrays (what ``mc.save`` writes)."""
        out = {"step_count": np.asarray(self.step_count)}
        for i, buffers in self.state.items():
            for name, value in buffers.items():
                out[f"{i}.{name}"] = np.asarray(value)
        return out

    def load_state_dict(self, state: dict) -> None:
        """Restore what ``state_dict`` returned (the parameters must be the same, in the same order)."""
        self.step_count = int(state["step_count"])
        self.state = {}
        for key, value in state.items():
            if key == "step_count":
                continue
            index, name = key.split(".", 1)
            index = int(index)
            if not 0 <= index < len(self.params):
                raise KeyError(f"{type(self).__name__}.load_state_dict: state for parameter {index}, "
                               f"but the optimizer has {len(self.params)} parameters")
            value = np.asarray(value)
            if value.ndim and value.shape != self.params[index].shape:
                raise ValueError(f"{type(self).__name__}.load_state_dict: {key} has shape {value.shape}, "
                                 f"parameter {index} has shape {self.params[index].shape}")
            self.state.setdefault(index, {})[name] = (np.array(value, dtype=self.params[index].dtype, order="C")
                                                       if value.ndim else value.item())


def _check_non_negative(op, **values):
    """Each value a finite number ≥ 0 (NumPy's numbers too); NaN or infinity would train to NaN silently."""
    for name, value in values.items():
        if (not isinstance(value, numbers.Real) or isinstance(value, bool) or not math.isfinite(value)
                or value < 0):
            raise ValueError(f"{op}: {name} must be a finite, non-negative number, got {value!r}")


class SGD(Optimizer):
    """Stochastic gradient descent with optional momentum, dampening, weight decay and Nesterov momentum."""

    def __init__(self, params, lr: float = 1e-3, momentum: float = 0.0, dampening: float = 0.0,
                 weight_decay: float = 0.0, nesterov: bool = False):
        _check_non_negative("SGD", lr=lr, momentum=momentum, dampening=dampening, weight_decay=weight_decay)
        if nesterov and (momentum <= 0 or dampening != 0):
            raise ValueError("SGD: nesterov momentum requires momentum > 0 and dampening = 0, "
                             f"got momentum={momentum}, dampening={dampening}")
        super().__init__(params, dict(lr=float(lr), momentum=float(momentum), dampening=float(dampening),
                                      weight_decay=float(weight_decay), nesterov=bool(nesterov)))

    def step(self) -> None:
        """One update of every parameter with a gradient: the rule above, one pass over each (``engine.sgd_step``:
        the plain engine's loop, ``minicnn/plain/optim.py``)."""
        self.step_count += 1
        for i, p in enumerate(self.params):
            if p.grad is None:
                continue
            buffer, first = None, False
            if self.momentum:
                state = self.state.setdefault(i, {})
                buffer = state.get("momentum_buffer")
                if buffer is None:
                    buffer = state["momentum_buffer"] = np.empty(p.shape, dtype=p.dtype)
                    first = True
            engine.sgd_step(p.data, p.grad, buffer, self.lr, self.momentum, self.dampening, self.weight_decay,
                            self.nesterov, first)


class Adam(Optimizer):
    """Adam (Kingma & Ba, 2015) with bias correction and optional L2 weight decay (added to the gradient)."""

    def __init__(self, params, lr: float = 1e-3, betas=(0.9, 0.999), eps: float = 1e-8, weight_decay: float = 0.0,
                 amsgrad: bool = False):
        if amsgrad:
            raise NotImplementedError("Adam: amsgrad=True is not supported")
        _check_non_negative("Adam", lr=lr, eps=eps, weight_decay=weight_decay)
        if len(betas) != 2 or not all(isinstance(b, numbers.Real) and 0.0 <= b < 1.0 for b in betas):
            raise ValueError(f"Adam: betas must be two numbers in [0, 1), got {betas!r}")
        super().__init__(params, dict(lr=float(lr), betas=tuple(float(b) for b in betas), eps=float(eps),
                                      weight_decay=float(weight_decay)))

    def step(self) -> None:
        self.step_count += 1
        beta1, beta2 = self.betas
        for i, p in enumerate(self.params):
            if p.grad is None:
                continue
            g = p.grad
            if self.weight_decay:
                g = g + self.weight_decay * p.data
            state = self.state.setdefault(i, {})
            if "exp_avg" not in state:
                state["step"] = 0
                state["exp_avg"] = np.zeros_like(p.data)
                state["exp_avg_sq"] = np.zeros_like(p.data)
            state["step"] += 1
            t = state["step"]
            m, v = state["exp_avg"], state["exp_avg_sq"]
            m *= beta1
            m += (1.0 - beta1) * g
            v *= beta2
            v += (1.0 - beta2) * g * g
            step_size = self.lr / (1.0 - beta1 ** t)
            denom = np.sqrt(v) / math.sqrt(1.0 - beta2 ** t) + self.eps
            p.data -= (step_size * m / denom).astype(p.dtype, copy=False)
