"""Small matrix products: what the convolution kernels multiply with.

Twin: ``tests/fast_twins.py``. The products read the rows of their second operand from a flat
``source`` at offsets ``window``: row k of image n's matrix b[n] is ``source[n, window[k]:][:Q]``. For a plain
(K, Q) matrix that is window[k] = k·Q; the convolution passes overlapping windows into a spread block of
images (see ``fast/conv.py``). Two products: ``matmul_scatter_add`` (the rows of a @ b[n] stored or added at
offsets of a target: the convolution's forward, the bias first, and its input gradient, added into a spread
gradient), built on ``vectors.py``'s register tiles, and ``matmul_nt_add`` (Σ_n a[n] @ b[n]ᵀ: its weight
gradient), a Numba loop of dot products.

``window`` is unsigned (uint64), and so is the loop counter q of ``matmul_nt_add``: Numba tests a signed index
for being negative (Python's wrap-around), which for ``src[s0 + q]`` it cannot rule out, and the test stops
LLVM from vectorising the loop (2× slower). Taking each row as a view instead avoids the test but costs a
reference count per view.

Why not numpy's ``@`` (OpenBLAS)? Inside minicnn OpenBLAS runs on one thread (``threads.py``), these matrices
are small or long and thin (6 or 16 rows), and their rows overlap, which BLAS cannot read (its rows must lie
at least a row's length apart): copying them into a plain matrix for OpenBLAS cost more than its speed won.
The linear layer, whose products are plain matrices, does use OpenBLAS, one band of rows per
thread (``blas.py``).
"""
import numpy as np

from . import inline_kernel, sum_kernel

#: What ``matmul_scatter_add`` does with each row it has computed (``vectors.py``'s constants).
from .vectors import (ADD, EXACT, EXACT_ROWS, EXACT_VECTORS, ROWS, STORE, STORE_RELU,  # noqa: E402
                      VECTOR_BYTES, VECTORS, tile, tile_exact, tile_exact_masked, tile_masked)


@sum_kernel
def matmul_scatter_add(a, source, window, target, target_window, Q, initial, mode):
    """target[n, target_window[i] + q] (+)= initial[i] + Σ_k a[i, k] · source[n, window[k] + q] for q < Q and
    every row i: added to what the target holds (``mode`` ADD), stored over it (STORE), or stored through a
    ReLU, max(·, 0) (STORE_RELU: a convolution and the ReLU after it in one pass, ``functional/conv.py``).
    a (M, K) and initial (M,) C-contiguous; window, target_window uint64.

    Row i of a @ b[n] is added where ``target_window`` says; rows that overlap add up. The convolution's input
    gradient adds each column row straight into the spread gradient (``initial`` zeros, ADD), without
    writing the (R, Q) columns first and adding them in a second pass (columns that may not fit in the
    first-level cache); its forward stores bias + W @ cols (``initial`` = the bias). The bias starts the sums,
    so the outputs are written once.

    The work is done by ``vectors.py``'s 6-row × 2-vector tiles of sums held in registers (32 float32 columns a
    tile with AVX-512, 16 with AVX2; narrower masked ones at the end of each row). With AVX-512 its 8 × 2
    ``tile_exact`` takes M a multiple of 8 (16 output channels: 6-row tiles computed 18 rows; the 16-channel
    convolutions' forward 10–12% faster with 8); with AVX2 there is no such tile (``vectors.EXACT``). For
    each image and each slab of columns, every block of rows of a is run over the same slab of b's rows, which
    stays in the core's first-level cache: with rows of a outer instead, the strided second layer's product
    (rows of b 400 numbers long, 150 of them) ran at 102 instead of 115 GFLOP/s. Before the tiles, this was a
    Numba loop keeping 4 × Q sums in a buffer it loaded and stored for every 4 rows of b (86–90 GFLOP/s, 46–55
    for LeNet's 6-channel first layer).
    """
    M, K = a.shape
    size = a.itemsize
    lanes = VECTOR_BYTES // size                          # numbers in a vector
    exact = EXACT and M % EXACT_ROWS == 0
    slab = (EXACT_VECTORS if exact else VECTORS) * lanes  # columns of one full tile
    step = EXACT_ROWS if exact else ROWS                  # rows of a tile
    number = initial[0]                                   # tells the tiles the arrays' dtype
    a_at, window_at, initial_at = a.ctypes.data, window.ctypes.data, initial.ctypes.data
    rows_at = target_window.ctypes.data
    for n in range(target.shape[0]):
        src = source.ctypes.data + n * source.strides[0]
        out = target.ctypes.data + n * target.strides[0]
        for q in range(0, Q, slab):
            width = min(slab, Q - q)
            for i in range(0, M, step):
                rows = min(step, M - i)
                a_i, rows_i, initial_i = a_at + i * K * size, rows_at + i * 8, initial_at + i * size
                if width == slab:
                    _tile(exact, False, number, a_i, K, rows, K, window_at, src + q * size, out + q * size, rows_i,
                          initial_i, mode, slab)
                else:
                    for v in range(q, q + width, lanes):
                        _tile(exact, True, number, a_i, K, rows, K, window_at, src + v * size, out + v * size,
                              rows_i, initial_i, mode, min(lanes, q + width - v))


