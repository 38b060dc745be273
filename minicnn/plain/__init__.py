"""The plain engine: every op of the engine contract (``minicnn/engine.py``) as readable loop nests.

This is the textbook: each file gives an op's formula in its docstring, then the loops that compute it, forward
and backward side by side, compiled by Numba (``@numba.njit(cache=True)``, documented Numba only; ``_jit.py``),
with the matrix products left to numpy's BLAS. It is also the oracle the tests trust and the engine that always
runs: where the fast engine cannot (``minicnn/fast/``), this one does. ``NUMBA_DISABLE_JIT=1`` turns every loop
back into ordinary Python that a debugger can step through.

    conv.py        conv2d_forward, conv2d_backward (stride, padding, dilation, groups, fused ReLU): im2col + BLAS
    pool.py        max, average, global average and blur pooling, forward and backward
    activation.py  relu_forward, relu_backward
    linear.py      linear_forward, linear_backward (numpy's BLAS)
    optim.py       sgd_step: stochastic gradient descent's update, one pass over a parameter
"""
from .activation import relu_backward, relu_forward
from .conv import conv2d_backward, conv2d_forward
from .linear import linear_backward, linear_forward, matmul
from .optim import sgd_step
from .pool import (avg_pool2d_backward, avg_pool2d_forward, blur_pool2d_backward, blur_pool2d_forward,
                   global_avg_pool2d_backward, global_avg_pool2d_forward, max_pool2d_backward, max_pool2d_forward)

NAME = "plain"


def expect(op, dtype):
    """Nothing to prepare: the plain engine compiles each loop when it first runs."""


def ready(op, dtype):
    """Nothing to wait for."""
