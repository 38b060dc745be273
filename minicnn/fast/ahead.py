"""Compiling ahead: a helper process compiles the backward kernels while the forward pass compiles its own.

The first training step of a fresh install compiles every kernel it runs, and Numba compiles one function at a
time under one lock: a process compiles on one core. Yet as soon as the forward pass meets a layer, it is known
which backward kernels the step will want. So the functional ops say so (``expect``), and a helper process
(running ``main`` below) compiles those kernels into Numba's disk cache on the other core while this process
compiles the forward's. Before the backward pass runs a kernel of an expected group it calls ``ready``,
which waits until the helper has finished that group if it has begun it; the kernel's first call then finds
its machine code in the cache and loads it in milliseconds, as a second process always does.

Nothing about what runs changes, only where it was compiled: the helper calls the very same kernels on tiny
arrays of the same dtype (``GROUPS``), so Numba compiles the same functions for the same types on the same CPU
and checks the same source stamps. Should the helper fail, be slow (``TIMEOUT``) or be off, this process
compiles what it needs itself, as it would without it.

It is started only for groups not already compiled, in this process or on disk (``is_cached``), so a warm
start never waits for it; it runs at low priority (``os.nice``) and is stopped when this process exits.
``MINICNN_COMPILE_AHEAD=0`` turns it off.

The helper is sent one group at a time, the oldest first; the groups asked for meanwhile wait in this process
(``Helper.waiting``) and stay this process's to take back. The backward runs the layers in the reverse order of
the forward, so the groups the helper begins first are the ones needed last: the first convolution's, the
largest. When ``ready`` finds its group still waiting, it takes it back and the kernels compile here as they
run; when it must wait for the helper, it spends the wait compiling the newest waiting group. Neither process
then idles while the other has a queue, whichever is the slower that day.

On a cold start this roughly halves the wait for the first training step (``docs/performance.md`` has the
timelines and figures).
"""
import atexit
import os
import subprocess
import sys
import threading
import time

import numpy as np
from numba import config

from . import activation, conv, pool

#: Whether ``expect`` may start the helper: ``MINICNN_COMPILE_AHEAD=0`` turns it off; there is nothing to
#: compile under ``NUMBA_DISABLE_JIT=1``.
ENABLED = os.environ.get("MINICNN_COMPILE_AHEAD", "1") != "0" and not config.DISABLE_JIT

#: Seconds ``ready`` waits for one group at most; after that this process compiles it itself.
TIMEOUT = 120.0


# --- the groups: which kernels each backward runs, compiled by running them on tiny arrays ------------------

def _conv2d(dtype):
    """The convolution's input and weight gradients (``functional/conv.py``'s backward)."""
    N, C_in, H, W, C_out, K = 2, 2, 6, 6, 3, 3
    stride, padding, (out_h, out_w) = (1, 1), (1, 1), (6, 6)                 # 3 × 3 windows, padding 1: same size
    weight, grad = np.zeros((C_out, C_in, K, K), dtype), np.zeros((N, C_out, out_h, out_w), dtype)
    plan = conv._plan((N, C_in, H, W), K, K, *stride, *padding, out_h, out_w)
    kept = np.zeros((plan.blocks(N), plan.block_size), dtype)
    conv.conv2d_backward(grad, weight, kept, (N, C_in, H, W), *stride, *padding)


def _by_size(kernel, *arguments):
    """Both versions of a ``by_size`` kernel: a training step runs the serial one on small layers and the parallel
    one on large ones."""
    kernel.serial(*arguments)
    kernel.parallel(*arguments)


def _relu(dtype):
    """ReLU's gradient, alone or fused into a convolution or a linear layer."""
    _by_size(activation._relu_backward, np.zeros(4, dtype), np.zeros(4, dtype))


def _max_pool2d(dtype):
    """Max pooling's gradient, sent to each window's argmax: the parallel version only, which the pyramids' layers
    run from batch 41 on (the serial one, for smaller inputs, is compiled where it is first needed)."""
    pool.max_pool2d_backward.parallel(np.zeros((1, 1, 2, 2), dtype), np.zeros((1, 1, 2, 2), np.int64), 4, 4)


def _avg_pool2d(dtype):
    """Average pooling's gradient, both paths (2 × 2 windows, any window), parallel versions as above."""
    grad = np.zeros((1, 1, 2, 2), dtype)
    pool._avg_pool2d_2x2_backward.parallel(grad, 4, 4)
    pool._avg_pool2d_general_backward.parallel(grad, 4, 4, 2, 2, 2, 2, 0, 0, True)


def _global_avg_pool2d(dtype):
    """Global average pooling's gradient."""
    pool.global_avg_pool2d_backward(np.zeros((1, 1, 1, 1), dtype), 2, 2)


#: {group: (function that compiles it for a dtype, the jitted functions it compiles)}.
GROUPS = {
    "conv2d": (_conv2d, lambda: conv._backward.dispatchers()),
    "relu": (_relu, lambda: [activation._relu_backward.serial, activation._relu_backward.parallel]),
    "max_pool2d": (_max_pool2d, lambda: [pool.max_pool2d_backward.parallel]),
    "avg_pool2d": (_avg_pool2d, lambda: [pool._avg_pool2d_2x2_backward.parallel,
                                         pool._avg_pool2d_general_backward.parallel]),
    "global_avg_pool2d": (_global_avg_pool2d, lambda: [pool.global_avg_pool2d_backward]),
}


def _key(group, dtype):
    """The line the helper reads: "group dtype"."""
    if group not in GROUPS:
        raise ValueError(f"group: expected one of {sorted(GROUPS)}, got {group!r}")
    return f"{group} {np.dtype(dtype).name}"


