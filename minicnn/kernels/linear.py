"""The fully connected layer's three products, on the register-blocked loops of ``matmul.py``.

Twins: ``minicnn/reference/linear.py`` (numpy's ``@``), ``minicnn/functional/linear.py`` (the op)::

    y  = x @ Wᵀ + b        x (N, I), W (O, I), b (O,), y (N, O)
    dx = g @ W             g = dL/dy (N, O)
    dW = gᵀ @ x

All three are one kernel, ``_rows_times_matrix`` (out = a @ b, split among the threads by rows of out, so no
two threads write the same cell), with a = x, g or gᵀ: one kernel to compile instead of three (a cold start
spends ~1.3 s compiling each). Measured on the 2-core machine against numpy's OpenBLAS, which inside
minicnn runs on one thread (``threads.py``): y for Linear(400, 120) on 1,000 samples 0.77 → 0.68 ms,
on 256 samples 0.22 → 0.16 ms.
"""
import numpy as np
from numba import get_num_threads, prange

from . import parallel_sum_kernel
from .matmul import matmul_bias


def _rows(n, I):
    """window for a matrix with n rows of length I, read as one flat source: row k starts at k·I."""
    return np.arange(n, dtype=np.uint64) * np.uint64(I)


def linear_forward(x, weight, bias):
    """y = x @ weightᵀ + bias for x (N, I), weight (O, I), bias (O,) (zeros for "no bias"). Returns y (N, O)."""
    (N, I), O = x.shape, weight.shape[0]
    y = np.empty((N, O), dtype=x.dtype)
    weight_t = np.ascontiguousarray(weight.T)                           # (I, O): 48,000 numbers for (400, 120)
    no_bias = np.zeros(N, dtype=x.dtype)
    _rows_times_matrix(x, weight_t.reshape(1, -1), _rows(I, O), no_bias, y, get_num_threads())
    y += bias
    return y


def linear_backward_input(grad_out, weight):
    """dx = grad_out @ weight for grad_out (N, O), weight (O, I). Returns dx (N, I)."""
    N, (O, I) = grad_out.shape[0], weight.shape
    grad_x = np.empty((N, I), dtype=grad_out.dtype)
    no_bias = np.zeros(N, dtype=grad_out.dtype)
    _rows_times_matrix(grad_out, weight.reshape(1, -1), _rows(O, I), no_bias, grad_x, get_num_threads())
    return grad_x


def linear_backward_weight(grad_out, x):
    """dW = grad_outᵀ @ x for grad_out (N, O), x (N, I). Returns dW (O, I)."""
    (N, O), I = grad_out.shape, x.shape[1]
    grad_w = np.empty((O, I), dtype=grad_out.dtype)
    no_bias = np.zeros(O, dtype=grad_out.dtype)
    _rows_times_matrix(np.ascontiguousarray(grad_out.T), x.reshape(1, -1), _rows(N, I), no_bias, grad_w,
                       get_num_threads())
    return grad_w


@parallel_sum_kernel
def _rows_times_matrix(a, b_flat, window, no_bias, out, T):
    """out = a @ b for a (M, K) and b (K, J) given flat with its row starts; thread t takes rows of out."""
    M = a.shape[0]
    J = out.shape[1]
    for t in prange(T):
        m0, m1 = t * M // T, (t + 1) * M // T
        matmul_bias(a[m0:m1], b_flat, window, no_bias[m0:m1], out[m0:m1].reshape(1, m1 - m0, J))
