"""``minicnn/kernels/blas.py``'s product as its definition reads: one dot product per entry of the result."""
import numpy as np


def gemm(a, b, trans_a=False, trans_b=False, bias=None, threads=None, relu=False):
    """op(a) @ op(b) (+ bias), op the matrix or its transpose: c[i, j] = bias[j] + Σ_k op(a)[i, k] · op(b)[k, j],
    or max(that, 0) with ``relu`` (NaN kept)."""
    op_a = a.T if trans_a else a
    op_b = b.T if trans_b else b
    c = np.zeros((op_a.shape[0], op_b.shape[1]), dtype=np.result_type(a, b))
    for i in range(c.shape[0]):
        for j in range(c.shape[1]):
            c[i, j] = (0 if bias is None else bias[j]) + np.dot(op_a[i, :], op_b[:, j])
            if relu and c[i, j] <= 0:
                c[i, j] = 0
    return c
