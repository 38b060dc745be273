"""Small matrix products as register-blocked Numba loops: what the convolution kernels multiply with.

Twin: ``minicnn/reference/matmul.py``. The products read the rows of their second operand from a flat
``source`` at offsets ``window``: row k of image n's matrix b[n] is ``source[n, window[k]:][:Q]``. For a plain
(K, Q) matrix that is window[k] = k·Q; the convolution passes overlapping windows into a spread block of
images (see ``kernels/conv.py``). Two products: ``matmul_scatter_add`` (the rows of a @ b[n] stored or added at
offsets of a target: the convolution's forward, the bias first, and its input gradient, added into a spread
gradient) and ``matmul_nt_add`` (Σ_n a[n] @ b[n]ᵀ: its weight gradient).

``window`` is unsigned (uint64), and so is the loop counter q: Numba tests a signed index for being negative
(Python's wrap-around), which for ``src[s0 + q]`` it cannot rule out, and the test stops LLVM from
vectorising the loop (2× slower). Taking each row as a view instead avoids the test but costs a reference
count per view: for Conv2d(6, 16, 5, stride=2), 10 images of 25 columns per call, 40 µs with views, 25 µs
unsigned.

Why not numpy's ``@`` (OpenBLAS)? Inside minicnn OpenBLAS runs on one thread (``threads.py``), these matrices
are small or long and thin (6 or 16 rows), and their rows overlap, which BLAS cannot read (its rows must lie
at least a row's length apart). These loops run inside the parallel kernels, on each thread's share of the
images, with the operands in the core's cache, at 70–87 GFLOP/s per core on the convolutions' shapes (rows of
a multiple of 8 numbers: LLVM's 8-wide vectors, no scalar remainder). What limits them is the sums' buffer:
for every 16 multiply-adds (four rows of b into four rows of sums) they load and store four vectors of sums.
A BLAS kernel keeps a tile of sums in registers for the whole of K (OpenBLAS: 152 GFLOP/s on one core of
this machine, 2048 × 2048); written as a block of scalar sums in Numba, LLVM no longer vectorised the loop
(5× slower), and LLVM's 512-bit vectors in these loops (an LLVM function attribute, tried) gave no speed-up. The linear layer, whose products are
plain matrices, uses OpenBLAS, one band of rows per thread (``blas.py``): these loops on two threads only
matched one-thread OpenBLAS there, and cost 1.3 s of compile.
"""
import numpy as np

from . import sum_kernel

#: What ``matmul_scatter_add`` does with each row it has computed.
ADD, STORE, STORE_RELU = 0, 1, 2


