"""The fast engine: minicnn's speed, behind the engine contract (``contract.py``; ``minicnn/engine.py``).

It computes what the plain engine (``minicnn/plain/``) computes, another way: the convolution spreads blocks
of images so that its products read memory in order and runs them in register tiles written in LLVM's vectors
(``conv.py``, ``matmul.py``, ``vectors.py``), long kernels run as serial workers on every thread
(``shares.py``), the linear layer's products are OpenBLAS's, split among Numba's threads (``blas.py``), and a
helper process compiles the backward's kernels on a cold start (``ahead.py``). ``docs/performance.md`` tells
how each came about and what it bought. The tests check every op against the plain engine.

It is imported only when an op first runs on it, never by ``import minicnn``. It refuses to load under
``NUMBA_DISABLE_JIT=1`` (its LLVM code cannot run as Python) and on a Numba outside ``NUMBA_TESTED`` (its
internals may have moved: on numba 0.58 its launcher cannot take its arguments); the plain engine then runs
everything.

**What it changes in the process**, when it loads, each with its opt-out:

- glibc's ``malloc`` keeps large freed blocks for reuse (``mallopt``, ``tune_allocator`` below):
  ``MINICNN_TUNE_MALLOC=0`` keeps glibc's defaults.
- Numba's threading layer: OpenMP, or workqueue where OpenBLAS's threads cannot be held back
  (``threads.choose_threading_layer``): setting ``NUMBA_THREADING_LAYER`` yourself wins.
- Numba's list of cache locators gets ``DependenciesLocator`` first (it answers only for this package's files).
- OpenBLAS runs on one thread *during* minicnn's products, and its count is restored after each
  (``threads.single_threaded_blas``): numpy code outside keeps all its threads.

**Every use of a Numba, llvmlite, ctypes or glibc internal** (names a new release may change; if one is gone,
this package fails to import and the plain engine serves):

- ``numba.core.caching._CacheLocator`` and ``CacheImpl._locator_classes`` (``_CacheImpl`` before numba 0.61):
  the dependencies-aware disk cache below;
- ``numba.core.cgutils`` and the target context's ``call_conv``: ``shares.py`` calls a worker by the address
  of its machine code in Numba's own calling convention; ``vectors.py`` writes LLVM IR into kernels;
- ``numba.types.ExternalFunction`` and ``llvmlite.binding.add_symbol``: ``blas.py`` calls OpenBLAS's
  ``cblas_?gemm`` from compiled code;
- ``numba.np.ufunc.omppool``: ``threads.py`` asks whether the OpenMP layer is installed;
- ctypes: glibc's ``mallopt`` (below) and OpenBLAS's ``openblas_set_num_threads``, found among the
  process's mapped libraries (``threads.py``).

Compilation is lazy: the first call with a new dtype compiles a kernel and stores its machine code on disk
(``cache=True``), so later processes load it in milliseconds; a kernel that compiles in code of other files is
checked against those too (``DependenciesLocator``).
"""
import ctypes
import functools
import hashlib
import os
import sys
import types

import numba
from numba.core import caching

#: The Numba releases the fast engine is tested with (``setup.cfg`` allows more: the plain engine serves there).
NUMBA_TESTED = ((0, 61, 2), (0, 69))

if numba.config.DISABLE_JIT:
    raise ImportError("the fast engine needs compiled code (NUMBA_DISABLE_JIT=1 is set); the plain engine runs")
_version = tuple(int(part) for part in numba.__version__.split(".")[:3] if part.isdigit())
if not NUMBA_TESTED[0] <= _version < NUMBA_TESTED[1]:
    raise ImportError(f"the fast engine is tested with numba 0.61.2 up to 0.68 and uses its internals; this is "
                      f"numba {numba.__version__}, so the plain engine runs")

from .shares import in_shares  # noqa: E402,F401
from .threads import choose_threading_layer, single_threaded_blas  # noqa: E402,F401

