"""How the plain engine compiles its loops: ``jit()``, that is ``numba.njit(cache=True)``, documented API only.

The loops run on one thread each. The plain engine's heavy arithmetic is in numpy's matrix products, which
use every core through BLAS's own threads; a second thread pool (``prange``) beside them would fight BLAS for
the cores (each pool's threads spin a while after their work, waiting for more), and cost more than it gains.

Caching needs a writable folder: Numba writes machine code beside the source file, else in the user's cache
folder. Where neither is writable (a read-only install, a user without a writable home), Numba refuses
``cache=True`` outright; the loops then compile in every process instead, and one warning says how to give
them a cache (``NUMBA_CACHE_DIR``). Under ``NUMBA_DISABLE_JIT=1`` every loop runs as plain Python, which a
debugger can step through.
"""
import warnings

import numba

_warned = []


def jit():
    """A decorator: ``numba.njit(cache=True)``, or ``numba.njit`` without the cache where none can be written."""
    def decorate(function):
        try:
            return numba.njit(cache=True)(function)
        except RuntimeError as error:                 # "cannot cache function ...: no locator available"
            if not _warned:
                _warned.append(error)
                warnings.warn(f"minicnn: Numba cannot cache compiled code here ({error}); kernels will compile in "
                              "every process. Set NUMBA_CACHE_DIR to a writable folder to keep them.",
                              RuntimeWarning, stacklevel=3)
            return numba.njit(cache=False)(function)
    return decorate
