"""The engine room: Numba-compiled loops on contiguous NumPy arrays.

Every function here takes plain arrays (C-contiguous, float32, or float64 for gradient checks) and Python ints,
and returns new arrays. None of them knows about ``Tensor``, autograd or modules: you can call, test and time a
kernel on its own. Each has a twin of the same name in ``minicnn.reference`` written as plain loops to be read;
the tests check that the two agree.

Compilation is lazy: ``import minicnn`` compiles nothing. The first call with a new dtype compiles the kernel
(about a second each) and stores the machine code on disk (``cache=True``: next to this file in ``__pycache__``,
or in the user-wide Numba cache folder when this folder is read-only), so later processes load it in
milliseconds. Set ``NUMBA_DISABLE_JIT=1`` to run the same functions as ordinary, steppable Python.

Files: ``shapes.py`` (output sizes and argument checks, shared by all), ``conv.py``, ``pool.py``,
``activation.py``.
"""
import os

import numba

# Numba's default OpenMP thread pool keeps spinning after a parallel loop ends, and so does OpenBLAS's after a
# matrix product. On a 2-core machine the two pools then fight: a prange loop followed by a numpy ``@`` took
# 8 ms instead of 0.8 ms (measured here, numba 0.68, OpenBLAS 0.3.31). The "workqueue" layer parks its threads,
# so we use it unless the user has chosen a layer themselves.
if "NUMBA_THREADING_LAYER" not in os.environ:
    numba.config.THREADING_LAYER = "workqueue"

#: Serial kernel: the default. Cheap to compile, enough for small or memory-bound loops.
kernel = numba.njit(cache=True)

#: Parallel kernel: ``numba.prange`` loops are split among threads. Each kernel documents which axis it splits
#: and why no two iterations write the same cell.
parallel_kernel = numba.njit(cache=True, parallel=True)

#: Parallel kernel whose sums may be reordered (``reassoc``) and fused into multiply-adds (``contract``), so
#: LLVM can vectorise dot products. It does *not* assume "no NaN/inf" (``nnan``/``ninf``), so NaN still
#: propagates; only the rounding of sums changes, by a few ulps.
parallel_sum_kernel = numba.njit(cache=True, parallel=True, fastmath={"reassoc", "contract"})
