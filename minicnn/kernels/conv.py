"""2-D convolution (cross-correlation, as in every deep-learning library): one image at a time, all in Numba.

Twins: ``minicnn/reference/conv.py`` (the same maths as plain loops), ``minicnn/functional/conv.py`` (the
differentiable op that calls these). Notation as in the package docstring::

    x       (N, C_in, H, W)          weight  (C_out, C_in, KH, KW)     bias (C_out,)
    y       (N, C_out, OH, OW)       OH = floor((H + 2P - KH) / S) + 1   (kernels/shapes.py)

    y[n, co, oh, ow] = bias[co] + sum_{ci, kh, kw} weight[co, ci, kh, kw] * xp[n, ci, oh*S + kh, ow*S + kw]

where ``xp`` is ``x`` with P rows/columns of zeros on each side.

Strategy: **im2col one image at a time, with the products in Numba**. Copy every window of image n into one
column of a small matrix ``cols[n]`` of shape (R, Q) = (C_in·KH·KW, OH·OW); then image n's convolution is one
matrix product with the weight seen as a (C_out, R) matrix, and so are both halves of its backward pass::

    y[n]      = W  @ cols[n] + bias    (C_out, Q): already image n's (C_out, OH, OW) block, no reordering
    dW       += g[n] @ cols[n]ᵀ        g[n] is dL/dy[n] seen as (C_out, Q)
    dcols[n]  = Wᵀ @ g[n]              then col2im adds each column back onto the window it came from

Images are split among Numba's threads (``prange``). Each image's columns (60 KB for LeNet's second layer)
stay in the core's cache between the copy and the product.

Why not one big im2col of the whole batch and numpy's BLAS? That was this file's first version. The matrices
of a small CNN are long and thin (C_out = 6 or 16 rows, R = 25 or 150, Q·N = 50,176 columns for the first LeNet
layer at batch 64), where BLAS is memory-bound: a 5 MB column matrix written by one pass and read again by the
product, plus a reordering pass from (C_out, N, Q) to (N, C_out, Q). Measured on the 2-core machine, batch 64,
milliseconds (before → after)::

    layer                      forward        weight grad     input grad
    Conv2d(1, 6, 5, p=2)       1.05 → 0.34    0.68 → 0.18     1.43 → 0.53
    Conv2d(6, 16, 5)           1.10 → 0.54    0.47 → 0.37     1.26 → 0.68
    Conv2d(16, 32, 3, p=1)     2.54 → 1.34    1.46 → 0.97     2.66 → 1.66

The products are small register-blocked loops (``_matmul_bias``, ``_matmul_nt_add``): 4 × 4 blocks of the
output, so that each number loaded from memory feeds four multiply-adds.
"""
import numpy as np
from numba import get_num_threads, prange

from . import parallel_sum_kernel, sum_kernel


@sum_kernel
def _im2col_image(x, n, cols, KH, KW, stride_h, stride_w, pad_h, pad_w, out_h, out_w):
    """Unfold the windows of image n of x (N, C_in, H, W) into cols (C_in·KH·KW, OH·OW), in place.

    ``cols[(ci·KH + kh)·KW + kw, oh·OW + ow] = xp[n, ci, oh·S + kh, ow·S + kw]``, zero where that cell is
    padding. (A version that computes the in-bounds range of ``ow`` once per row, instead of testing each cell,
    was slower: LLVM vectorises this select.)
    """
    C_in, H, W = x.shape[1:]
    for r in range(C_in * KH * KW):
        ci, kh, kw = r // (KH * KW), (r // KW) % KH, r % KW
        for oh in range(out_h):
            ih = oh * stride_h + kh - pad_h
            row_inside = 0 <= ih < H
            for ow in range(out_w):
                iw = ow * stride_w + kw - pad_w
                cols[r, oh * out_w + ow] = x[n, ci, ih, iw] if row_inside and 0 <= iw < W else 0


@sum_kernel
def _col2im_image(cols, n, x, KH, KW, stride_h, stride_w, pad_h, pad_w, out_h, out_w):
    """The adjoint of ``_im2col_image``: add every column of cols back onto image n of x, in place.

    Cells covered by several windows (S < K) receive several terms; values that fell on padding are dropped.
    """
    C_in, H, W = x.shape[1:]
    for r in range(C_in * KH * KW):
        ci, kh, kw = r // (KH * KW), (r // KW) % KH, r % KW
        for oh in range(out_h):
            ih = oh * stride_h + kh - pad_h
            if ih < 0 or ih >= H:
                continue
            for ow in range(out_w):
                iw = ow * stride_w + kw - pad_w
                if 0 <= iw < W:
                    x[n, ci, ih, iw] += cols[r, oh * out_w + ow]


