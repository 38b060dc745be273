"""``Tensor``: a NumPy array that remembers how it was computed, so gradients can flow back through it.

    t.data          the values, a float32 ``numpy.ndarray`` (float64 when asked for, e.g. for gradient checks)
    t.grad          dL/dt after ``loss.backward()``: an ndarray of t's shape, or None
    t.requires_grad whether gradients are wanted for t (parameters: yes; images: no)

Every operator (``+ - * / ** @``, ``exp``, ``sum``, ``reshape``, slicing, ...) is a ``Function`` from
``minicnn.functional``; the methods here only forward to them, so each op's maths lives in one place.
"""
from __future__ import annotations

import numbers

import numpy as np

__all__ = ["Tensor", "as_tensor"]

_FLOAT_TYPES = (np.float32, np.float64)


def _as_array(data, dtype) -> np.ndarray:
    """Convert ``data`` to a float ndarray: float32 unless ``dtype`` says float64. Refuse what is not numeric."""
    if isinstance(data, Tensor):
        data = data.data
    array = np.asarray(data)
    if array.dtype.kind not in "biuf":
        raise TypeError(f"Tensor: data must be numeric (bool, int or float), got dtype {array.dtype}")
    dtype = np.dtype(np.float32 if dtype is None else dtype)
    if dtype.type not in _FLOAT_TYPES:
        raise TypeError(f"Tensor: dtype must be float32 or float64, got {dtype}")
    return np.asarray(array, dtype=dtype, order="C")     # (ascontiguousarray would turn 0-d into 1-d)


