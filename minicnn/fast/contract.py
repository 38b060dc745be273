"""The fast engine behind the engine contract (``minicnn/engine.py``): the same functions, names and arguments
as the plain engine's (``minicnn/plain/``), each calling this package's kernels.

What the fast kernels do not handle they refuse with ``Unsupported`` (dilation, groups, a divisor override,
dtypes other than float32 and float64); ``minicnn/engine.py`` then runs that call on the plain engine. Where the
convolution keeps something between forward and backward, it is a ``Saved`` object: the spread images that the
weight gradient reads (see ``conv.py``), and also the input and output, the attributes the plain engine's
backward reads, so either engine can finish what the other began.

``expect``/``ready`` are the compile helper's hooks (``ahead.py``): autograd calls them around each op that will
have a backward pass, so the backward's kernels compile on the other core while the forward runs.
"""
import sys

import numpy as np

from . import activation, ahead, conv, pool
from .blas import gemm
from .threads import governor, single_threaded_blas

NAME = "fast"

__all__ = ["Unsupported", "conv2d_forward", "conv2d_backward", "max_pool2d_forward", "max_pool2d_backward",
           "avg_pool2d_forward", "avg_pool2d_backward", "global_avg_pool2d_forward", "global_avg_pool2d_backward",
           "blur_pool2d_forward", "blur_pool2d_backward", "relu_forward", "relu_backward", "linear_forward",
           "linear_backward", "matmul", "expect", "ready"]

_DTYPES = (np.float32, np.float64)


class Unsupported(Exception):
    """A configuration the fast kernels do not handle; the plain engine runs it instead."""


def _check_dtype(array):
    if array.dtype not in _DTYPES:
        raise Unsupported(f"dtype {array.dtype} (only float32 and float64)")


class Saved:
    """What the convolution's forward keeps: ``spread`` for the weight gradient (or None) and the thread count
    it was cut for, ``x`` and ``y`` as the plain engine's ``Saved`` (so that its backward can take over)."""
    __slots__ = ("spread", "x", "y", "threads")

    def __init__(self, spread, x, y, threads):
        self.spread, self.x, self.y, self.threads = spread, x, y, threads


# --- the ops ---------------------------------------------------------------------------------------------------

def _one_window_stride(stride, out_size):
    """The stride with 1 along an axis that has a single output: there the stride moves nothing, and the spread,
    whose rows hold S phases, would otherwise grow with it (a stride of 10⁹ would ask for gigabytes)."""
    return tuple(1 if n == 1 else s for s, n in zip(stride, out_size))


def conv2d_forward(x, weight, bias, stride, padding, dilation, groups, out_size, relu=False, keep_input=False):
    _check_dtype(x)
    threads = governor.full                             # the spread is cut for this count: the backward reuses it
    if tuple(dilation) != (1, 1) or groups != 1:
        raise Unsupported("dilation or groups other than 1")
    stride = _one_window_stride(stride, out_size)
    if x.shape[0] == 0:                                 # an empty batch: nothing to compute, nothing to spread
        y = np.empty((0, weight.shape[0]) + tuple(out_size), dtype=x.dtype)
        return y, Saved(None, x if keep_input else None, y if relu else None, threads)
    b = np.zeros(weight.shape[0], dtype=x.dtype) if bias is None else bias
    if keep_input:
        y, spread = conv.conv2d_forward_keep(x, weight, b, *stride, *padding, *out_size, relu=relu)
    else:
        y, spread = conv.conv2d_forward(x, weight, b, *stride, *padding, *out_size, relu=relu), None
    return y, Saved(spread, x if keep_input else None, y if relu else None, threads)


def conv2d_backward(grad_y, weight, saved, x_shape, stride, padding, dilation, groups, need_input, need_weight,
                    need_bias):
    if grad_y.shape[0] == 0:                            # an empty batch: zero gradients
        return (np.zeros(x_shape, grad_y.dtype) if need_input else None,
                np.zeros(weight.shape, grad_y.dtype) if need_weight else None,
                np.zeros(weight.shape[0], grad_y.dtype) if need_bias else None)
    if not isinstance(saved, Saved) or (need_weight and saved.spread is None):
        raise Unsupported("a forward pass run by the plain engine")
    stride = _one_window_stride(stride, grad_y.shape[2:])
    if saved.y is not None:
        grad_y = activation.relu_backward(grad_y, saved.y)      # through the fused ReLU first
    grad_x = grad_w = None
    if need_input or need_weight:
        grad_x, grad_w = conv.conv2d_backward(grad_y, weight, saved.spread, x_shape, *stride, *padding,
                                              need_x=need_input, need_w=need_weight, threads=saved.threads)
    # Σ over images first (adding whole planes, contiguous), then over each plane: faster than one sum over
    # axes (0, 2, 3), which strides through memory.
    grad_b = grad_y.reshape(grad_y.shape[0], grad_y.shape[1], -1).sum(axis=0).sum(axis=1) if need_bias else None
    return grad_x, grad_w, grad_b