# One thread pool for the loops, OpenBLAS on one thread inside minicnn's products: see threads.py.
choose_threading_layer()


def tune_allocator(mmap_threshold: int = 64 << 20, trim_threshold: int = 128 << 20) -> bool:
    """Let glibc's malloc keep and reuse large freed blocks instead of returning them to the system.

    A training step allocates megabytes of short-lived arrays (activations, gradients, scratch). By default
    glibc serves every block above a threshold (128 KB at first, adapting upwards) with fresh pages from the
    kernel, and each 4 KB page then costs a page fault when first written: thousands of faults per training
    step. Raising the thresholds (glibc's ``mallopt``, what
    ``GLIBC_TUNABLES=glibc.malloc.mmap_threshold=...`` does at start-up) keeps freed blocks for reuse.

    Called once when the fast engine loads, so it applies to the whole process from then on (PyTorch's
    allocations too, which keeps side-by-side benchmarks fair); set ``MINICNN_TUNE_MALLOC=0`` to keep glibc's
    defaults.
    Returns True when the setting was applied (glibc only).
    """
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None)          # the process's own symbols, libc's among them (find_library("c") would
                                          # run ldconfig in a subprocess)
        M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3
        return bool(libc.mallopt(M_MMAP_THRESHOLD, mmap_threshold)) and bool(libc.mallopt(M_TRIM_THRESHOLD, trim_threshold))
    except (OSError, AttributeError):
        return False                                  # not glibc (musl, macOS): nothing to tune


if os.environ.get("MINICNN_TUNE_MALLOC", "1") != "0":
    tune_allocator()

#: Numba's cache machinery, whose list of locators decides where and against what a kernel is cached
#: (``CacheImpl`` since numba 0.61, ``_CacheImpl`` before).
_CACHE_IMPL = getattr(caching, "CacheImpl", None) or caching._CacheImpl

#: Kernel files whose compiled kernels contain code of other files (calls Numba inlines, LLVM code an intrinsic
#: writes): {file: the files it depends on}, all in this folder.
DEPENDENCIES = {"conv.py": ("matmul.py", "vectors.py"), "matmul.py": ("vectors.py",)}


@functools.lru_cache(maxsize=None)
def _file_digest(path, mtime_ns, size):
    """SHA-256 of a file's contents (cached per version of the file, as Numba caches its own stamps)."""
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).digest()


class DependenciesLocator(caching._CacheLocator):
    """Numba's disk cache for a kernel file that depends on others: the same place as Numba's own choice, but a
    stamp that covers the dependencies too, so that editing ``matmul.py`` rebuilds ``conv.py``'s kernels.

    Numba checks a cached kernel against the file that defines it only (since numba 0.68 by its contents;
    touching the file, what minicnn did before, no longer rebuilt anything), not the files whose code was
    compiled into it (numba pull requests 8396 and 9563 would change that; neither is merged). Without this,
    an edited product in ``matmul.py`` kept running its old machine code inside every convolution. Installed
    first in Numba's list of locators (``install``); it claims only the files registered with
    ``depends_on`` and hands every other file to Numba's own locators.
    """

    #: {absolute path of a kernel file: absolute paths of the files it depends on}.
    registered = {}

    def __init__(self, inner, dependencies):
        self._inner, self._dependencies = inner, dependencies

    @classmethod
    def from_function(cls, py_func, py_file):
        dependencies = cls.registered.get(os.path.abspath(py_file))
        if dependencies is None:
            return None
        for base in _CACHE_IMPL._locator_classes:
            if base is not cls:
                inner = base.from_function(py_func, py_file)
                if inner is not None:
                    return cls(inner, dependencies)
        return None

    def get_source_stamp(self):
        digests = []
        for path in self._dependencies:
            st = os.stat(path)
            digests.append(_file_digest(path, st.st_mtime_ns, st.st_size))
        return self._inner.get_source_stamp(), tuple(digests)

    def ensure_cache_path(self):
        self._inner.ensure_cache_path()

    def get_cache_path(self):
        return self._inner.get_cache_path()

    def get_disambiguator(self):
        return self._inner.get_disambiguator()