@sum_kernel
def _matmul_bias(a, b, bias, out):
    """out = a @ b + bias[:, None] for a (M, K), b (K, Q), bias (M,), out (M, Q): rows of out as running sums.

    Four rows of ``out`` at a time, kept in a small buffer, each updated with four rows of ``b`` at a time:
    every element of ``b`` loaded feeds 4 multiply-adds, every pass over the buffer adds 4 terms. The inner
    loop over q is contiguous and vectorised. The last block repeats the last row when M is not a multiple
    of 4 (its results are computed and not stored). Plain loops, not slice assignments, fill and empty the
    buffer: ``acc[0, :] = ...`` made Numba generate broadcasting code that took LLVM 2.5 s instead of 0.8 s
    to compile, for no gain at run time.
    """
    M, K = a.shape
    Q = b.shape[1]
    acc = np.empty((4, Q), dtype=out.dtype)
    K4 = K - K % 4
    for i0 in range(0, M, 4):
        i1, i2, i3 = min(i0 + 1, M - 1), min(i0 + 2, M - 1), min(i0 + 3, M - 1)
        for q in range(Q):
            acc[0, q], acc[1, q], acc[2, q], acc[3, q] = bias[i0], bias[i1], bias[i2], bias[i3]
        for k in range(0, K4, 4):
            a00, a01, a02, a03 = a[i0, k], a[i0, k + 1], a[i0, k + 2], a[i0, k + 3]
            a10, a11, a12, a13 = a[i1, k], a[i1, k + 1], a[i1, k + 2], a[i1, k + 3]
            a20, a21, a22, a23 = a[i2, k], a[i2, k + 1], a[i2, k + 2], a[i2, k + 3]
            a30, a31, a32, a33 = a[i3, k], a[i3, k + 1], a[i3, k + 2], a[i3, k + 3]
            for q in range(Q):
                b0, b1, b2, b3 = b[k, q], b[k + 1, q], b[k + 2, q], b[k + 3, q]
                acc[0, q] += a00 * b0 + a01 * b1 + a02 * b2 + a03 * b3
                acc[1, q] += a10 * b0 + a11 * b1 + a12 * b2 + a13 * b3
                acc[2, q] += a20 * b0 + a21 * b1 + a22 * b2 + a23 * b3
                acc[3, q] += a30 * b0 + a31 * b1 + a32 * b2 + a33 * b3
        for k in range(K4, K):                                   # the last K % 4 rows of b, one at a time
            a0, a1, a2, a3 = a[i0, k], a[i1, k], a[i2, k], a[i3, k]
            for q in range(Q):
                bk = b[k, q]
                acc[0, q] += a0 * bk
                acc[1, q] += a1 * bk
                acc[2, q] += a2 * bk
                acc[3, q] += a3 * bk
        for di in range(min(4, M - i0)):
            for q in range(Q):
                out[i0 + di, q] = acc[di, q]


@sum_kernel
def _matmul_nt_add(a, b, out):
    """out += a @ bᵀ for a (M, Q), b (R, Q), out (M, R): dot products of rows, 4 × 4 of them at a time.

    Each block keeps its 16 sums in registers while one pass over q reads 4 rows of a and 4 of b: 8 loads
    feed 16 multiply-adds. Edge blocks repeat the last row and store only the valid part.
    """
    M, Q = a.shape
    R = b.shape[0]
    zero = np.zeros(1, dtype=out.dtype)[0]                      # a zero of the arrays' dtype
    for i0 in range(0, M, 4):
        i1, i2, i3 = min(i0 + 1, M - 1), min(i0 + 2, M - 1), min(i0 + 3, M - 1)
        for j0 in range(0, R, 4):
            j1, j2, j3 = min(j0 + 1, R - 1), min(j0 + 2, R - 1), min(j0 + 3, R - 1)
            s00 = s01 = s02 = s03 = s10 = s11 = s12 = s13 = zero
            s20 = s21 = s22 = s23 = s30 = s31 = s32 = s33 = zero
            for q in range(Q):
                a0, a1, a2, a3 = a[i0, q], a[i1, q], a[i2, q], a[i3, q]
                b0, b1, b2, b3 = b[j0, q], b[j1, q], b[j2, q], b[j3, q]
                s00 += a0 * b0; s01 += a0 * b1; s02 += a0 * b2; s03 += a0 * b3       # noqa: E702
                s10 += a1 * b0; s11 += a1 * b1; s12 += a1 * b2; s13 += a1 * b3       # noqa: E702
                s20 += a2 * b0; s21 += a2 * b1; s22 += a2 * b2; s23 += a2 * b3       # noqa: E702
                s30 += a3 * b0; s31 += a3 * b1; s32 += a3 * b2; s33 += a3 * b3       # noqa: E702
            block = ((s00, s01, s02, s03), (s10, s11, s12, s13), (s20, s21, s22, s23), (s30, s31, s32, s33))
            for di in range(min(4, M - i0)):
                for dj in range(min(4, R - j0)):
                    out[i0 + di, j0 + dj] += block[di][dj]