def max_pool2d_forward(x, kernel, stride, padding, dilation, out_size):
    _check_dtype(x)
    if tuple(dilation) != (1, 1):
        raise Unsupported("dilation other than 1")
    return pool.max_pool2d_forward(x, *kernel, *stride, *padding, *out_size)


def max_pool2d_backward(grad_y, argmax, in_size):
    return pool.max_pool2d_backward(grad_y, argmax, *in_size)


def avg_pool2d_forward(x, kernel, stride, padding, out_size, count_include_pad, divisor_override):
    _check_dtype(x)
    if divisor_override is not None:
        raise Unsupported("divisor_override (the fast average pooling divides by the window)")
    return pool.avg_pool2d_forward(x, *kernel, *stride, *padding, *out_size, count_include_pad)


def avg_pool2d_backward(grad_y, in_size, kernel, stride, padding, count_include_pad, divisor_override):
    if divisor_override is not None:
        raise Unsupported("divisor_override (the fast average pooling divides by the window)")
    return pool.avg_pool2d_backward(grad_y, *in_size, *kernel, *stride, *padding, count_include_pad)


def global_avg_pool2d_forward(x):
    _check_dtype(x)
    return pool.global_avg_pool2d_forward(x)


def global_avg_pool2d_backward(grad_y, in_size):
    return pool.global_avg_pool2d_backward(grad_y, *in_size)


def blur_pool2d_forward(x, stride, out_size):
    _check_dtype(x)
    if min(x.shape[2:]) < 2:
        raise Unsupported("planes of size 1 (the fast blur reflects a cell on each side)")
    return pool.blur_pool2d_forward(x, stride, *out_size)


def blur_pool2d_backward(grad_y, in_size, stride):
    if min(in_size) < 2:
        raise Unsupported("planes of size 1 (the fast blur reflects a cell on each side)")
    return pool.blur_pool2d_backward(grad_y, *in_size, stride)


def relu_forward(x):
    _check_dtype(x)
    return activation.relu_forward(np.asarray(x, order="C"))


def relu_backward(grad_y, y):
    return activation.relu_backward(np.asarray(grad_y, order="C"), y)


def linear_forward(x, weight, bias, relu=False):
    _check_dtype(x)
    return gemm(x, weight, trans_b=True, bias=bias, relu=relu)


def linear_backward(grad_y, x, weight, y, need_input, need_weight, need_bias):
    if y is not None:
        grad_y = activation.relu_backward(np.ascontiguousarray(grad_y), y)
    grad_x = gemm(grad_y, weight) if need_input else None
    grad_w = gemm(grad_y, x, trans_a=True) if need_weight else None
    grad_b = grad_y.sum(axis=0) if need_bias else None
    return grad_x, grad_w, grad_b


#: Which compile-ahead groups (``ahead.GROUPS``) each differentiable op's backward runs.
_GROUPS = {"Conv2d": ("conv2d", "relu"), "ReLU": ("relu",), "Linear": ("relu",), "MaxPool2d": ("max_pool2d",),
           "AvgPool2d": ("avg_pool2d",), "GlobalAvgPool2d": ("global_avg_pool2d",)}


_announced = set()


def _announce_compiling(dtype):
    """Say once per dtype, before the first compile, that the kernels compile now and only this once: a first run
    is otherwise seconds of silence."""
    if dtype in _announced:
        return
    _announced.add(dtype)
    if not ahead.is_cached("conv2d", dtype):
        print(f"minicnn: compiling the fast engine's kernels for {np.dtype(dtype).name} (first run only, about "
              "10 s; later runs load them from Numba's cache)", file=sys.stderr, flush=True)


def expect(op, dtype):
    """A backward of ``op`` (a ``Function``'s name) will come: start compiling its kernels on the other core."""
    if dtype is not None:
        _announce_compiling(dtype)
    for group in _GROUPS.get(op, ()):
        ahead.expect(group, dtype)


def ready(op, dtype):
    """The backward of ``op`` is about to run: wait for its kernels if the helper is compiling them."""
    for group in _GROUPS.get(op, ()):
        ahead.ready(group, dtype)


@single_threaded_blas
def matmul(a, b):
    """a @ b, with OpenBLAS on one thread (``threads.py``: its pool would fight Numba's)."""
    return a @ b