class Tensor:
    """An n-dimensional array with a gradient.

    Args:
        data: anything ``numpy.asarray`` accepts (array, list, number). It is converted to float32, the
            dtype of every layer, unless ``dtype=np.float64`` is given (used for finite-difference checks).
        requires_grad: record the ops applied to this tensor so ``backward()`` can fill ``.grad``.
        dtype: ``np.float32`` (default) or ``np.float64``.

    >>> import minicnn as mc
    >>> x = mc.Tensor([[1.0, 2.0], [3.0, 4.0]], requires_grad=True)
    >>> y = (x * x).sum()
    >>> y.backward()
    >>> x.grad.tolist()
    [[2.0, 4.0], [6.0, 8.0]]
    """

    __array_priority__ = 1000  # so ndarray + Tensor calls Tensor.__radd__ instead of broadcasting elementwise

    def __init__(self, data, requires_grad: bool = False, dtype=None):
        self.data = _as_array(data, dtype)
        self.grad = None
        self.requires_grad = bool(requires_grad)
        self._node = None  # the op that made this tensor (None for a leaf); see autograd.py

    @classmethod
    def _wrap(cls, array: np.ndarray, requires_grad: bool = False) -> "Tensor":
        """Wrap an op's result without copying or converting it (ops keep their inputs' float dtype)."""
        t = cls.__new__(cls)
        t.data = array if isinstance(array, np.ndarray) else np.asarray(array)
        t.grad = None
        t.requires_grad = requires_grad
        t._node = None
        return t

    # ----- what it is -------------------------------------------------------------------------------------
    @property
    def shape(self) -> tuple:
        return self.data.shape

    @property
    def dtype(self):
        return self.data.dtype

    @property
    def ndim(self) -> int:
        return self.data.ndim

    @property
    def size(self) -> int:
        return self.data.size

    def __len__(self) -> int:
        return len(self.data)

    @property
    def is_leaf(self) -> bool:
        """True for tensors made by the user (not by an op); only leaves get ``.grad`` filled by backward."""
        return self._node is None

    def numpy(self) -> np.ndarray:
        """The values as an ndarray (the same memory as ``.data``)."""
        return self.data

    def item(self) -> float:
        """The value of a one-element tensor as a Python float."""
        if self.data.size != 1:
            raise ValueError(f"item(): only one-element tensors can be converted, got shape {self.shape}")
        return self.data.item()

    def detach(self) -> "Tensor":
        """The same values, cut from the graph: no gradient flows through the result."""
        return Tensor._wrap(self.data)

    def __repr__(self) -> str:
        body = np.array2string(self.data, precision=4, separator=", ", prefix="tensor(")
        grad = ", requires_grad=True" if self.requires_grad else ""
        dtype = "" if self.dtype == np.float32 else f", dtype={self.dtype}"
        return f"tensor({body}{dtype}{grad})"

    # ----- gradients --------------------------------------------------------------------------------------
    def backward(self, grad=None, retain_graph: bool = False) -> None:
        """Compute dself/dleaf for every leaf tensor with ``requires_grad`` and *add* it to ``leaf.grad``.

        Args:
            grad: dL/dself, of self's shape. May be omitted only when self holds one number (a loss), in which
                case it is 1.
            retain_graph: keep the saved arrays so backward can run through the same graph again.

        Gradients accumulate: calling backward twice (on two forward passes) adds both gradients into
        ``.grad``. That is what you want for gradient accumulation and what you must undo otherwise: call
        ``optimizer.zero_grad()`` (or ``model.zero_grad()``) before each new backward.
        """
        if not self.requires_grad:
            raise RuntimeError("backward(): this tensor does not require grad and has no graph; "
                               "create the inputs or parameters with requires_grad=True")
        if grad is None:
            if self.data.size != 1:
                raise RuntimeError(f"backward(): grad can be omitted only for a one-element tensor (a loss); "
                                   f"got shape {self.shape}, so pass grad= of that shape")
            grad = np.ones_like(self.data)
        else:
            grad = _as_array(grad, self.dtype)
            if grad.shape != self.shape:
                raise ValueError(f"backward(): grad must have the tensor's shape {self.shape}, got {grad.shape}")
        autograd.backward(self, grad, retain_graph=retain_graph)

    def zero_grad(self) -> None:
        self.grad = None

    # ----- arithmetic (each a Function in functional/elementwise.py) ---------------------------------------
    def _operand(self, other) -> "Tensor":
        """A constant operand (number or array) as a Tensor of this tensor's dtype, so float32 stays float32."""
        if isinstance(other, Tensor):
            return other
        if not isinstance(other, (numbers.Number, np.ndarray, list, tuple, np.generic)):
            raise TypeError(f"unsupported operand type for a Tensor op: {type(other).__name__}")
        return Tensor._wrap(np.asarray(other, dtype=self.dtype))

    def __add__(self, other):
        return F.add(self, self._operand(other))

    def __radd__(self, other):
        return F.add(self._operand(other), self)

    def __sub__(self, other):
        return F.sub(self, self._operand(other))

    def __rsub__(self, other):
        return F.sub(self._operand(other), self)

    def __mul__(self, other):
        return F.mul(self, self._operand(other))

    def __rmul__(self, other):
        return F.mul(self._operand(other), self)

    def __truediv__(self, other):
        return F.div(self, self._operand(other))

    def __rtruediv__(self, other):
        return F.div(self._operand(other), self)

    def __neg__(self):
        return F.neg(self)

    def __pow__(self, exponent):
        return F.pow(self, exponent)

    def __matmul__(self, other):
        return F.matmul(self, self._operand(other))

    def __rmatmul__(self, other):
        return F.matmul(self._operand(other), self)

    def matmul(self, other):
        return self @ other

    def exp(self):
        return F.exp(self)

    def log(self):
        return F.log(self)

    def relu(self):
        return F.relu(self)

    # ----- reductions (functional/reduction.py) -------------------------------------------------------------
    def sum(self, axis=None, keepdims: bool = False):
        return F.sum(self, axis=axis, keepdims=keepdims)

    def mean(self, axis=None, keepdims: bool = False):
        return F.mean(self, axis=axis, keepdims=keepdims)

    def max(self, axis=None, keepdims: bool = False):
        return F.max(self, axis=axis, keepdims=keepdims)

    # ----- shape (functional/shape.py) ----------------------------------------------------------------------
    def reshape(self, *shape):
        shape = shape[0] if len(shape) == 1 and isinstance(shape[0], (tuple, list)) else shape
        return F.reshape(self, tuple(shape))

    def transpose(self, dim0: int = 0, dim1: int = 1):
        """Swap two axes (PyTorch's ``transpose``); ``permute`` reorders all of them."""
        axes = list(range(self.ndim))
        axes[dim0], axes[dim1] = axes[dim1], axes[dim0]
        return F.permute(self, tuple(axes))

    def permute(self, *axes):
        axes = axes[0] if len(axes) == 1 and isinstance(axes[0], (tuple, list)) else axes
        return F.permute(self, tuple(axes))

    @property
    def T(self):
        """The matrix transpose (reverses all axes, as ``ndarray.T``)."""
        return F.permute(self, tuple(reversed(range(self.ndim))))

    def flatten(self, start_dim: int = 0, end_dim: int = -1):
        return F.flatten(self, start_dim, end_dim)

    def __getitem__(self, index):
        return F.getitem(self, index)


def as_tensor(x) -> Tensor:
    """``x`` itself if it is a Tensor, else a new float32 Tensor of its values (no gradient)."""
    return x if isinstance(x, Tensor) else Tensor(x)


# Imported last: they build on Tensor, which is defined by now. The cycle (functional makes Tensors, Tensor's
# operators call functional) is kept on purpose: it lets ``a + b`` and ``F.add(a, b)`` be one op with its maths
# in one place, and the alternative (operators patched onto Tensor from functional) would hide where ``+`` lives.
from . import autograd  # noqa: E402
from . import functional as F  # noqa: E402
