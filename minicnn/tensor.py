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
        self._version = 0  # counts in-place changes, so a backward can refuse values changed under it

    @classmethod
    def _wrap(cls, array: np.ndarray, requires_grad: bool = False) -> "Tensor":
        """Wrap an op's result without copying or converting it (ops keep their inputs' float dtype; argmax and
        comparisons make int64 and bool tensors, which carry no gradient)."""
        t = cls.__new__(cls)
        t.data = array if isinstance(array, np.ndarray) else np.asarray(array)
        t.grad = None
        t.requires_grad = requires_grad
        t._node = None
        t._version = 0
        return t

    __hash__ = object.__hash__        # by identity, as PyTorch's (``==`` compares elementwise, below)

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

    def size(self, dim=None):
        """The shape (a tuple), or its length along ``dim``, as PyTorch's ``size()``; ``numel()`` counts elements."""
        if dim is None:
            return self.data.shape
        if not -self.ndim <= dim < self.ndim:
            raise IndexError(f"size: dim {dim} is out of range for a {self.ndim}-D tensor")
        return self.data.shape[dim]

    def numel(self) -> int:
        """The number of elements."""
        return self.data.size

    def dim(self) -> int:
        """The number of axes (``ndim``)."""
        return self.data.ndim

    def __len__(self) -> int:
        if self.ndim == 0:
            raise TypeError("len() of a 0-d tensor")
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

    def tolist(self):
        return self.data.tolist()

    def __float__(self) -> float:
        return float(self.item())

    def __int__(self) -> int:
        return int(self.item())

    def __bool__(self) -> bool:
        if self.data.size != 1:
            raise RuntimeError(f"the truth value of a tensor with {self.data.size} elements is ambiguous; "
                               "use .any() or .all()")
        return bool(self.data.item())

    def any(self) -> "Tensor":
        return Tensor._wrap(np.asarray(self.data.any()))

    def all(self) -> "Tensor":
        return Tensor._wrap(np.asarray(self.data.all()))

    def detach(self) -> "Tensor":
        """The same values (the same memory, as in PyTorch), cut from the graph: no gradient flows through it."""
        return Tensor._wrap(self.data)

    def clone(self) -> "Tensor":
        """A copy of the values that stays in the graph (its gradient flows back to this tensor)."""
        return F.cast(self, self.dtype)

    def requires_grad_(self, requires_grad: bool = True) -> "Tensor":
        """Switch gradient recording on (or off) for this leaf tensor, in place; returns it."""
        if requires_grad and self.dtype.kind != "f":
            raise RuntimeError(f"only floating-point tensors can require gradients, got dtype {self.dtype}")
        if not self.is_leaf and not requires_grad:
            raise RuntimeError("requires_grad_(False) on a tensor computed by an op: use .detach()")
        self.requires_grad = bool(requires_grad)
        return self

    # ----- dtype ---------------------------------------------------------------------------------------------
    def to(self, dtype=None, *args, **kwargs) -> "Tensor":
        """This tensor in ``dtype`` (float32 or float64; differentiable). A device ``"cpu"`` is accepted and
        changes nothing; another device is refused."""
        device = kwargs.pop("device", None)
        dtype = kwargs.pop("dtype", dtype)
        if kwargs or args:
            raise TypeError(f"to: unexpected arguments {args or ''} {kwargs or ''}")
        if isinstance(dtype, str) and dtype in ("cpu", "cuda", "mps") or (dtype is not None and not isinstance(
                dtype, (str, type, np.dtype))):
            device, dtype = dtype, None
        if device is not None and str(device) != "cpu":
            raise ValueError(f"to: minicnn runs on the CPU only, got device {device!r}")
        if dtype is None or np.dtype(dtype) == self.dtype:
            return self
        return F.cast(self, dtype)

    def float(self) -> "Tensor":
        return self.to(np.float32)

    def double(self) -> "Tensor":
        return self.to(np.float64)

    def cpu(self) -> "Tensor":
        return self

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

    def zero_grad(self, set_to_none: bool = True) -> None:
        """Forget the gradient: ``.grad = None`` (PyTorch's default), or zeros in place with
        ``set_to_none=False`` (a gradient that is None stays None)."""
        if set_to_none or self.grad is None:
            self.grad = None
        else:
            self.grad[...] = 0

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

    def sqrt(self):
        return F.sqrt(self)

    def abs(self):
        return F.abs(self)

    def __abs__(self):
        return F.abs(self)

    def clamp(self, min=None, max=None):  # noqa: A002  (PyTorch's argument names)
        return F.clamp(self, min, max)

    def softmax(self, dim):
        return F.softmax(self, dim)

    def log_softmax(self, dim):
        return F.log_softmax(self, dim)

    # ----- comparisons: boolean tensors, no gradient (as PyTorch) -----------------------------------------------
    def _compare(self, other, op):
        value = other.data if isinstance(other, Tensor) else np.asarray(other)
        return Tensor._wrap(np.asarray(op(self.data, value)))

    def __eq__(self, other):
        return self._compare(other, np.equal)

    def __ne__(self, other):
        return self._compare(other, np.not_equal)

    def __lt__(self, other):
        return self._compare(other, np.less)

    def __le__(self, other):
        return self._compare(other, np.less_equal)

    def __gt__(self, other):
        return self._compare(other, np.greater)

    def __ge__(self, other):
        return self._compare(other, np.greater_equal)

    # ----- in place: only where no gradient is being recorded (as PyTorch) ------------------------------------
    def _in_place(self, op, other) -> "Tensor":
        """``self.data ← op(self.data, other)`` in place. Refused on a tensor computed by an op (its values
        may be saved for a backward), and on a leaf that requires grad unless under ``no_grad`` (PyTorch's
        rule). A backward that needs values changed since shows an error instead of a wrong gradient."""
        if self._node is not None and self.requires_grad:
            raise RuntimeError("in-place operation on a tensor computed by an op that records gradients; "
                               "write y = y + x instead")
        if self.requires_grad and autograd.is_grad_enabled():
            raise RuntimeError("a leaf tensor that requires grad is used in an in-place operation; "
                               "do it inside `with mc.no_grad():` (as PyTorch requires)")
        value = other.data if isinstance(other, Tensor) else np.asarray(other)
        if op is None:
            np.copyto(self.data, value, casting="unsafe")
        else:
            op(self.data, value, out=self.data, casting="unsafe")
        self._version += 1
        return self

    def __iadd__(self, other):
        return self._in_place(np.add, other)

    def __isub__(self, other):
        return self._in_place(np.subtract, other)

    def __imul__(self, other):
        return self._in_place(np.multiply, other)

    def __itruediv__(self, other):
        return self._in_place(np.true_divide, other)

    def add_(self, other):
        return self._in_place(np.add, other)

    def sub_(self, other):
        return self._in_place(np.subtract, other)

    def mul_(self, other):
        return self._in_place(np.multiply, other)

    def div_(self, other):
        return self._in_place(np.true_divide, other)

    def zero_(self):
        return self._in_place(None, 0)

    def fill_(self, value):
        return self._in_place(None, value)

    def copy_(self, source):
        source = source.data if isinstance(source, Tensor) else np.asarray(source)
        if np.broadcast_shapes(source.shape, self.shape) != self.shape:
            raise ValueError(f"copy_: cannot copy shape {source.shape} into shape {self.shape}")
        return self._in_place(None, source)

    # ----- reductions (functional/reduction.py): ``dim``/``keepdim``, ``axis``/``keepdims`` as aliases --------
    def sum(self, dim=None, keepdim: bool = False, *, axis=None, keepdims=None):
        return F.sum(self, dim, keepdim, axis=axis, keepdims=keepdims)

    def mean(self, dim=None, keepdim: bool = False, *, axis=None, keepdims=None):
        return F.mean(self, dim, keepdim, axis=axis, keepdims=keepdims)

    def max(self, dim=None, keepdim: bool = False, *, axis=None, keepdims=None):
        """The maximum, or ``(values, indices)`` along ``dim`` (as PyTorch)."""
        return F.max(self, dim, keepdim, axis=axis, keepdims=keepdims)

    def min(self, dim=None, keepdim: bool = False, *, axis=None, keepdims=None):
        """The minimum, or ``(values, indices)`` along ``dim`` (as PyTorch)."""
        return F.min(self, dim, keepdim, axis=axis, keepdims=keepdims)

    def argmax(self, dim=None, keepdim: bool = False):
        return F.argmax(self, dim, keepdim)

    def argmin(self, dim=None, keepdim: bool = False):
        return F.argmin(self, dim, keepdim)

    # ----- shape (functional/shape.py) ----------------------------------------------------------------------
    def reshape(self, *shape):
        shape = shape[0] if len(shape) == 1 and isinstance(shape[0], (tuple, list)) else shape
        return F.reshape(self, tuple(shape))

    def view(self, *shape):
        """``reshape`` (minicnn's tensors are always contiguous, so every view PyTorch allows is possible)."""
        return self.reshape(*shape)

    def unsqueeze(self, dim: int):
        return F.unsqueeze(self, dim)

    def squeeze(self, dim=None):
        return F.squeeze(self, dim)

    def t(self):
        """The transpose of a 2-D tensor (a 0-D or 1-D one is returned as it is), as PyTorch's ``t()``."""
        if self.ndim > 2:
            raise ValueError(f"t: expects a tensor of at most 2 dimensions, got {self.ndim}-D; use transpose")
        return self if self.ndim < 2 else self.transpose(0, 1)

    def transpose(self, dim0: int, dim1: int):
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
