"""Who runs on the cores: one thread pool (Numba's OpenMP) for minicnn's loops, BLAS on the calling thread.

minicnn's work comes in two kinds: Numba loops (``prange``, split among Numba's threads) and matrix products
(numpy's ``@``, run by OpenBLAS, which has a thread pool of its own). Two pools on the same cores fight: each
keeps its threads spinning for a while after its work ends, waiting for more, so the other pool's threads find
the cores busy. And Numba's workqueue layer, which parks its threads, makes every ``prange`` launch wake them
again, some fifty times the OpenMP layer's cost of a launch (``docs/performance.md`` has the figures).

So minicnn chooses the OpenMP layer and runs its own matrix products with OpenBLAS on one thread
(``single_threaded_blas``; the linear layer's products use both cores all the same, through Numba's pool:
``blas.py``), restoring the caller's setting afterwards: numpy code outside minicnn keeps all its
threads. Where OpenBLAS's thread count cannot be set (another BLAS, another platform), it falls back to the
workqueue layer, which cannot fight anyone. Set ``NUMBA_THREADING_LAYER`` yourself to override the choice.
"""
import ctypes
import functools
import os
import sys

import numba


@functools.lru_cache(maxsize=1)
def openblas_library():
    """(library, names) of the OpenBLAS numpy has loaded, or None: ``library`` a ``ctypes.CDLL``, ``names`` a
    function that gives a BLAS routine's name in it (``names("openblas_set_num_threads")``).

    numpy's wheels bundle OpenBLAS with its symbols renamed: ``scipy_`` before and ``64_`` after
    (``scipy_openblas_set_num_threads64_``, "64" for its 64-bit integers); a numpy built against a system
    OpenBLAS uses the plain names. The library is found among the process's mapped files.
    """
    if not sys.platform.startswith("linux"):
        return None
    import numpy  # noqa: F401  (loads the BLAS)
    try:
        with open("/proc/self/maps") as maps:
            paths = {line.split()[-1] for line in maps if "openblas" in line.lower() and "/" in line}
    except OSError:
        return None
    spellings = [lambda name: "scipy_" + name + "64_", lambda name: "scipy_" + name,
                 lambda name: name + "64_", lambda name: name]
    for path in sorted(paths):
        try:
            lib = ctypes.CDLL(path)
        except OSError:
            continue
        for names in spellings:
            if hasattr(lib, names("openblas_set_num_threads")) and hasattr(lib, names("openblas_get_num_threads")):
                return lib, names
    return None


def _find_openblas():
    """The (set, get) thread-count functions of the OpenBLAS numpy has loaded, or None."""
    found = openblas_library()
    if found is None:
        return None
    lib, names = found
    setter, getter = getattr(lib, names("openblas_set_num_threads")), getattr(lib, names("openblas_get_num_threads"))
    setter.argtypes, setter.restype, getter.restype = [ctypes.c_int], None, ctypes.c_int
    return setter, getter


_OPENBLAS = _find_openblas()


def single_threaded_blas(function):
    """Decorator: run ``function`` with numpy's OpenBLAS on one thread, then restore its thread count.

    Costs two C calls (~0.3 us). A no-op when OpenBLAS was not found (then Numba uses the workqueue layer).
    """
    if _OPENBLAS is None:
        return function
    set_threads, get_threads = _OPENBLAS

    @functools.wraps(function)
    def wrapper(*args, **kwargs):
        before = get_threads()
        if before == 1:
            return function(*args, **kwargs)
        set_threads(1)
        try:
            return function(*args, **kwargs)
        finally:
            set_threads(before)
    return wrapper


def choose_threading_layer():
    """OpenMP when minicnn can keep OpenBLAS's pool out of the way, else workqueue; the user's choice wins."""
    if "NUMBA_THREADING_LAYER" in os.environ:
        return numba.config.THREADING_LAYER
    numba.config.THREADING_LAYER = "workqueue"
    if _OPENBLAS is not None:
        try:
            from numba.np.ufunc import omppool  # noqa: F401  (is the OpenMP layer installed?)
            numba.config.THREADING_LAYER = "omp"
        except ImportError:
            pass
    return numba.config.THREADING_LAYER
