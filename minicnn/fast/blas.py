"""Matrix products split among Numba's threads, each thread calling BLAS on its share of the rows.

Twin: ``gemm`` in ``tests/fast_twins.py``. ``gemm(a, b, trans_a, trans_b)`` returns ``op(a) @ op(b)`` (op: the
matrix or its transpose), what the linear layer needs forward and backward::

    y  = x @ Wᵀ        gemm(x, W, trans_b=True)          x (N, in), W (out, in)
    dx = g @ W         gemm(g, W)                        g (N, out)
    dW = gᵀ @ x        gemm(g, x, trans_a=True)

Why: inside minicnn OpenBLAS runs on one thread (``threads.py``: its own thread pool fought Numba's). That left
the linear layers on one core. Here the rows of the result are cut into one band per thread of Numba's pool,
which is already awake, and each thread calls OpenBLAS's ``cblas_?gemm`` for its band, on its own core. The
work is BLAS's, the split Numba's, and there is still one pool.

How a compiled kernel calls a C function and still caches to disk: a ctypes function in a kernel is a raw
address baked into the machine code, which Numba refuses to cache (it changes from process to process).
Instead the kernel calls an *external symbol* by a name of ours, ``minicnn_sgemm`` (``numba.types.
ExternalFunction``), and at import this module tells LLVM's linker where that name is (``llvmlite.binding.
add_symbol``), in every process, before any cached kernel is loaded. Arrays go in as their addresses (ints
of pointer width, as the C calling convention passes a pointer).

Only numpy's bundled OpenBLAS with 64-bit integers (``scipy_cblas_sgemm64_``, numpy ≥ 2 wheels) is wired
in; with any other BLAS ``AVAILABLE`` is False and the callers use numpy's ``@`` on one thread.
"""
import ctypes

import llvmlite.binding as llvm
import numpy as np
from numba import config, types
from numba.extending import overload

from . import in_shares, kernel
from .threads import governor, openblas_library, single_threaded_blas

__all__ = ["AVAILABLE", "gemm"]

#: cblas's constants: row-major storage, no transpose, transpose.
ROW_MAJOR, NO_TRANS, TRANS = 101, 111, 112


def _register_symbols():
    """Point the names ``minicnn_sgemm`` and ``minicnn_dgemm`` at OpenBLAS's cblas gemm; True when done."""
    found = openblas_library()
    if found is None:
        return False
    lib, names = found
    routines = {"minicnn_sgemm": names("cblas_sgemm"), "minicnn_dgemm": names("cblas_dgemm")}
    if not names("").endswith("64_") or not all(hasattr(lib, name) for name in routines.values()):
        return False                                   # 32-bit integers, or no cblas: not wired in
    for ours, theirs in routines.items():
        llvm.add_symbol(ours, ctypes.cast(getattr(lib, theirs), ctypes.c_void_p).value)
    return True


AVAILABLE = _register_symbols()


def _gemm_signature(real):
    """cblas_?gemm(order, trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc), 64-bit integers,
    A, B and C as addresses."""
    i32, i64 = types.int32, types.int64
    return types.void(i32, i32, i32, i64, i64, i64, real, i64, i64, i64, i64, real, i64, i64)


_sgemm = types.ExternalFunction("minicnn_sgemm", _gemm_signature(types.float32))
_dgemm = types.ExternalFunction("minicnn_dgemm", _gemm_signature(types.float64))


def _gemm_rows(a, b, c, m0, m1, trans_a, trans_b):
    """c[m0:m1] = (op(a) @ op(b))[m0:m1] through BLAS (compiled only: see the overload below)."""
    raise NotImplementedError("only callable inside a compiled kernel")


@overload(_gemm_rows)
def _gemm_rows_overload(a, b, c, m0, m1, trans_a, trans_b):
    routine = _sgemm if a.dtype == types.float32 else _dgemm          # chosen once per dtype, when compiling

    def gemm_rows(a, b, c, m0, m1, trans_a, trans_b):
        N = c.shape[1]
        K = a.shape[0] if trans_a else a.shape[1]
        lda, ldb = a.shape[1], b.shape[1]
        first = m0 if trans_a else m0 * lda                              # op(a)'s row m0: a's column or row
        routine(np.int32(ROW_MAJOR), np.int32(TRANS if trans_a else NO_TRANS),
                np.int32(TRANS if trans_b else NO_TRANS), m1 - m0, N, K, 1.0,
                a.ctypes.data + first * a.itemsize, lda, b.ctypes.data, ldb,
                0.0, c.ctypes.data + m0 * N * c.itemsize, N)
    return gemm_rows