def depends_on(path, *dependencies):
    """Register that the kernels of the file ``path`` contain code of ``dependencies`` (file paths)."""
    DependenciesLocator.registered[os.path.abspath(path)] = tuple(os.path.abspath(d) for d in dependencies)


def install_dependencies_locator():
    """Put ``DependenciesLocator`` first in Numba's list of cache locators (once), and register ``DEPENDENCIES``."""
    if DependenciesLocator not in _CACHE_IMPL._locator_classes:
        _CACHE_IMPL._locator_classes.insert(0, DependenciesLocator)
    here = os.path.dirname(__file__)
    for name, dependencies in DEPENDENCIES.items():
        depends_on(os.path.join(here, name), *(os.path.join(here, d) for d in dependencies))


install_dependencies_locator()

#: Serial kernel: the default. Cheap to compile, enough for small or memory-bound loops.
kernel = numba.njit(cache=True)

#: Parallel kernel: ``numba.prange`` loops are split among threads. Each kernel documents which axis it splits
#: and why no two iterations write the same cell. (The long kernels are serial workers run in shares instead:
#: ``shares.py``.)
parallel_kernel = numba.njit(cache=True, parallel=True)

#: Kernels that sum: the additions may be reordered (``reassoc``) and fused into multiply-adds (``contract``), so
#: LLVM can keep partial sums in vectors. They do *not* assume "no NaN/inf" (``nnan``/``ninf``), so NaN still
#: propagates; only the rounding of sums changes, by a few ulps.
SUM_FASTMATH = {"reassoc", "contract"}
sum_kernel = numba.njit(cache=True, fastmath=SUM_FASTMATH)

#: Small helpers that only choose between other kernels or wrap one: inlined into each caller by Numba itself
#: (``inline="always"``), so they are not compiled alone (unless Python calls one, as a test does). Every njit
#: function a kernel calls is compiled as a module of its own, then optimised and turned into machine code again
#: inside each caller's module (a ``prange`` kernel's body four times: the loop body, two wrappers, the kernel;
#: hence ``shares.py``), so a wrapper such as ``conv._spread_block`` would cost one more pass over all the code it
#: wraps. Inlined code is typed again at each call site, so this pays only for small functions.
inline_kernel = numba.njit(cache=True, inline="always", fastmath=SUM_FASTMATH)

#: Inputs with at least this many elements run a ``by_size`` kernel's parallel version. Below it the serial one
#: wins: a parallel launch costs microseconds, and splitting a loop shorter than this gains less than the threads
#: cost to wake.
PARALLEL_MIN_ELEMENTS = 1 << 14


class by_size:
    """A loop compiled twice, serially and with ``prange`` split among threads; each call picks by the size
    of its first argument (``PARALLEL_MIN_ELEMENTS``). Both are cached on disk under their own names."""

    def __init__(self, func, **options):
        functools.update_wrapper(self, func)
        twin = types.FunctionType(func.__code__, func.__globals__, func.__name__ + "_parallel",
                                  func.__defaults__, func.__closure__)
        twin.__qualname__ = func.__qualname__ + "_parallel"      # a separate cache entry from the serial one
        self.serial = numba.njit(cache=True, **options)(func)
        self.parallel = numba.njit(cache=True, parallel=True, **options)(twin)

    def __call__(self, *args):
        chosen = self.parallel if args[0].size >= PARALLEL_MIN_ELEMENTS else self.serial
        return chosen(*args)


#: ``by_size`` for loops that sum (``SUM_FASTMATH``).
sum_by_size = functools.partial(by_size, fastmath=SUM_FASTMATH)
