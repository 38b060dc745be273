"""Plain twins of the fast engine's inner pieces (its products, BLAS split, im2col), as their definitions read.

The fast engine (``minicnn/fast/``) builds its ops from pieces that have no place in the engine contract: small
register-tiled products, a BLAS product split among threads, im2col and col2im. ``tests/test_kernels.py``
checks each piece against its twin here, one entry at a time.
"""
import numpy as np
import pytest

ADD = pytest.importorskip("minicnn.fast.matmul", reason="the fast engine cannot be imported here", exc_type=ImportError).ADD
STORE = pytest.importorskip("minicnn.fast.matmul", exc_type=ImportError).STORE


def matmul_scatter_add(a, source, window, target, target_window, Q, initial, mode):
    """target[n, target_window[i]:][:Q] (+)= initial[i] + row i of a @ b[n], where row k of b[n] starts at
    source[n, window[k]]: added (mode ADD), stored (STORE) or stored as max(·, 0) (STORE_RELU); one row at a time."""
    for n in range(source.shape[0]):
        for i in range(a.shape[0]):
            row = np.array([initial[i] + sum(a[i, k] * source[n, int(window[k]) + q] for k in range(a.shape[1]))
                            for q in range(Q)], dtype=target.dtype)
            start = int(target_window[i])
            if mode == ADD:
                target[n, start:start + Q] += row
            elif mode == STORE:
                target[n, start:start + Q] = row
            else:
                target[n, start:start + Q] = np.where(row <= 0, 0, row)


def matmul_nt_add(a, source, window, out):
    """out += Σ_n a[n] @ b[n]ᵀ for a (B, M, Q), b[n] as in ``matmul_scatter_add``: one dot product at a time."""
    B, M, Q = a.shape
    for n in range(B):
        for i in range(M):
            for k in range(len(window)):
                out[i, k] += np.dot(a[n, i], source[n, int(window[k]):int(window[k]) + Q])


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


def pad2d(x, pad_h, pad_w):
    """``x`` (N, C, H, W) with ``pad_h`` rows and ``pad_w`` columns of zeros added on each side."""
    return np.pad(x, ((0, 0), (0, 0), (pad_h, pad_h), (pad_w, pad_w)))


def im2col(x, KH, KW, stride_h, stride_w, pad_h, pad_w, out_h, out_w):
    """Every KH × KW window of the padded x, flattened into one column: (N, C_in·KH·KW, OH·OW).

    Column ``oh·OW + ow`` of ``cols[n]`` is window (oh, ow) of image n, read channel by channel, row by row.
    """
    N, C_in = x.shape[:2]
    xp = pad2d(x, pad_h, pad_w)
    cols = np.zeros((N, C_in * KH * KW, out_h * out_w), dtype=x.dtype)
    for n in range(N):
        for oh in range(out_h):
            for ow in range(out_w):
                top, left = oh * stride_h, ow * stride_w
                cols[n, :, oh * out_w + ow] = xp[n, :, top:top + KH, left:left + KW].ravel()
    return cols


def col2im(cols, C_in, H, W, KH, KW, stride_h, stride_w, pad_h, pad_w, out_h, out_w):
    """The adjoint of im2col: each column is added back onto its window; what lands on padding is dropped."""
    N = cols.shape[0]
    xp = np.zeros((N, C_in, H + 2 * pad_h, W + 2 * pad_w), dtype=cols.dtype)
    for n in range(N):
        for oh in range(out_h):
            for ow in range(out_w):
                top, left = oh * stride_h, ow * stride_w
                column = cols[n, :, oh * out_w + ow]
                xp[n, :, top:top + KH, left:left + KW] += column.reshape(C_in, KH, KW)
    return xp[:, :, pad_h:pad_h + H, pad_w:pad_w + W]
