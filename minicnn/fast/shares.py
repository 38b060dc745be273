"""A serial kernel run on every thread, each on its own share of the work: ``in_shares``.

The convolution's kernels are long (the spread, the products' register tiles, the reorders), and a ``prange``
loop costs Numba more to compile than the code it runs: Numba compiles the loop's body as a function of its
own, then links it, as code to optimise and translate again, into each of three more functions (two wrappers
that hand the iterations to the threads, and the kernel that starts them). The convolution's forward compiled
in 7.7–7.9 s as a ``prange`` kernel and in 4.3–5.1 s with the same loop run serially.

So the body is written as an ordinary serial kernel, the **worker**, that does one share of the work::

    worker(args, t, T)        args: a tuple of the kernel's arrays and numbers; share t of T

and ``in_shares(worker)`` gives a function that runs worker(args, t, T) for t = 0 … T − 1 on Numba's threads.
The loop that starts the threads (the **launcher**, ``_launch``) calls the worker through the address of its
machine code, a number the launcher receives as an argument, so the worker's code is not linked into it: the
worker is compiled once, the launcher's three extra functions hold a call each. (A ``prange`` loop takes
arrays and numbers from outside it, not tuples of arrays: the launcher hands its threads a pointer to the
tuple, ``_pointer_to``.)

The price is a few microseconds a call (the tuple, the address's lookup, the second call); what it buys is a
cold start seconds shorter (``docs/performance.md``). The pooling and ReLU loops stay ``prange`` kernels: they compile in
about a second, and the same loops compiled serially ran several times slower. Numba compiles the body of a ``prange``
loop with its arrays marked ``noalias`` when none of them is another's view (``parfor_lowering.py``), so LLVM
may keep values in registers across stores and turn the comparisons into selects; a serial kernel cannot ask
for that (``noalias`` is no option of ``njit``), and there LLVM checked for overlaps at run time and branched
on every comparison. The convolution's workers lose nothing by it: their inner loops are written in LLVM's
vectors (``vectors.py``), whose loads and stores say what they touch.

Nothing process-specific is compiled in: the address comes in at run time, so both the worker and the
launcher are cached on disk as every other kernel. The worker's address for a tuple of arguments is found
once per argument types (a dictionary keyed by ``_type_key``, what Numba types each argument by) and handed to
the launcher, which Numba types from the same tuple, so the two agree by construction.

An error raised in a worker (minicnn's get checked arguments and raise none) cannot leave a thread of the
loop: the launcher counts the shares that failed, and ``in_shares`` then runs the shares again one at a time on
the calling thread, where the error is raised as from any kernel.

Under ``NUMBA_DISABLE_JIT=1`` the shares run one after the other in Python.
"""
import time
import types as pytypes

import numba
import numpy as np
from numba import config, prange, types
from numba.core import cgutils
from numba.extending import intrinsic

from .threads import governor



#: The ndarray flags Numba types an array by: C_CONTIGUOUS, F_CONTIGUOUS, ALIGNED, WRITEABLE (``flags.num`` bits).
_TYPED_FLAGS = 0x1 | 0x2 | 0x100 | 0x400


def _type_key(value):
    """What Numba types ``value`` by, as a hashable key (``numba.typeof`` gives the same distinctions but takes
    about 100 µs on a convolution's arguments; this takes a few): an array by its dtype, number of dimensions
    and the flags that make its layout (C- or F-contiguous or neither), mutability and alignment; a tuple by its
    items' keys; an int by whether it fits int64; anything else (bool, float, NumPy scalars) by its type."""
    kind = type(value)
    if kind is np.ndarray:
        return value.dtype, value.ndim, value.flags.num & _TYPED_FLAGS
    if kind is tuple:
        key = []
        for item in value:                     # the items' keys, the common kinds without a call each
            kind = type(item)
            if kind is np.ndarray:
                key.append((item.dtype, item.ndim, item.flags.num & _TYPED_FLAGS))
            elif kind is int:
                key.append(item >= 1 << 63)
            elif kind is tuple:
                key.append(_type_key(item))
            else:
                key.append(kind)
        return tuple(key)
    if kind is int:
        return value >= 1 << 63
    return kind


@intrinsic
def _pointer_to(typingctx, args):
    """A pointer to a copy of ``args`` in this function's frame (Numba's threads read the tuple through it: a
    ``prange`` loop takes arrays and numbers from outside it, not tuples of them)."""
    def codegen(context, builder, sig, values):
        slot = cgutils.alloca_once(builder, context.get_data_type(args))
        context.pack_value(builder, args, values[0], slot)
        return slot
    return types.CPointer(args)(args), codegen


