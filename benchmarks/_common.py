"""What both benchmark scripts share: the thread settings, optional PyTorch, and the block-interleaved timer.

Import this before numpy, so the thread counts apply: 2 threads for numba, OpenBLAS and PyTorch alike.
"""
import os
import statistics
import time

os.environ.setdefault("NUMBA_NUM_THREADS", "2")
os.environ.setdefault("OMP_NUM_THREADS", "2")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "2")

try:
    import torch
    torch.set_num_threads(2)
except ImportError:
    torch = None


def interleaved_medians(functions, repeats, block=20, settle=3):
    """Median seconds per call of each function, run in alternating blocks (A×block, B×block, A×block, ...)
    until each has ``repeats`` timed calls. The first ``settle`` calls after each switch are not timed: the
    other framework's idle threads are still spinning then (each pool keeps its threads busy-waiting for a
    while after its last call, which, alternated call by call, slowed both frameworks several times over)."""
    times = [[] for _ in functions]
    while min(len(t) for t in times) < repeats:
        for f, t in zip(functions, times):
            for i in range(block + settle):
                start = time.perf_counter()
                f()
                if i >= settle:
                    t.append(time.perf_counter() - start)
    return [statistics.median(t) for t in times]