def is_cached(group, dtype):
    """Whether every kernel of ``group`` has machine code for ``dtype``, compiled in this process or in Numba's
    disk cache (for these very sources: Numba's index is dropped when its source stamp differs). Where that
    cannot be told (no disk cache, another Numba), True: then no helper is started for nothing."""
    name = np.dtype(dtype).name
    for dispatcher in GROUPS[group][1]():
        if any(name in str(signature) for signature in dispatcher.signatures):
            continue
        try:
            index = dispatcher._cache._cache_file._load_index()        # {(signature, target): data file}
        except (AttributeError, OSError, ValueError):
            return True
        if not any(name in str(key[0]) for key in index):
            return False
    return True


# --- this process's side ----------------------------------------------------------------------------------

class Helper:
    """The helper process and its queue. It is sent one "group dtype" line at a time and writes each back when
    done; the groups asked for meanwhile wait here (``waiting``), in the order asked, and are this process's to
    take back (``take``) until they are sent."""

    def __init__(self):
        root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
        env = dict(os.environ, PYTHONPATH=os.pathsep.join([root] + [p for p in [os.environ.get("PYTHONPATH")] if p]))
        command = [sys.executable, "-c", "from minicnn.fast.ahead import main; main()"]
        self.process = subprocess.Popen(command, env=env, text=True,
                                        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        self.finished, self.closed = set(), False
        self.waiting, self.busy = [], None                 # lines not sent yet, oldest first; the line being compiled
        self.changed = threading.Condition()
        threading.Thread(target=self._listen, name="minicnn-compile-ahead", daemon=True).start()

    def _listen(self):
        for line in self.process.stdout:
            with self.changed:
                self.finished.add(line.strip())
                self.busy = None
                self._send_next()
                self.changed.notify_all()
        with self.changed:
            self.closed = True
            self.changed.notify_all()

    def _send_next(self):
        """Send the oldest waiting line if the helper is idle (called holding ``changed``)."""
        if self.busy is None and self.waiting:
            self.busy = self.waiting.pop(0)
            try:
                self.process.stdin.write(self.busy + "\n")
                self.process.stdin.flush()
            except (OSError, ValueError):      # the helper is gone: ``wait`` finds it closed
                pass

    def ask(self, key):
        with self.changed:
            self.waiting.append(key)
            self._send_next()

    def take(self, key=None):
        """Take back ``key`` (or, for None, the newest line) if it is still waiting: the helper will not compile it.
        Returns the line taken, or None."""
        with self.changed:
            if key is None:
                return self.waiting.pop() if self.waiting else None
            if key in self.waiting:
                self.waiting.remove(key)
                return key
            return None

    def wait(self, key, timeout):
        """Wait until the helper has finished ``key`` or is gone, for ``timeout`` seconds at most."""
        with self.changed:
            self.changed.wait_for(lambda: key in self.finished or self.closed, timeout)

    def done(self, key):
        with self.changed:
            return key in self.finished or self.closed

    def stop(self):
        if self.process.poll() is None:
            self.process.terminate()
            self.process.wait()


_helper = None
_asked, _requested, _pending = set(), set(), set()    # (group, dtype) seen; lines asked; lines not yet ``ready``
_lock = threading.Lock()


def expect(group, dtype):
    """The backward pass will run ``group``'s kernels on arrays of ``dtype``: have the helper compile them now,
    unless they are compiled already. Called by every forward that records a backward, so the common case, a
    group already seen, is one set lookup (0.1 µs)."""
    global _helper
    if (group, dtype) in _asked:
        return
    key = _key(group, dtype)
    with _lock:
        if (group, dtype) in _asked:
            return
        _asked.add((group, dtype))
        if not ENABLED or key in _requested or is_cached(group, dtype):
            return
        if _helper is None:
            try:
                _helper = Helper()
            except OSError:                                      # no Python to start: compile here
                return
            atexit.register(_helper.stop)
        _helper.ask(key)
        _requested.add(key)
        _pending.add(key)


def ready(group, dtype):
    """Before running ``group``'s kernels on ``dtype``: make sure the helper is not compiling them (once;
    afterwards, and when nothing was asked, an empty-set test).

    A group the helper has not begun is taken back, and compiles here as its kernels run. A group it is compiling
    is waited for, and the wait is spent compiling here the newest groups it has not begun: the backward runs the
    layers in the reverse order of the forward, so the helper, oldest first, takes the groups needed last and this
    process the ones needed next."""
    if not _pending:
        return
    key = _key(group, dtype)
    if key not in _pending:
        return
    _pending.discard(key)
    if _helper.take(key) is not None:
        return
    deadline = time.monotonic() + TIMEOUT
    while not _helper.done(key):
        other = _helper.take()
        if other is None:
            _helper.wait(key, max(0.0, deadline - time.monotonic()))
            return
        _pending.discard(other)
        _compile(*other.split())


def _compile(group, dtype):
    """Compile ``group`` for ``dtype`` (a name) by running its kernels on tiny arrays; a failure is left for the
    real call to report."""
    try:
        GROUPS[group][0](np.dtype(dtype))
    except Exception:                         # noqa: BLE001 (whatever it was, the kernel's own call raises it)
        pass


# --- the helper's side ------------------------------------------------------------------------------------

def main():
    """Compile each group asked for on standard input, one "group dtype" line at a time, and write the line back
    when done (also when compiling failed: the asking process then compiles it itself)."""
    try:
        os.nice(10)                               # the process that asked comes first
    except (AttributeError, OSError):
        pass
    for line in sys.stdin:
        _compile(*line.split())                   # on failure the asker's own call compiles it (and raises)
        print(line.strip(), flush=True)

