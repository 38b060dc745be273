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
import time

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


class Governor:
    """Every thread while the cores are minicnn's, one while another program wants them too.

    Why: a ``prange`` loop or a run of shares ends at a barrier, where each thread waits for the others, and
    OpenMP's threads wait by spinning. When another busy process shares the cores, a thread that the system has
    set aside holds up the barrier for a whole time slice, and the spinning threads take the cores the others
    need: two trainings at once took 40–50 times their step alone here. One thread has no barrier to wait at.

    How: the runs of shares (``shares.py``) are timed. Now and then a run is made on this thread alone, and the
    quickest such time is kept per kind of work: what one thread costs. Those runs come at the 1st, 2nd, 4th,
    8th, ... run of each kind, then every ``SERIAL_EVERY``-th: the first few find the cost quickly, and later
    ones, rare, keep it honest at a cost of a fraction of a percent (a run on one thread is the slower one). A run on every
    thread that takes longer than that (``SLOW`` times it) gained nothing from its threads; when most recent runs
    are so (a running share above ``HELD_UP``), minicnn goes down to one thread (``numba.set_num_threads``) for
    ``backoff`` seconds, then tries its threads again. The backoff doubles, up to ``MAX_BACKOFF`` s, while the
    cores stay busy, and is reset once they are free. ``MINICNN_ADAPTIVE_THREADS=0`` keeps the thread count.

    The numbers do not change with it: work is still cut into ``full`` shares (``conv._plan``, ``blas.gemm``),
    which then run one after the other on this thread, each summing what it would have on its own; and the
    ``prange`` loops write disjoint cells, whatever the thread count.
    """

    SLOW, HELD_UP, SERIAL_EVERY, FIRST_BACKOFF, MAX_BACKOFF = 1.2, 0.5, 1024, 0.5, 30.0
    #: How much one run moves the running share: about 14 held-up runs in a row (a training step's worth) before
    #: the governor acts, so that a moment's contention (another pool's threads still spinning) is ridden out.
    WEIGHT = 0.05

    def __init__(self):
        self.enabled = os.environ.get("MINICNN_ADAPTIVE_THREADS", "1") != "0"
        self.full = numba.get_num_threads()
        self.held_up = 0.0              # running share of held-up runs
        self.single_until = None        # while on one thread: when to try every thread again
        self.backoff = self.FIRST_BACKOFF

    def threads(self) -> int:
        """The threads to use now (``numba.set_num_threads`` is called when that changes)."""
        if self.single_until is not None and time.monotonic() >= self.single_until:
            self.single_until, self.held_up = None, 0.0
            numba.set_num_threads(self.full)
        return 1 if self.single_until is not None else self.full

    def work(self) -> "Work":
        """A new record for one kind of work (a kernel, its argument types and shapes): the caller keeps it and
        hands it back with each run."""
        return Work()

    def run_serially(self, work) -> bool:
        """Whether this run of ``work`` should be made on this thread alone, to time what one thread costs."""
        if not self.enabled or self.full < 2:
            return False
        count = work.runs
        work.runs = count + 1
        # run 0 compiles and warms the caches: not that one; then runs 1, 2, 4, 8, ... and every SERIAL_EVERY-th
        return count > 0 and (count & (count - 1) == 0 or count % self.SERIAL_EVERY == 0)

    def observe(self, work, seconds: float, serial: bool) -> None:
        """A run of ``work`` took ``seconds``, on this thread alone (``serial``) or on every thread."""
        one = work.serial
        if serial:
            work.serial = seconds if one is None else min(seconds, one)
            return
        if not self.enabled or one is None or self.single_until is not None:
            return
        self.held_up = (1 - self.WEIGHT) * self.held_up + self.WEIGHT * (seconds > self.SLOW * one)
        if self.held_up > self.HELD_UP:
            self.single_until = time.monotonic() + self.backoff
            self.backoff = min(2 * self.backoff, self.MAX_BACKOFF)
            numba.set_num_threads(1)
        elif self.held_up < 0.05:
            self.backoff = self.FIRST_BACKOFF


class Work:
    """What the governor knows of one kind of work: how many runs it has seen, and the quickest on one thread
    (seconds; None until one was timed)."""
    __slots__ = ("runs", "serial")

    def __init__(self):
        self.runs, self.serial = 0, None


governor = Governor()
