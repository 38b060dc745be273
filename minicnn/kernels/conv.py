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
    padding. Used for stride 1, where LLVM vectorises the test-and-select over a row (a version that computes
    the in-bounds range of ``ow`` once per row was slower).
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


def _offsets(C_in, H, W, KH, KW, stride_h, stride_w, pad_h, pad_w, out_h, out_w):
    """Where windows and outputs sit in a flattened padded image (C_in, H + 2P_h, W + 2P_w):
    ``xp_flat[window[r] + output[q]] = cols[r, q]``, window[r] for r = (ci, kh, kw), output[q] for q = (oh, ow)."""
    Hp, Wp = H + 2 * pad_h, W + 2 * pad_w
    ci, kh, kw = np.ix_(np.arange(C_in), np.arange(KH), np.arange(KW))
    window = ((ci * Hp + kh) * Wp + kw).ravel()
    oh, ow = np.ix_(np.arange(out_h), np.arange(out_w))
    output = (oh * stride_h * Wp + ow * stride_w).ravel()
    return window.astype(np.int64), output.astype(np.int64)


@sum_kernel
def _unfold_image(x, n, cols, padded, window, output, pad_h, pad_w, geometry):
    """im2col of image n into cols (R, Q). Stride 1: ``_im2col_image``. Larger strides: copy the image into
    a zero-padded scratch once, then gather ``cols[r, q] = padded[window[r] + output[q]]`` with no bounds tests
    (0.69 → 0.27 ms for Conv2d(6, 16, 5, stride=2) at batch 256, where the rows are only 5 outputs long)."""
    KH, KW, stride_h, stride_w, out_h, out_w = geometry
    if stride_h == 1 and stride_w == 1:
        _im2col_image(x, n, cols, KH, KW, 1, 1, pad_h, pad_w, out_h, out_w)
        return
    C_in, H, W = x.shape[1:]
    Hp, Wp = H + 2 * pad_h, W + 2 * pad_w
    for ci in range(C_in):
        for i in range(Hp):
            ih = i - pad_h
            row_inside = 0 <= ih < H
            for j in range(Wp):
                iw = j - pad_w
                padded[(ci * Hp + i) * Wp + j] = x[n, ci, ih, iw] if row_inside and 0 <= iw < W else 0
    for r in range(window.shape[0]):
        start = window[r]
        for q in range(output.shape[0]):
            cols[r, q] = padded[start + output[q]]


@sum_kernel
def _fold_image(cols, n, x, padded, window, output, pad_h, pad_w, geometry):
    """The adjoint of ``_unfold_image``: add the columns back onto image n of x (whose cells start at zero).
    Larger strides scatter into the padded scratch without bounds tests, then copy its inside to x[n]."""
    KH, KW, stride_h, stride_w, out_h, out_w = geometry
    if stride_h == 1 and stride_w == 1:
        _col2im_image(cols, n, x, KH, KW, 1, 1, pad_h, pad_w, out_h, out_w)
        return
    C_in, H, W = x.shape[1:]
    Hp, Wp = H + 2 * pad_h, W + 2 * pad_w
    for i in range(padded.shape[0]):
        padded[i] = 0
    for r in range(window.shape[0]):
        start = window[r]
        for q in range(output.shape[0]):
            padded[start + output[q]] += cols[r, q]
    for ci in range(C_in):
        for i in range(H):
            for j in range(W):
                x[n, ci, i, j] += padded[(ci * Hp + i + pad_h) * Wp + j + pad_w]


