"""Making tensors, as PyTorch's factories do: ``mc.tensor``, ``zeros``, ``ones``, ``rand``, ``randn``, ``arange``,
``from_numpy`` (``cat`` and ``stack`` are ops: ``functional/shape.py``).

``mc.tensor(data)`` keeps the kind of its data, as ``torch.tensor`` does: integers give int64, booleans bool,
floats float32 (float64 when asked). ``mc.Tensor(data)`` always converts to float32, as ``torch.Tensor(data)``.
Only floating-point tensors can require gradients. ``rand`` and ``randn`` draw from minicnn's seeded generator
(``mc.manual_seed``).
"""
from __future__ import annotations

import numpy as np

from .random import generator
from .tensor import Tensor

__all__ = ["tensor", "zeros", "ones", "rand", "randn", "arange", "from_numpy"]


def _shape(size):
    """``zeros(2, 3)`` and ``zeros((2, 3))`` alike."""
    return tuple(size[0]) if len(size) == 1 and isinstance(size[0], (tuple, list)) else tuple(size)


def _float(dtype):
    dtype = np.dtype(np.float32 if dtype is None else dtype)
    if dtype not in (np.float32, np.float64):
        raise TypeError(f"dtype must be float32 or float64, got {dtype}")
    return dtype


def tensor(data, dtype=None, requires_grad: bool = False) -> Tensor:
    """A new tensor holding a copy of ``data``, of its kind (see module docstring) or of ``dtype``."""
    array = np.array(data.data if isinstance(data, Tensor) else data, copy=True)
    if dtype is not None:
        array = array.astype(dtype)
    elif array.dtype.kind == "f":
        array = array.astype(np.float32)
    elif array.dtype.kind in "iu":
        array = array.astype(np.int64)
    elif array.dtype.kind != "b":
        raise TypeError(f"tensor: data must be numeric or boolean, got dtype {array.dtype}")
    if requires_grad and array.dtype.kind != "f":
        raise RuntimeError(f"tensor: only floating-point tensors can require gradients, got dtype {array.dtype}")
    return Tensor._wrap(np.ascontiguousarray(array) if array.ndim else array, requires_grad=bool(requires_grad))


def zeros(*size, dtype=None, requires_grad: bool = False) -> Tensor:
    return Tensor(np.zeros(_shape(size), _float(dtype)), requires_grad=requires_grad, dtype=_float(dtype))


def ones(*size, dtype=None, requires_grad: bool = False) -> Tensor:
    return Tensor(np.ones(_shape(size), _float(dtype)), requires_grad=requires_grad, dtype=_float(dtype))


def rand(*size, dtype=None, requires_grad: bool = False) -> Tensor:
    """Uniform on [0, 1)."""
    return Tensor(generator().random(_shape(size)), requires_grad=requires_grad, dtype=_float(dtype))


def randn(*size, dtype=None, requires_grad: bool = False) -> Tensor:
    """Standard normal."""
    return Tensor(generator().standard_normal(_shape(size)), requires_grad=requires_grad, dtype=_float(dtype))


def arange(start, end=None, step=1, dtype=None, requires_grad: bool = False) -> Tensor:
    """start, start + step, ... below end (``arange(n)``: 0 … n − 1). int64 when all three are ints, as PyTorch."""
    if end is None:
        start, end = 0, start
    values = np.arange(start, end, step)
    return tensor(values, dtype=dtype, requires_grad=requires_grad)


def from_numpy(array: np.ndarray) -> Tensor:
    """A tensor sharing ``array``'s memory (float32, float64, integers or bool; C-contiguous)."""
    if not isinstance(array, np.ndarray):
        raise TypeError(f"from_numpy: expected a numpy.ndarray, got {type(array).__name__}")
    if array.dtype.kind not in "fiub" or array.dtype == np.float16:
        raise TypeError(f"from_numpy: unsupported dtype {array.dtype}")
    if not array.flags.c_contiguous:
        raise ValueError("from_numpy: the array must be C-contiguous (np.ascontiguousarray makes a copy that is)")
    return Tensor._wrap(array)