@intrinsic
def _call_at(typingctx, address, pointer, t, T):
    """worker(*pointer, t, T) for the worker whose machine code starts at ``address``, in Numba's own calling
    convention. Its value: 1 if the worker raised, else 0 (the error itself is dropped: a ``prange`` loop's
    threads have no way to return one; ``in_shares`` raises it again)."""
    def codegen(context, builder, sig, values):
        address_value, pointer_value, t_value, T_value = values
        argtypes = (sig.args[1].dtype, sig.args[2], sig.args[3])
        function_type = context.call_conv.get_function_type(types.none, argtypes)
        function = builder.inttoptr(address_value, function_type.as_pointer())
        status, _ = context.call_conv.call_function(builder, function, types.none, argtypes,
                                                    [context.unpack_value(builder, argtypes[0], pointer_value),
                                                     t_value, T_value])
        return builder.zext(status.is_error, context.get_value_type(types.int64))
    return types.int64(address, pointer, t, T), codegen


def _launch(address, args, T):
    """Share t of T on thread t (the shares are the worker's to make disjoint); returns how many raised."""
    pointer = _pointer_to(args)
    failed = np.empty(T, dtype=np.int64)
    for t in prange(T):
        failed[t] = _call_at(address, pointer, numba.int64(t), T)
    count = 0
    for t in range(T):
        count += failed[t]
    return count


class in_shares:
    """``in_shares(worker)(args, T)`` runs worker(args, t, T) for t < T on Numba's threads; ``worker`` is a
    serial kernel (a Numba dispatcher) that returns nothing, and makes its shares disjoint itself:

    >>> import numba, numpy as np
    >>> @numba.njit
    ... def fill(args, t, T):                       # share t of T of out[i] = i * scale
    ...     out, scale = args
    ...     for i in range(t * out.size // T, (t + 1) * out.size // T):
    ...         out[i] = i * scale
    >>> out = np.zeros(5)
    >>> in_shares(fill)((out, 2.0), 2)
    >>> out
    array([0., 2., 4., 6., 8.])
    """

    def __init__(self, worker):
        self.worker = worker
        py_func = getattr(worker, "py_func", worker)                 # a plain function under NUMBA_DISABLE_JIT=1
        launch = pytypes.FunctionType(_launch.__code__, _launch.__globals__, py_func.__name__ + "_in_shares")
        launch.__qualname__ = py_func.__qualname__ + "_in_shares"    # a cache entry of its own, per worker
        launch.__module__ = py_func.__module__
        self.launcher = numba.njit(cache=True, parallel=True)(launch)
        self._addresses = {}                                          # {_type_key of args: address}
        self._works = {}             # {(_type_key of args, shape of args[0], T): (address, the governor's Work)}

    def __call__(self, args, T):
        if config.DISABLE_JIT:
            for t in range(T):
                self.worker(args, t, T)
            return
        key = _type_key(args)
        entry = self._works.get((key, args[0].shape, T))
        if entry is None:
            address = self._addresses.get(key)
            if address is None:
                address = self._addresses[key] = self.address(args)
            entry = self._works[key, args[0].shape, T] = (address, governor.work())
        address, work = entry
        timed = governor.run_serially(work)
        if T == 1 or timed or governor.threads() == 1:   # on this thread: no barrier to wait at
            started = time.perf_counter()
            for t in range(T):
                self.worker(args, t, T)
            if timed:
                governor.observe(work, time.perf_counter() - started, serial=True)
            return
        started = time.perf_counter()
        failed = self.launcher(address, args, T)
        governor.observe(work, time.perf_counter() - started, serial=False)
        if failed:
            for t in range(T):                   # again, one share at a time, for the error itself
                self.worker(args, t, T)
            raise RuntimeError(f"{self.worker.py_func.__qualname__}: a share raised an error on its thread, "
                               "and none when run again")

    def address(self, args):
        """Where the worker's machine code for these argument types starts (compiled or loaded first)."""
        signature = (numba.typeof(args), types.int64, types.int64)
        self.worker.compile(signature)
        result = self.worker.overloads[signature]
        return result.library.get_pointer_to_function(result.fndesc.llvm_func_name)

    def dispatchers(self):
        """The two compiled functions: the worker and the launcher."""
        return [self.worker, self.launcher]