@sum_kernel
def _matmul_bias(a, b, bias, out):
    """out[n] = a @ b[n] + bias[:, None] for a (M, K), b (B, K, Q), bias (M,), out (B, M, Q): the rows of
    out as running sums, for B images at once.

    Four rows of ``out`` at a time, kept in a small buffer, each updated with four rows of ``b`` at a time:
    every element of ``b`` loaded feeds 4 multiply-adds, every pass over the buffer adds 4 terms, and the 16
    numbers of ``a`` in use are loaded once for all B images. The inner loop over q is contiguous and
    vectorised. The last block repeats the last row when M is not a multiple of 4 (its results are computed
    and not stored). Plain loops, not slice assignments, fill and empty the buffer: ``acc[0, :] = ...`` made
    Numba generate broadcasting code that took LLVM 2.5 s instead of 0.8 s to compile, for no gain at run time.
    """
    M, K = a.shape
    B, Q = b.shape[0], b.shape[2]
    acc = np.empty((4, B, Q), dtype=out.dtype)
    K4 = K - K % 4
    for i0 in range(0, M, 4):
        i1, i2, i3 = min(i0 + 1, M - 1), min(i0 + 2, M - 1), min(i0 + 3, M - 1)
        for n in range(B):
            for q in range(Q):
                acc[0, n, q], acc[1, n, q], acc[2, n, q], acc[3, n, q] = bias[i0], bias[i1], bias[i2], bias[i3]
        for k in range(0, K4, 4):
            a00, a01, a02, a03 = a[i0, k], a[i0, k + 1], a[i0, k + 2], a[i0, k + 3]
            a10, a11, a12, a13 = a[i1, k], a[i1, k + 1], a[i1, k + 2], a[i1, k + 3]
            a20, a21, a22, a23 = a[i2, k], a[i2, k + 1], a[i2, k + 2], a[i2, k + 3]
            a30, a31, a32, a33 = a[i3, k], a[i3, k + 1], a[i3, k + 2], a[i3, k + 3]
            for n in range(B):
                for q in range(Q):
                    b0, b1, b2, b3 = b[n, k, q], b[n, k + 1, q], b[n, k + 2, q], b[n, k + 3, q]
                    acc[0, n, q] += a00 * b0 + a01 * b1 + a02 * b2 + a03 * b3
                    acc[1, n, q] += a10 * b0 + a11 * b1 + a12 * b2 + a13 * b3
                    acc[2, n, q] += a20 * b0 + a21 * b1 + a22 * b2 + a23 * b3
                    acc[3, n, q] += a30 * b0 + a31 * b1 + a32 * b2 + a33 * b3
        for k in range(K4, K):                                   # the last K % 4 rows of b, one at a time
            a0, a1, a2, a3 = a[i0, k], a[i1, k], a[i2, k], a[i3, k]
            for n in range(B):
                for q in range(Q):
                    bk = b[n, k, q]
                    acc[0, n, q] += a0 * bk
                    acc[1, n, q] += a1 * bk
                    acc[2, n, q] += a2 * bk
                    acc[3, n, q] += a3 * bk
        for di in range(min(4, M - i0)):
            for n in range(B):
                for q in range(Q):
                    out[n, i0 + di, q] = acc[di, n, q]


@sum_kernel
def _matmul_nt_add(a, b, out):
    """out += Σ_n a[n] @ b[n]ᵀ for a (B, M, Q), b (B, R, Q), out (M, R): dot products of rows over (n, q),
    4 × 4 of them at a time.

    Each block keeps its 16 sums in registers while the passes over q read 4 rows of a and 4 of b: 8 loads
    feed 16 multiply-adds. Edge blocks repeat the last row and store only the valid part. Several images (B)
    per call matter when Q is short: for Conv2d(6, 16, 5, stride=2), Q = 25, and summing over 10 images in
    one block took its weight gradient at batch 256 from 0.86 to 0.53 ms.
    """
    B, M, Q = a.shape
    R = b.shape[1]
    zero = np.zeros(1, dtype=out.dtype)[0]                      # a zero of the arrays' dtype
    for i0 in range(0, M, 4):
        i1, i2, i3 = min(i0 + 1, M - 1), min(i0 + 2, M - 1), min(i0 + 3, M - 1)
        for j0 in range(0, R, 4):
            j1, j2, j3 = min(j0 + 1, R - 1), min(j0 + 2, R - 1), min(j0 + 3, R - 1)
            s00 = s01 = s02 = s03 = s10 = s11 = s12 = s13 = zero
            s20 = s21 = s22 = s23 = s30 = s31 = s32 = s33 = zero
            for n in range(B):
                for q in range(Q):
                    a0, a1, a2, a3 = a[n, i0, q], a[n, i1, q], a[n, i2, q], a[n, i3, q]
                    b0, b1, b2, b3 = b[n, j0, q], b[n, j1, q], b[n, j2, q], b[n, j3, q]
                    s00 += a0 * b0; s01 += a0 * b1; s02 += a0 * b2; s03 += a0 * b3       # noqa: E702
                    s10 += a1 * b0; s11 += a1 * b1; s12 += a1 * b2; s13 += a1 * b3       # noqa: E702
                    s20 += a2 * b0; s21 += a2 * b1; s22 += a2 * b2; s23 += a2 * b3       # noqa: E702
                    s30 += a3 * b0; s31 += a3 * b1; s32 += a3 * b2; s33 += a3 * b3       # noqa: E702
            block = ((s00, s01, s02, s03), (s10, s11, s12, s13), (s20, s21, s22, s23), (s30, s31, s32, s33))
            for di in range(min(4, M - i0)):
                for dj in range(min(4, R - j0)):
                    out[i0 + di, j0 + dj] += block[di][dj]