@sum_kernel
def matmul_scatter_add(a, source, window, target, target_window, Q, initial, mode):
    """target[n, target_window[i] + q] (+)= initial[i] + Σ_k a[i, k] · source[n, window[k] + q] for q < Q, row i
    after row i − 1: added to what the target holds (``mode`` ADD), stored over it (STORE), or stored through a
    ReLU, max(·, 0) (STORE_RELU: a convolution and the ReLU after it in one pass, ``functional/conv.py``).

    Row i of a @ b[n] is added where ``target_window`` says; rows that overlap add up. The convolution's input
    gradient adds each column row straight into the spread gradient (``initial`` zeros, ADD), without
    writing the (R, Q) columns first and adding them in a second pass (11.2 → 8.9 µs per image of LeNet's second
    layer, whose 60 KB of columns did not fit in the core's 48 KB first-level cache); its forward stores
    bias + W @ cols (``initial`` = the bias). The bias starts the sums: writing bias rows first and adding the
    product onto them took 0.11 ms more of the strided first layer's 1.4 ms at batch 1000. Only the last loop
    differs between the two uses (a second, whole storing product cost 1.3 s of compile at a cold start).

    Four rows of the result at a time, kept in a small buffer, each updated with four rows of b at a time: every
    element of b loaded feeds 4 multiply-adds, and the 16 numbers of a in use are loaded once for all B
    images. The inner loop over q is contiguous and vectorised. The last block repeats the last row when M is
    not a multiple of 4 (its results are computed and not stored). Plain loops, not slice assignments, fill and
    empty the buffer: ``acc[0, :] = ...`` made Numba generate code that took LLVM 2.5 s instead of 0.8 s to
    compile, for no gain at run time.
    """
    M, K = a.shape
    B = target.shape[0]
    acc = np.empty((4, B, Q), dtype=target.dtype)
    K4 = K - K % 4
    Qu = np.uint64(Q)               # unsigned, like window: see the module docstring
    for i0 in range(0, M, 4):
        i1, i2, i3 = min(i0 + 1, M - 1), min(i0 + 2, M - 1), min(i0 + 3, M - 1)
        c0, c1, c2, c3 = initial[i0], initial[i1], initial[i2], initial[i3]
        for n in range(B):
            for q in range(Q):
                acc[0, n, q], acc[1, n, q], acc[2, n, q], acc[3, n, q] = c0, c1, c2, c3
        for k in range(0, K4, 4):
            a00, a01, a02, a03 = a[i0, k], a[i0, k + 1], a[i0, k + 2], a[i0, k + 3]
            a10, a11, a12, a13 = a[i1, k], a[i1, k + 1], a[i1, k + 2], a[i1, k + 3]
            a20, a21, a22, a23 = a[i2, k], a[i2, k + 1], a[i2, k + 2], a[i2, k + 3]
            a30, a31, a32, a33 = a[i3, k], a[i3, k + 1], a[i3, k + 2], a[i3, k + 3]
            s0, s1, s2, s3 = window[k], window[k + 1], window[k + 2], window[k + 3]
            for n in range(B):
                src = source[n]
                for q in range(Qu):
                    b0, b1, b2, b3 = src[s0 + q], src[s1 + q], src[s2 + q], src[s3 + q]
                    acc[0, n, q] += a00 * b0 + a01 * b1 + a02 * b2 + a03 * b3
                    acc[1, n, q] += a10 * b0 + a11 * b1 + a12 * b2 + a13 * b3
                    acc[2, n, q] += a20 * b0 + a21 * b1 + a22 * b2 + a23 * b3
                    acc[3, n, q] += a30 * b0 + a31 * b1 + a32 * b2 + a33 * b3
        for k in range(K4, K):                                   # the last K % 4 rows of b, one at a time
            a0, a1, a2, a3 = a[i0, k], a[i1, k], a[i2, k], a[i3, k]
            s = window[k]
            for n in range(B):
                src = source[n]
                for q in range(Qu):
                    bk = src[s + q]
                    acc[0, n, q] += a0 * bk
                    acc[1, n, q] += a1 * bk
                    acc[2, n, q] += a2 * bk
                    acc[3, n, q] += a3 * bk
        for di in range(min(4, M - i0)):
            start = target_window[i0 + di]
            for n in range(B):
                row = target[n]
                if mode == ADD:
                    for q in range(Qu):
                        row[start + q] += acc[di, n, q]
                elif mode == STORE:
                    for q in range(Qu):
                        row[start + q] = acc[di, n, q]
                else:
                    for q in range(Qu):
                        v = acc[di, n, q]
                        row[start + q] = 0 if v <= 0 else v              # as kernels/activation.py: NaN stays


@sum_kernel
def matmul_nt_add(a, source, window, out):
    """out[i, k] += Σ_n Σ_q a[n, i, q] · source[n, window[k] + q] for a (B, M, Q), source (B, L), out (M, K):
    Σ_n a[n] @ b[n]ᵀ with b[n] as in ``matmul_scatter_add``, 4 × 4 dot products at a time.

    Each block keeps its 16 sums in registers while the passes over q read 4 rows of a and 4 of b: 8 loads
    feed 16 multiply-adds. Edge blocks repeat the last row and store only the valid part. Several images per
    call matter when Q is short: for Conv2d(6, 16, 5, stride=2), Q = 25, and summing over 10 images in one
    block took its weight gradient at batch 256 from 0.86 to 0.53 ms.
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