@parallel_sum_kernel
def im2col(x, KH, KW, stride_h, stride_w, pad_h, pad_w, out_h, out_w):
    """Every image's columns: cols (N, C_in·KH·KW, OH·OW), ``cols[n] `` as ``_im2col_image`` makes it."""
    N, C_in = x.shape[:2]
    cols = np.empty((N, C_in * KH * KW, out_h * out_w), dtype=x.dtype)
    for n in prange(N):
        _im2col_image(x, n, cols[n], KH, KW, stride_h, stride_w, pad_h, pad_w, out_h, out_w)
    return cols


def col2im(cols, C_in, H, W, KH, KW, stride_h, stride_w, pad_h, pad_w, out_h, out_w):
    """The adjoint of im2col: cols (N, C_in·KH·KW, OH·OW) → x-shaped sums (N, C_in, H, W)."""
    x = np.zeros((cols.shape[0], C_in, H, W), dtype=cols.dtype)
    _col2im(cols, x, KH, KW, stride_h, stride_w, pad_h, pad_w, out_h, out_w)
    return x


@parallel_sum_kernel
def _col2im(cols, x, KH, KW, stride_h, stride_w, pad_h, pad_w, out_h, out_w):
    for n in prange(cols.shape[0]):
        _col2im_image(cols[n], n, x, KH, KW, stride_h, stride_w, pad_h, pad_w, out_h, out_w)


# The parallel kernels below leave allocation, zeros, transposes and sums to their Python callers: inside a
# ``parallel=True`` function each such array expression becomes a parallel loop of its own, which Numba takes
# long to compile (``partial.sum(axis=0)`` alone added 1.6 s to a cold start). They split the images among
# threads in contiguous shares, so that per-thread scratch and partial sums need no locking.