@kernel
def _gemm_band(args, t, T):
    """Band t of T of c = op(a) @ op(b) (+ bias on every row, unless bias is empty; through max(·, 0) when
    ``relu``): the rows t·M // T up to (t + 1)·M // T of c (the bands are disjoint). The bias and the ReLU are
    applied to the band while it is in the core's cache. Arguments: a, b, bias, relu, c, trans_a, trans_b."""
    a, b, bias, relu, c, trans_a, trans_b = args
    M, N = c.shape
    m0, m1 = t * M // T, (t + 1) * M // T
    if m1 > m0:
        _gemm_rows(a, b, c, m0, m1, trans_a, trans_b)
        if bias.shape[0] > 0 or relu:
            for m in range(m0, m1):
                for j in range(N):
                    v = c[m, j] + bias[j] if bias.shape[0] > 0 else c[m, j]
                    c[m, j] = 0 if relu and v <= 0 else v                 # as fast/activation.py: NaN stays


#: The bands on Numba's threads, one each (``shares.py``).
_gemm_split = in_shares(_gemm_band)

#: Products of fewer multiply-adds than this (M·K·N) run on the calling thread, through numpy: waking the other
#: thread costs more than it saves (a 64 × 84 by 84 × 10 product, the pyramids' last layer: about 10 µs split,
#: 5 µs not).
SPLIT_MIN_PRODUCTS = 1 << 17


@single_threaded_blas
def gemm(a, b, trans_a=False, trans_b=False, bias=None, threads=None, relu=False):
    """op(a) @ op(b) (+ bias, added to every row; through max(·, 0) when ``relu``) as a new C-contiguous array,
    for 2-D arrays of one dtype (float32 or float64); op is the matrix or its transpose (read in place, not
    copied).

    Splits the result's rows among ``threads`` (default: Numba's thread count) when ``AVAILABLE``; otherwise,
    for other dtypes, for small products (``SPLIT_MIN_PRODUCTS``, unless ``threads`` is given), or under
    ``NUMBA_DISABLE_JIT=1`` (no compiled kernel to call BLAS from), numpy's ``@``.
    OpenBLAS runs on one thread inside (``single_threaded_blas``): each Numba thread's call must stay on its
    own core (with OpenBLAS's own pool on as well, the two pools fight for the cores).
    """
    op_a = a.T if trans_a else a
    op_b = b.T if trans_b else b
    if op_a.shape[1] != op_b.shape[0]:
        raise ValueError(f"gemm: inner dimensions differ: {op_a.shape} @ {op_b.shape}")
    if bias is not None and bias.shape != (op_b.shape[1],):
        raise ValueError(f"gemm: expected bias of shape ({op_b.shape[1]},), got {bias.shape}")
    small = threads is None and op_a.shape[0] * op_a.shape[1] * op_b.shape[1] < SPLIT_MIN_PRODUCTS
    if (small or not AVAILABLE or config.DISABLE_JIT or a.dtype != b.dtype or a.dtype not in (np.float32, np.float64)
            or 0 in op_a.shape + op_b.shape):
        c = np.ascontiguousarray(op_a @ op_b)
        if bias is not None:
            c += bias
        return np.where(c <= 0, np.zeros((), c.dtype), c) if relu else c
    c = np.empty((op_a.shape[0], op_b.shape[1]), dtype=a.dtype)
    bias = np.zeros(0, a.dtype) if bias is None else np.ascontiguousarray(bias, dtype=a.dtype)
    _gemm_split((np.ascontiguousarray(a), np.ascontiguousarray(b), bias, bool(relu), c, bool(trans_a), bool(trans_b)),
                governor.full if threads is None else int(threads))
    return c
