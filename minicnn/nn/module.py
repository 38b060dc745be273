"""``Module``, ``Parameter`` and ``Sequential``: how layers hold their weights and nest, as in PyTorch.

A ``Module`` registers every ``Parameter`` and sub-``Module`` assigned to it as an attribute, in assignment
order, so ``model.parameters()`` finds them all (in a stable order: a list, never a set) and
``state_dict()`` names them by path (``"0.weight"``, ``"features.3.bias"``).
"""
from __future__ import annotations

from collections import OrderedDict

import numpy as np

from ..tensor import Tensor

__all__ = ["Parameter", "Module", "Sequential"]


class Parameter(Tensor):
    """A Tensor that a Module owns and an optimizer updates: ``requires_grad`` is on by default."""

    def __init__(self, data, requires_grad: bool = True, dtype=None):
        super().__init__(data, requires_grad=requires_grad, dtype=dtype)

    def __repr__(self) -> str:
        return "Parameter containing:\n" + super().__repr__()


class Module:
    """Base class of every layer and model. Subclasses set parameters and sub-modules in ``__init__`` and define
    ``forward``; calling the module calls ``forward``.

    >>> from minicnn import nn
    >>> model = nn.Sequential(nn.Linear(4, 3), nn.ReLU())
    >>> [name for name, _ in model.named_parameters()]
    ['0.weight', '0.bias']
    """

    def __init__(self):
        object.__setattr__(self, "_parameters", OrderedDict())
        object.__setattr__(self, "_modules", OrderedDict())
        object.__setattr__(self, "training", True)

    def __setattr__(self, name, value):
        if "_parameters" not in self.__dict__:
            raise AttributeError(f"{type(self).__name__}: call super().__init__() before assigning {name!r}")
        if isinstance(value, Parameter):                 # replacing one keeps its place (``w += 1`` assigns w)
            self._modules.pop(name, None)
            self._parameters[name] = value
        elif isinstance(value, Module):
            self._parameters.pop(name, None)
            self._modules[name] = value
        else:
            self._parameters.pop(name, None)
            self._modules.pop(name, None)
            if value is None and name in ("weight", "bias"):
                self._parameters[name] = None      # a layer built with bias=False still answers .bias
        object.__setattr__(self, name, value)

    def forward(self, *args, **kwargs):
        raise NotImplementedError(f"{type(self).__name__} must define forward()")

    def __call__(self, *args, **kwargs):
        return self.forward(*args, **kwargs)

    # ----- walking the tree ---------------------------------------------------------------------------------
    def children(self):
        """The direct sub-modules, in the order they were assigned."""
        return iter(self._modules.values())

    def named_children(self):
        """(name, sub-module) for the direct sub-modules, in the order they were assigned."""
        return iter(self._modules.items())

    def named_modules(self, prefix: str = ""):
        """(name, module) for this module and every module below it, depth first."""
        yield prefix, self
        for name, child in self._modules.items():
            yield from child.named_modules(f"{prefix}.{name}" if prefix else name)

    def modules(self):
        return (m for _, m in self.named_modules())

    def named_parameters(self, prefix: str = ""):
        """(path, parameter) for every parameter of this module and its sub-modules, in a fixed order."""
        for module_name, module in self.named_modules(prefix):
            for name, p in module._parameters.items():
                if p is not None:
                    yield (f"{module_name}.{name}" if module_name else name), p

    def parameters(self):
        """Every parameter, each once, in a fixed order (what an optimizer takes)."""
        seen = set()
        for _, p in self.named_parameters():
            if id(p) not in seen:
                seen.add(id(p))
                yield p

    # ----- modes and gradients ------------------------------------------------------------------------------
    def train(self, mode: bool = True) -> "Module":
        """Training mode (dropout active). Returns self."""
        for m in self.modules():
            object.__setattr__(m, "training", bool(mode))
        return self

    def eval(self) -> "Module":
        """Evaluation mode (dropout off). Returns self."""
        return self.train(False)

    def zero_grad(self, set_to_none: bool = True) -> None:
        """Forget every parameter's gradient (``.grad = None``, or zeros with ``set_to_none=False``); backward
        adds into ``.grad`` otherwise."""
        for p in self.parameters():
            p.zero_grad(set_to_none)

    def requires_grad_(self, requires_grad: bool = True) -> "Module":
        """Freeze (False) or unfreeze every parameter. A frozen parameter gets no gradient computed at all."""
        for p in self.parameters():
            p.requires_grad = requires_grad
        return self

    def to(self, dtype) -> "Module":
        """Convert every parameter to ``dtype`` (np.float32 or np.float64), in place. Returns self."""
        dtype = np.dtype(dtype)
        if dtype not in (np.float32, np.float64):
            raise TypeError(f"to: dtype must be float32 or float64, got {dtype}")
        for p in self.parameters():
            p.data = p.data.astype(dtype)
            p.grad = None
        return self

    # ----- saving and loading -------------------------------------------------------------------------------
    def state_dict(self) -> "OrderedDict[str, np.ndarray]":
        """A copy of every parameter's values by path; ``mc.save`` writes it, ``load_state_dict`` reads it."""
        return OrderedDict((name, p.data.copy()) for name, p in self.named_parameters())

    def load_state_dict(self, state_dict, strict: bool = True) -> None:
        """Copy values from ``state_dict`` into the parameters (converted to each parameter's dtype).

        Raises ``KeyError`` listing missing and unexpected keys (unless ``strict=False``, which loads what
        matches), and ``ValueError`` naming any parameter whose shape differs.
        """
        own = OrderedDict(self.named_parameters())
        missing = [k for k in own if k not in state_dict]
        unexpected = [k for k in state_dict if k not in own]
        if strict and (missing or unexpected):
            raise KeyError(f"load_state_dict: missing keys {missing}, unexpected keys {unexpected}")
        for name, p in own.items():
            if name not in state_dict:
                continue
            value = state_dict[name]
            value = np.asarray(value.data if hasattr(value, "data") and not isinstance(value, np.ndarray) else value)
            if value.dtype.kind not in "biuf":
                raise TypeError(f"load_state_dict: {name} must be an array of numbers, got "
                                f"{type(state_dict[name]).__name__} of dtype {value.dtype}")
            if value.shape != p.shape:
                raise ValueError(f"load_state_dict: {name} expects shape {p.shape}, got {value.shape}")
        for name, p in own.items():
            if name in state_dict:
                value = state_dict[name]
                value = value.data if hasattr(value, "data") and not isinstance(value, np.ndarray) else value
                p.data = np.array(value, dtype=p.dtype, order="C")

    # ----- printing -----------------------------------------------------------------------------------------
    def extra_repr(self) -> str:
        """The text inside the parentheses of this module's repr (its settings)."""
        return ""

    def __repr__(self) -> str:
        lines = [f"({name}): " + repr(child).replace("\n", "\n  ") for name, child in self._modules.items()]
        if not lines:
            return f"{type(self).__name__}({self.extra_repr()})"
        head = f"{type(self).__name__}({self.extra_repr()}"
        return head + "\n  " + "\n  ".join(lines) + "\n)"


class Sequential(Module):
    """Modules applied one after another: ``Sequential(a, b, c)(x) == c(b(a(x)))``. Indexable like a list.

    The modules are named "0", "1", ... in order; ``Sequential(OrderedDict(name=module, ...))`` names them
    itself, as in PyTorch (``nn.fuse`` keeps the names of the modules it replaces that way).
    """

    def __init__(self, *modules: Module):
        super().__init__()
        named = modules[0].items() if len(modules) == 1 and isinstance(modules[0], OrderedDict) else (
            (str(i), m) for i, m in enumerate(modules))
        for name, m in named:
            if not isinstance(m, Module):
                raise TypeError(f"Sequential: module {name} must be a Module, got {type(m).__name__}")
            setattr(self, name, m)

    def forward(self, x):
        for module in self._modules.values():
            x = module(x)
        return x

    def append(self, module: Module) -> "Sequential":
        setattr(self, str(len(self._modules)), module)
        return self

    def __getitem__(self, index):
        modules = list(self._modules.values())
        if isinstance(index, slice):
            return Sequential(*modules[index])
        return modules[index]

    def __len__(self) -> int:
        return len(self._modules)

    def __iter__(self):
        return iter(self._modules.values())