@inline_kernel
def _tile(exact, masked, number, a, lda, rows, K, window, src, t, target_window, initial, mode, count):
    """One of ``vectors.py``'s four tiles: ``tile_exact`` or ``tile``, full or one vector masked to ``count``."""
    if EXACT and exact:                                  # a constant: the unused tiles are dropped
        if masked:
            tile_exact_masked(number, a, lda, rows, K, window, src, t, target_window, initial, mode, count)
        else:
            tile_exact(number, a, lda, rows, K, window, src, t, target_window, initial, mode, count)
    elif masked:
        tile_masked(number, a, lda, rows, K, window, src, t, target_window, initial, mode, count)
    else:
        tile(number, a, lda, rows, K, window, src, t, target_window, initial, mode, count)


@sum_kernel
def matmul_nt_add(a, source, window, out):
    """out[i, k] += Σ_n Σ_q a[n, i, q] · source[n, window[k] + q] for a (B, M, Q), source (B, L), out (M, K):
    Σ_n a[n] @ b[n]ᵀ with b[n] as in ``matmul_scatter_add``, 4 × 4 dot products at a time.

    Each block keeps its 16 sums in registers while the passes over q read 4 rows of a and 4 of b: 8 loads
    feed 16 multiply-adds. Edge blocks repeat the last row and store only the valid part. Several images per
    call matter when Q is short (Conv2d(6, 16, 5, stride=2): Q = 25).
    """
    B, M, Q = a.shape
    K = window.shape[0]
    Qu = np.uint64(Q)               # unsigned, like window: see the module docstring
    zero = np.zeros(1, dtype=out.dtype)[0]                      # a zero of the arrays' dtype
    for i0 in range(0, M, 4):
        i1, i2, i3 = min(i0 + 1, M - 1), min(i0 + 2, M - 1), min(i0 + 3, M - 1)
        for j0 in range(0, K, 4):
            s0, s1 = window[j0], window[min(j0 + 1, K - 1)]
            s2, s3 = window[min(j0 + 2, K - 1)], window[min(j0 + 3, K - 1)]
            t00 = t01 = t02 = t03 = t10 = t11 = t12 = t13 = zero
            t20 = t21 = t22 = t23 = t30 = t31 = t32 = t33 = zero
            for n in range(B):
                src = source[n]
                for q in range(Qu):
                    a0, a1, a2, a3 = a[n, i0, q], a[n, i1, q], a[n, i2, q], a[n, i3, q]
                    b0, b1, b2, b3 = src[s0 + q], src[s1 + q], src[s2 + q], src[s3 + q]
                    t00 += a0 * b0; t01 += a0 * b1; t02 += a0 * b2; t03 += a0 * b3       # noqa: E702
                    t10 += a1 * b0; t11 += a1 * b1; t12 += a1 * b2; t13 += a1 * b3       # noqa: E702
                    t20 += a2 * b0; t21 += a2 * b1; t22 += a2 * b2; t23 += a2 * b3       # noqa: E702
                    t30 += a3 * b0; t31 += a3 * b1; t32 += a3 * b2; t33 += a3 * b3       # noqa: E702
            block = ((t00, t01, t02, t03), (t10, t11, t12, t13), (t20, t21, t22, t23), (t30, t31, t32, t33))
            for di in range(min(4, M - i0)):
                for dj in range(min(4, K - j0)):
                    out[i0 + di, j0 + dj] += block[di][dj]