@parallel_sum_kernel
def _forward(x, filters, bias, y, cols, keep_cols, T, KH, KW, stride_h, stride_w, pad_h, pad_w):
    """Both forwards in one loop. Each of T threads takes a contiguous share of the images; image n is unfolded
    into cols[n] when ``keep_cols`` (cols is (N, R, Q)), else into the thread's scratch cols[t] (cols is (T, R, Q))."""
    N, C_out, out_h, out_w = y.shape
    Q = out_h * out_w
    for t in prange(T):
        for n in range(t * N // T, (t + 1) * N // T):
            image_cols = cols[n] if keep_cols else cols[t]
            _im2col_image(x, n, image_cols, KH, KW, stride_h, stride_w, pad_h, pad_w, out_h, out_w)
            _matmul_bias(filters, image_cols, bias, y[n].reshape(C_out, Q))


def conv2d_forward(x, weight, bias, stride_h, stride_w, pad_h, pad_w, out_h, out_w):
    """y = conv2d(x, weight) + bias.

    Inputs: x (N, C_in, H, W), weight (C_out, C_in, KH, KW), bias (C_out,) (zeros for "no bias"), all
    C-contiguous and of one dtype; stride, padding and output size already checked by
    ``shapes.conv2d_geometry``. Returns: y (N, C_out, OH, OW). Each thread needs one image's columns of scratch.
    """
    return _conv2d_forward(x, weight, bias, stride_h, stride_w, pad_h, pad_w, out_h, out_w, keep_cols=False)[0]


def conv2d_forward_keep_cols(x, weight, bias, stride_h, stride_w, pad_h, pad_w, out_h, out_w):
    """``conv2d_forward`` that also returns the columns it built, cols (N, C_in·KH·KW, OH·OW) (= ``im2col(x)``),
    for the weight gradient: keeping them costs no time here and saves unfolding x again in backward."""
    return _conv2d_forward(x, weight, bias, stride_h, stride_w, pad_h, pad_w, out_h, out_w, keep_cols=True)


def _conv2d_forward(x, weight, bias, stride_h, stride_w, pad_h, pad_w, out_h, out_w, keep_cols):
    N, C_in = x.shape[:2]
    C_out, _, KH, KW = weight.shape
    T = get_num_threads()
    y = np.empty((N, C_out, out_h, out_w), dtype=x.dtype)
    cols = np.empty((N if keep_cols else T, C_in * KH * KW, out_h * out_w), dtype=x.dtype)
    _forward(x, weight.reshape(C_out, -1), bias, y, cols, keep_cols, T, KH, KW, stride_h, stride_w, pad_h, pad_w)
    return y, cols


def conv2d_backward_input(grad_out, weight, H, W, stride_h, stride_w, pad_h, pad_w):
    """dL/dx of a convolution: for each image, dcols = Wᵀ @ g[n], then col2im.

    Inputs: grad_out (N, C_out, OH, OW), weight (C_out, C_in, KH, KW), the input's H and W, stride, padding.
    Returns: grad_x (N, C_in, H, W).
    """
    N, C_out = grad_out.shape[:2]
    _, C_in, KH, KW = weight.shape
    filters_t = np.ascontiguousarray(weight.reshape(C_out, -1).T)           # (R, C_out)
    grad_x = np.zeros((N, C_in, H, W), dtype=grad_out.dtype)
    no_bias = np.zeros(filters_t.shape[0], dtype=grad_out.dtype)
    _backward_input(grad_out, filters_t, no_bias, grad_x, KH, KW, stride_h, stride_w, pad_h, pad_w)
    return grad_x


@parallel_sum_kernel
def _backward_input(grad_out, filters_t, no_bias, grad_x, KH, KW, stride_h, stride_w, pad_h, pad_w):
    """grad_x += col2im(filters_t @ g[n]) for each image n (filters_t is Wᵀ, (R, C_out)); image n's cells are
    written by iteration n only."""
    N, C_out, out_h, out_w = grad_out.shape
    R, Q = filters_t.shape[0], out_h * out_w
    for n in prange(N):
        image_grad_cols = np.empty((R, Q), dtype=grad_out.dtype)
        _matmul_bias(filters_t, grad_out[n].reshape(C_out, Q), no_bias, image_grad_cols)
        _col2im_image(image_grad_cols, n, grad_x, KH, KW, stride_h, stride_w, pad_h, pad_w, out_h, out_w)


def conv2d_backward_weight_cols(grad_out, cols, weight_shape):
    """dL/dweight = Σ_n g[n] @ cols[n]ᵀ, from the forward's cols (N, C_in·KH·KW, OH·OW).

    The images are split into one contiguous share per thread; each thread sums its share into its own
    (C_out, R) buffer, and the buffers are added at the end, so the result does not depend on scheduling
    (only on the number of threads, through the order of the sums).
    """
    partial = np.zeros((get_num_threads(), grad_out.shape[1], cols.shape[1]), dtype=grad_out.dtype)
    _backward_weight_cols(grad_out, cols, partial)
    return partial.sum(axis=0).reshape(weight_shape)


@parallel_sum_kernel
def _backward_weight_cols(grad_out, cols, partial):
    """partial[t] += Σ g[n] @ cols[n]ᵀ over thread t's share of the images."""
    N, C_out, out_h, out_w = grad_out.shape
    T, Q = partial.shape[0], out_h * out_w
    for t in prange(T):
        for n in range(t * N // T, (t + 1) * N // T):
            _matmul_nt_add(grad_out[n].reshape(C_out, Q), cols[n], partial[t])


def conv2d_backward_weight(grad_out, x, KH, KW, stride_h, stride_w, pad_h, pad_w):
    """dL/dweight when the forward kept no columns: each thread unfolds its images again, one at a time.

    Inputs: grad_out (N, C_out, OH, OW), x (N, C_in, H, W), the kernel size, stride, padding.
    Returns: grad_weight (C_out, C_in, KH, KW). Summed per thread as in ``conv2d_backward_weight_cols``.
    """
    C_out, C_in = grad_out.shape[1], x.shape[1]
    partial = np.zeros((get_num_threads(), C_out, C_in * KH * KW), dtype=grad_out.dtype)
    _backward_weight(grad_out, x, partial, KH, KW, stride_h, stride_w, pad_h, pad_w)
    return partial.sum(axis=0).reshape((C_out, C_in, KH, KW))


@parallel_sum_kernel
def _backward_weight(grad_out, x, partial, KH, KW, stride_h, stride_w, pad_h, pad_w):
    """partial[t] += Σ g[n] @ im2col(x)[n]ᵀ over thread t's share of the images."""
    N, C_out, out_h, out_w = grad_out.shape
    T, R, Q = partial.shape[0], partial.shape[2], out_h * out_w
    for t in prange(T):
        image_cols = np.empty((R, Q), dtype=x.dtype)
        for n in range(t * N // T, (t + 1) * N // T):
            _im2col_image(x, n, image_cols, KH, KW, stride_h, stride_w, pad_h, pad_w, out_h, out_w)
            _matmul_nt_add(grad_out[n].reshape(C_out, Q), image_cols, partial[t])