#: The products take at least this many columns (images × OH·OW) per call: ``images_per_call``.
MIN_COLUMNS = 256


def images_per_call(out_h, out_w):
    """How many images the products take at once: enough for MIN_COLUMNS columns (1 for LeNet's first layer,
    OH·OW = 784; 10 for the strided pyramid's second, OH·OW = 25). It pays in the weight gradient (see
    ``_matmul_nt_add``); in the forward and input-gradient products it measured neutral, and they follow the
    same loop structure so that all three read alike."""
    return max(1, MIN_COLUMNS // (out_h * out_w))


class _Unfolding:
    """What the per-image unfold and fold need besides the image: the offset tables, one zero-padded scratch
    image per thread, and the geometry as one tuple (KH, KW, S_h, S_w, OH, OW)."""

    def __init__(self, C_in, H, W, KH, KW, stride_h, stride_w, pad_h, pad_w, out_h, out_w, dtype):
        self.threads = get_num_threads()
        self.window, self.output = _offsets(C_in, H, W, KH, KW, stride_h, stride_w, pad_h, pad_w, out_h, out_w)
        strided = (stride_h, stride_w) != (1, 1)
        size = C_in * (H + 2 * pad_h) * (W + 2 * pad_w) if strided else 0       # stride 1 needs no scratch
        self.padded = np.empty((self.threads, size), dtype=dtype)
        self.pad = (pad_h, pad_w)
        self.geometry = (KH, KW, stride_h, stride_w, out_h, out_w)

    def args(self):
        return self.padded, self.window, self.output, *self.pad, self.geometry


@parallel_sum_kernel
def _unfold(x, cols, padded, window, output, pad_h, pad_w, geometry):
    T, N = padded.shape[0], x.shape[0]
    for t in prange(T):
        for n in range(t * N // T, (t + 1) * N // T):
            _unfold_image(x, n, cols[n], padded[t], window, output, pad_h, pad_w, geometry)


@parallel_sum_kernel
def _fold(cols, x, padded, window, output, pad_h, pad_w, geometry):
    T, N = padded.shape[0], x.shape[0]
    for t in prange(T):
        for n in range(t * N // T, (t + 1) * N // T):
            _fold_image(cols[n], n, x, padded[t], window, output, pad_h, pad_w, geometry)


def im2col(x, KH, KW, stride_h, stride_w, pad_h, pad_w, out_h, out_w):
    """Every image's columns: cols (N, C_in·KH·KW, OH·OW), ``cols[n]`` as ``_unfold_image`` makes it."""
    N, C_in, H, W = x.shape
    unfolding = _Unfolding(C_in, H, W, KH, KW, stride_h, stride_w, pad_h, pad_w, out_h, out_w, x.dtype)
    cols = np.empty((N, C_in * KH * KW, out_h * out_w), dtype=x.dtype)
    _unfold(x, cols, *unfolding.args())
    return cols


def col2im(cols, C_in, H, W, KH, KW, stride_h, stride_w, pad_h, pad_w, out_h, out_w):
    """The adjoint of im2col: cols (N, C_in·KH·KW, OH·OW) → x-shaped sums (N, C_in, H, W)."""
    unfolding = _Unfolding(C_in, H, W, KH, KW, stride_h, stride_w, pad_h, pad_w, out_h, out_w, cols.dtype)
    x = np.zeros((cols.shape[0], C_in, H, W), dtype=cols.dtype)
    _fold(cols, x, *unfolding.args())
    return x


# The parallel kernels below leave allocation, zeros, transposes and sums to their Python callers: inside a
# ``parallel=True`` function each such array expression becomes a parallel loop of its own, which Numba takes
# long to compile (``partial.sum(axis=0)`` alone added 1.6 s to a cold start). They split the images among
# threads in contiguous shares (thread t takes images t·N/T to (t+1)·N/T), so that per-thread scratch and
# partial sums need no locking.

@parallel_sum_kernel
def _forward(x, filters, bias, y, kept, scratch, keep_cols, padded, window, output, pad_h, pad_w, geometry):
    """Both forwards in one loop, B = scratch.shape[1] images per product: the images are unfolded into
    kept[n] when ``keep_cols`` (kept is (N, R, Q)), else into the thread's scratch (T, B, R, Q)."""
    N, C_out, out_h, out_w = y.shape
    T, B, Q = padded.shape[0], scratch.shape[1], out_h * out_w
    y3 = y.reshape(N, C_out, Q)
    for t in prange(T):
        end = (t + 1) * N // T
        for n0 in range(t * N // T, end, B):
            n1 = min(n0 + B, end)
            image_cols = kept[n0:n1] if keep_cols else scratch[t, :n1 - n0]
            for n in range(n0, n1):
                _unfold_image(x, n, image_cols[n - n0], padded[t], window, output, pad_h, pad_w, geometry)
            _matmul_bias(filters, image_cols, bias, y3[n0:n1])


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
    N, C_in, H, W = x.shape
    C_out, _, KH, KW = weight.shape
    unfolding = _Unfolding(C_in, H, W, KH, KW, stride_h, stride_w, pad_h, pad_w, out_h, out_w, x.dtype)
    R, Q, B = C_in * KH * KW, out_h * out_w, images_per_call(out_h, out_w)
    y = np.empty((N, C_out, out_h, out_w), dtype=x.dtype)
    kept = np.empty((N if keep_cols else 0, R, Q), dtype=x.dtype)
    scratch = np.empty((0 if keep_cols else unfolding.threads, B, R, Q), dtype=x.dtype)
    _forward(x, weight.reshape(C_out, -1), bias, y, kept, scratch, keep_cols, *unfolding.args())
    return y, kept


def conv2d_backward_input(grad_out, weight, H, W, stride_h, stride_w, pad_h, pad_w):
    """dL/dx of a convolution: for each image, dcols = Wᵀ @ g[n], then col2im.

    Inputs: grad_out (N, C_out, OH, OW), weight (C_out, C_in, KH, KW), the input's H and W, stride, padding.
    Returns: grad_x (N, C_in, H, W).
    """
    N, C_out, out_h, out_w = grad_out.shape
    _, C_in, KH, KW = weight.shape
    unfolding = _Unfolding(C_in, H, W, KH, KW, stride_h, stride_w, pad_h, pad_w, out_h, out_w, grad_out.dtype)
    filters_t = np.ascontiguousarray(weight.reshape(C_out, -1).T)           # (R, C_out)
    no_bias = np.zeros(filters_t.shape[0], dtype=grad_out.dtype)
    grad_cols = np.empty((unfolding.threads, images_per_call(out_h, out_w), filters_t.shape[0], out_h * out_w),
                         dtype=grad_out.dtype)
    grad_x = np.zeros((N, C_in, H, W), dtype=grad_out.dtype)
    _backward_input(grad_out, filters_t, no_bias, grad_cols, grad_x, *unfolding.args())
    return grad_x


@parallel_sum_kernel
def _backward_input(grad_out, filters_t, no_bias, grad_cols, grad_x, padded, window, output, pad_h, pad_w,
                    geometry):
    """grad_x[n] += col2im(filters_t @ g[n]) for each image n (filters_t is Wᵀ, (R, C_out)), B images at a time
    in the thread's scratch grad_cols[t] (B, R, Q); image n's cells are written by its thread only."""
    N, C_out, out_h, out_w = grad_out.shape
    T, B, Q = padded.shape[0], grad_cols.shape[1], out_h * out_w
    g = grad_out.reshape(N, C_out, Q)
    for t in prange(T):
        end = (t + 1) * N // T
        for n0 in range(t * N // T, end, B):
            n1 = min(n0 + B, end)
            _matmul_bias(filters_t, g[n0:n1], no_bias, grad_cols[t, :n1 - n0])
            for n in range(n0, n1):
                _fold_image(grad_cols[t, n - n0], n, grad_x, padded[t], window, output, pad_h, pad_w, geometry)


def conv2d_backward_weight_cols(grad_out, cols, weight_shape):
    """dL/dweight = Σ_n g[n] @ cols[n]ᵀ, from the forward's cols (N, C_in·KH·KW, OH·OW).

    The images are split into one contiguous share per thread; each thread sums its share into its own
    (C_out, R) buffer, and the buffers are added at the end, so the result does not depend on scheduling
    (only on the number of threads, through the order of the sums).
    """
    partial = np.zeros((get_num_threads(), grad_out.shape[1], cols.shape[1]), dtype=grad_out.dtype)
    _backward_weight_cols(grad_out, cols, partial, images_per_call(*grad_out.shape[2:]))
    return partial.sum(axis=0).reshape(weight_shape)


@parallel_sum_kernel
def _backward_weight_cols(grad_out, cols, partial, B):
    """partial[t] += Σ g[n] @ cols[n]ᵀ over thread t's share of the images, B images per product."""
    N, C_out, out_h, out_w = grad_out.shape
    T, Q = partial.shape[0], out_h * out_w
    g = grad_out.reshape(N, C_out, Q)
    for t in prange(T):
        end = (t + 1) * N // T
        for n in range(t * N // T, end, B):
            _matmul_nt_add(g[n:min(n + B, end)], cols[n:min(n + B, end)], partial[t])


def conv2d_backward_weight(grad_out, x, KH, KW, stride_h, stride_w, pad_h, pad_w):
    """dL/dweight when the forward kept no columns: each thread unfolds its images again, one at a time.

    Inputs: grad_out (N, C_out, OH, OW), x (N, C_in, H, W), the kernel size, stride, padding.
    Returns: grad_weight (C_out, C_in, KH, KW). Summed per thread as in ``conv2d_backward_weight_cols``.
    """
    N, C_out, out_h, out_w = grad_out.shape
    C_in, H, W = x.shape[1:]
    unfolding = _Unfolding(C_in, H, W, KH, KW, stride_h, stride_w, pad_h, pad_w, out_h, out_w, x.dtype)
    cols = np.empty((unfolding.threads, C_in * KH * KW, out_h * out_w), dtype=x.dtype)
    partial = np.zeros((unfolding.threads, C_out, C_in * KH * KW), dtype=grad_out.dtype)
    _backward_weight(grad_out, x, cols, partial, *unfolding.args())
    return partial.sum(axis=0).reshape((C_out, C_in, KH, KW))


@parallel_sum_kernel
def _backward_weight(grad_out, x, cols, partial, padded, window, output, pad_h, pad_w, geometry):
    """partial[t] += Σ g[n] @ im2col(x)[n]ᵀ over thread t's share of the images, unfolded into cols[t]."""
    N, C_out, out_h, out_w = grad_out.shape
    T, Q = partial.shape[0], out_h * out_w
    for t in prange(T):
        for n in range(t * N // T, (t + 1) * N // T):
            _unfold_image(x, n, cols[t], padded[t], window, output, pad_h, pad_w, geometry)
            _matmul_nt_add(grad_out[n:n + 1].reshape(1, C_out, Q), cols[t:t + 1], partial[t])
