"""2-D convolution (cross-correlation, as in every deep-learning library): a few images at a time, all in Numba.

Twins: ``minicnn/reference/conv.py`` (the same maths as plain loops), ``minicnn/functional/conv.py`` (the
differentiable op that calls these). Notation as in the package docstring::

    x       (N, C_in, H, W)          weight  (C_out, C_in, KH, KW)     bias (C_out,)
    y       (N, C_out, OH, OW)       OH = floor((H + 2P - KH) / S) + 1   (kernels/shapes.py)

    y[n, co, oh, ow] = bias[co] + sum_{ci, kh, kw} weight[co, ci, kh, kw] * xp[n, ci, oh*S + kh, ow*S + kw]

where ``xp`` is ``x`` with P rows/columns of zeros on each side, of size Hp × Wp.

Strategy: **im2col without the copies where possible, products in Numba.** Image n's convolution is one matrix
product with the weight seen as a (C_out, R) matrix, R = C_in·KH·KW, and so are both halves of its backward::

    y[n]     = W  @ cols[n] + bias       cols[n] (R, Q): row r = (ci, kh, kw) holds the input under tap r
    dW      += g[n] @ cols[n]ᵀ           for every output position q
    dcols[n] = Wᵀ @ g[n]                 then each row is added back where it was read (col2im)

Row r of cols[n] holds, for every output (oh, ow), the input at ``xp[ci, oh·S + kh, ow·S + kw]``. How the
products read it:

- **Stride 1: spread, then runs.** Copy the padded image KW times, copy kw shifted left by kw and cut to the
  output's width: ``spread[ci, kw, h, ow] = xp[ci, h, ow + kw]`` (``_spread``, C_in·KW·Hp·OW numbers). Row r
  of cols is then one contiguous run of it, OH·OW long, starting at ``window[r] = ((ci·KW + kw)·Hp + kh)·OW``:
  the product reads the spread image directly and no column matrix exists. Its input gradient is added
  straight back into a spread gradient (``matmul_scatter_add``) and folded onto the image (``_fold``).
- **Other strides: gather.** The runs are not contiguous, so the columns are gathered (``_gather``) through
  offset tables, ``taps[r] + positions[q]`` with ``taps[r] = (ci·Hp + kh)·Wp + kw`` and ``positions[q] =
  oh·S·Wp + ow·S`` in the flattened padded image, into an explicit matrix, several images side by side
  (``Plan``).

Both meet in register-blocked loops (``matmul.py``) that read row r of a source at ``source[window[r]:]``,
4 × 4 blocks of the output so that each number loaded feeds four multiply-adds. The images are split among
Numba's threads in contiguous shares of blocks; each thread's scratch stays in its core's cache.

Measured on the 2-core machine, batch 64, milliseconds, four versions of this file: (1) one im2col of the
whole batch and numpy's BLAS for the products, memory-bound on these long, thin matrices; (2) per-image
im2col and these products; (3) stride 1 read from the padded image across its full width, which computes
Wp/OW times the outputs needed (1.14x for LeNet's first layer, 1.4x for its second) but needs no im2col;
(4) now: stride 1 from the spread image (exact outputs, for KW copies of the image instead of KH·KW), the
input gradient added straight into it, gathered columns side by side::

    layer                        forward                     weight grad                 input grad
    Conv2d(1, 6, 5, p=2)         1.05 → 0.34 → 0.23 → 0.19   0.68 → 0.18 → 0.22 → 0.16   1.43 → 0.53 → 0.37 → 0.25
    Conv2d(6, 16, 5)             1.10 → 0.54 → 0.43 → 0.34   0.47 → 0.37 → 0.46 → 0.34   1.26 → 0.68 → 0.61 → 0.37
    Conv2d(6, 16, 5, stride=2)   0.34 → 0.27 → 0.20 → 0.14   0.31 → 0.22 → 0.16 → 0.09   0.35 → 0.35 → 0.25 → 0.19

What the forward keeps for the weight gradient is each image's source: the spread image for stride 1
(KW/1 ≈ 4x the padded input, still 5x smaller than the columns), the columns otherwise.
"""
import functools

import numpy as np
from numba import get_num_threads, prange

from . import kernel, parallel_sum_kernel, sum_kernel
from .matmul import matmul_bias, matmul_nt_add, matmul_scatter_add

#: The products take at least this many output columns (images × columns per image) per call.
MIN_COLUMNS = 256


def _taps(C_in, Hp, Wp, KH, KW):
    """taps[r] = (ci·Hp + kh)·Wp + kw for r = (ci·KH + kh)·KW + kw: where tap r of window 0 sits in the
    flattened padded image."""
    ci, kh, kw = np.ix_(np.arange(C_in), np.arange(KH), np.arange(KW))
    return ((ci * Hp + kh) * Wp + kw).ravel().astype(np.uint64)


def _positions(Wp, stride_h, stride_w, out_h, out_w):
    """positions[q] = oh·S_h·Wp + ow·S_w for q = oh·OW + ow: where window (oh, ow) starts in the padded image."""
    oh, ow = np.ix_(np.arange(out_h), np.arange(out_w))
    return (oh * stride_h * Wp + ow * stride_w).ravel().astype(np.uint64)


def _spread_taps(C_in, Hp, KH, KW, out_w):
    """Where row r = (ci·KH + kh)·KW + kw of an image's columns starts in its spread image (``_spread``):
    ((ci·KW + kw)·Hp + kh)·OW."""
    ci, kh, kw = np.ix_(np.arange(C_in), np.arange(KH), np.arange(KW))
    return (((ci * KW + kw) * Hp + kh) * out_w).ravel().astype(np.uint64)


class Plan:
    """Everything the kernels need to know about one convolution's geometry, computed in Python once per
    geometry (``_plan`` keeps them; the kernels only read its tables).

    Each image's column matrix cols[n] (R, Q), Q = OH·OW, is read from a ``source`` at row offsets
    ``window`` (R,), where row r starts:

    - stride 1: the source is the image *spread* (``_spread``, C_in·KW·Hp·OW numbers), row r a contiguous
      run of it, no column matrix formed;
    - other strides: the source is the gathered columns themselves (``_gather``).

    The images are taken B = ``images_per_block`` at a time (block k: images k·B to k·B + B), so that each
    product has at least ``MIN_COLUMNS`` output columns; a block's source has ``block_size`` numbers. When
    B > 1 for strides > 1 (``wide``), the block's columns form one (R, B·Q) matrix, image j's at columns j·Q
    to j·Q + Q (the unused images' columns zero in a last, partial block): one long product instead of B
    short ones. With Q = 25 (the strided pyramid's second layer), ten products of 25 columns ran at
    43 GFLOP/s, one of 250 at 64 GFLOP/s, and the weight gradient's at 30 → 66 (``matmul.py``'s loops are
    vectorised along the columns, 8 or more at a time). Otherwise the block is B matrices of Q columns.

    ``geometry`` is the tuple of ints the kernels unpack: (C_in, H, W, KH, KW, S_h, S_w, P_h, P_w, OH, OW).
    Offset tables: ``taps`` (R,) and ``positions`` (Q,), see the module docstring.
    """

    def __init__(self, C_in, H, W, KH, KW, stride_h, stride_w, pad_h, pad_w, out_h, out_w):
        Hp, Wp = H + 2 * pad_h, W + 2 * pad_w
        self.gather = (stride_h, stride_w) != (1, 1)
        self.taps = _taps(C_in, Hp, Wp, KH, KW)
        self.positions = _positions(Wp, stride_h, stride_w, out_h, out_w) if self.gather else None
        R = self.taps.size
        self.columns = Q = out_h * out_w
        self.images_per_block = B = max(1, MIN_COLUMNS // Q)
        self.wide = self.gather and B > 1
        self.padded_size = C_in * Hp * Wp
        if self.gather:
            self.window = np.arange(R, dtype=np.uint64) * np.uint64(B * Q if self.wide else Q)
            self.image_size = R * Q
        else:
            self.window = _spread_taps(C_in, Hp, KH, KW, out_w)
            self.image_size = C_in * KW * Hp * out_w
        self.block_size = B * self.image_size
        self.geometry = (C_in, H, W, KH, KW, stride_h, stride_w, pad_h, pad_w, out_h, out_w)
        self.threads = get_num_threads()

    def blocks(self, N):
        """How many blocks N images make."""
        return -(-N // self.images_per_block)

    def scratch(self, *shape, dtype):
        """One buffer per thread and image of a block: (T, B, *shape)."""
        return np.empty((self.threads, self.images_per_block) + shape, dtype=dtype)


# --- one image: spreading, padding, gathering, scattering ----------------------------------------------------
# The loops index flat arrays with unsigned offsets: Numba tests a signed index for being negative (Python's
# wrap-around), and that test keeps LLVM from vectorising a loop (in ``_scatter`` it made the loop 3x slower).

@sum_kernel
def _spread(x, n, spread, geometry):
    """spread[ci, kw, h, ow] = xp[ci, h, ow + kw] for h < Hp, ow < OW: image n, padded, copied KW times,
    each copy shifted left by kw and cut to the output's width. Row r = (ci, kh, kw) of the image's columns
    is then the contiguous run of OH·OW numbers that starts at ((ci·KW + kw)·Hp + kh)·OW: KW times the image
    to copy, not KH·KW times. (The first version used the padded image itself, the runs taken across its
    full width, and computed Wp/OW times the outputs needed: 1.4x for LeNet's second layer.)"""
    C_in, H, W, KH, KW, stride_h, stride_w, pad_h, pad_w, out_h, out_w = geometry
    Hp = H + 2 * pad_h
    plane = x[n].ravel()
    for ci in range(C_in):
        for kw in range(KW):
            lo = min(max(0, pad_w - kw), out_w)                  # lo <= ow < hi: the input under ow is in x
            hi = max(lo, min(out_w, W + pad_w - kw))
            for h in range(Hp):
                ih = h - pad_h
                dst = np.uint64(((ci * KW + kw) * Hp + h) * out_w)
                if 0 <= ih < H:
                    src = np.uint64((ci * H + ih) * W + kw - pad_w)              # + ow: the input under ow
                    for ow in range(np.uint64(lo)):
                        spread[dst + ow] = 0
                    for ow in range(np.uint64(lo), np.uint64(hi)):
                        spread[dst + ow] = plane[src + ow]
                    for ow in range(np.uint64(hi), np.uint64(out_w)):
                        spread[dst + ow] = 0
                else:
                    for ow in range(np.uint64(out_w)):
                        spread[dst + ow] = 0


@sum_kernel
def _fold(spread, n, x, geometry):
    """The adjoint of ``_spread``: x[n, ci, ih, iw] = Σ_kw spread[ci, kw, ih + P_h, iw + P_w − kw], over the kw
    for which that column exists (what lies on the padding is dropped)."""
    C_in, H, W, KH, KW, stride_h, stride_w, pad_h, pad_w, out_h, out_w = geometry
    Hp = H + 2 * pad_h
    plane = x[n].ravel()
    for i in range(plane.size):
        plane[i] = 0
    for ci in range(C_in):
        for kw in range(KW):
            lo = min(max(0, pad_w - kw), out_w)
            hi = max(lo, min(out_w, W + pad_w - kw))
            for ih in range(H):
                src = np.uint64(((ci * KW + kw) * Hp + ih + pad_h) * out_w)
                dst = np.uint64((ci * H + ih) * W + kw - pad_w)
                for ow in range(np.uint64(lo), np.uint64(hi)):
                    plane[dst + ow] += spread[src + ow]


@sum_kernel
def _pad_image(x, n, padded, geometry):
    """padded = image n of x with P zeros around each plane, flattened (C_in·Hp·Wp)."""
    C_in, H, W, KH, KW, stride_h, stride_w, pad_h, pad_w, out_h, out_w = geometry
    Hp, Wp = H + 2 * pad_h, W + 2 * pad_w
    for ci in range(C_in):
        for i in range(Hp):
            ih = i - pad_h
            row_inside = 0 <= ih < H
            start = (ci * Hp + i) * Wp
            for j in range(Wp):
                iw = j - pad_w
                padded[start + j] = x[n, ci, ih, iw] if row_inside and 0 <= iw < W else 0


@sum_kernel
def _crop_image(padded, n, x, geometry):
    """Image n of x = the inside of a padded image (what fell on the padding is dropped)."""
    C_in, H, W, KH, KW, stride_h, stride_w, pad_h, pad_w, out_h, out_w = geometry
    Hp, Wp = H + 2 * pad_h, W + 2 * pad_w
    for ci in range(C_in):
        for i in range(H):
            start = (ci * Hp + i + pad_h) * Wp + pad_w
            for j in range(W):
                x[n, ci, i, j] = padded[start + j]


@sum_kernel
def _gather(padded, taps, positions, cols, offset, row_stride):
    """im2col of one padded image: cols[offset + r·row_stride + q] = padded[taps[r] + positions[q]], no bounds
    tests. One flat loop over q through the offset table ran 2–3x faster than loops over (oh, ow), whose rows
    are short (5 to 14 numbers here), even with the stride a constant."""
    Q = np.uint64(positions.shape[0])
    for r in range(taps.shape[0]):
        start, dst = taps[r], np.uint64(offset + r * row_stride)
        for q in range(Q):
            cols[dst + q] = padded[start + positions[q]]


@sum_kernel
def _scatter(cols, offset, row_stride, taps, positions, target):
    """The adjoint of ``_gather``: target[taps[r] + positions[q]] += cols[offset + r·row_stride + q] (target
    zeroed first)."""
    for i in range(target.shape[0]):
        target[i] = 0
    Q = np.uint64(positions.shape[0])
    for r in range(taps.shape[0]):
        start, src = taps[r], np.uint64(offset + r * row_stride)
        for q in range(Q):
            target[start + positions[q]] += cols[src + q]


@sum_kernel
def _zero(block):
    """block (images, size) = 0, without an array expression (see "whole batches" below)."""
    for n in range(block.shape[0]):
        for i in range(block.shape[1]):
            block[n, i] = 0


@sum_kernel
def _block_source(x, n0, n1, source, padded, taps, positions, geometry):
    """The source of the block of images n0 to n1 (see ``Plan``): their spread images one after another
    (stride 1), or their gathered columns side by side in one (R, B·Q) matrix, B = 1 unless the block is wide."""
    if positions is None:                         # stride 1
        size = _spread_size(geometry)
        for n in range(n0, n1):
            _spread(x, n, source[(n - n0) * size:(n - n0 + 1) * size], geometry)
        return
    R, Q = taps.shape[0], positions.shape[0]
    B = source.shape[0] // (R * Q)
    for n in range(n0, n1):
        _pad_image(x, n, padded, geometry)
        _gather(padded, taps, positions, source, (n - n0) * Q, B * Q)
    _zero_columns(source, R, n1 - n0, Q, B)


@kernel
def _spread_size(geometry):
    """Numbers in one spread image: C_in·KW·Hp·OW."""
    C_in, H, W, KH, KW, stride_h, stride_w, pad_h, pad_w, out_h, out_w = geometry
    return C_in * KW * (H + 2 * pad_h) * out_w


@sum_kernel
def _zero_columns(block, count, used, Q, B):
    """Columns of images ``used`` to B − 1 in each of the ``count`` rows of a (count, B·Q) block matrix = 0."""
    for i in range(count):
        for c in range(i * B * Q + used * Q, (i + 1) * B * Q):
            block[c] = 0


@sum_kernel
def _outputs_to_wide(g, n0, n1, wide, B):
    """wide (C_out, B·Q) = g[n0:n1] (b, C_out, Q) side by side, image j at columns j·Q, the rest zero."""
    b, C_out = n1 - n0, g.shape[1]
    Q = g.shape[2] * g.shape[3]
    flat = g.reshape(g.shape[0], C_out * Q)
    for j in range(b):
        for co in range(C_out):
            dst, src = np.uint64(co * B * Q + j * Q), np.uint64(co * Q)
            for q in range(np.uint64(Q)):
                wide[dst + q] = flat[n0 + j, src + q]
    _zero_columns(wide, C_out, b, Q, B)


@sum_kernel
def _wide_to_outputs(wide, y, n0, n1, B):
    """y[n0:n1] (b, C_out, Q) = the images' columns of wide (C_out, B·Q): the inverse of ``_outputs_to_wide``."""
    C_out, Q = y.shape[1], y.shape[2] * y.shape[3]
    flat = y.reshape(y.shape[0], C_out * Q)
    for j in range(n1 - n0):
        for co in range(C_out):
            dst, src = np.uint64(co * Q), np.uint64(co * B * Q + j * Q)
            for q in range(np.uint64(Q)):
                flat[n0 + j, dst + q] = wide[src + q]


# --- whole batches ----------------------------------------------------------------------------------------------
# The parallel kernels leave allocation, zeros, transposes and sums to their Python callers: inside a
# ``parallel=True`` function each such array expression becomes a parallel loop of its own, which Numba takes
# long to compile (``partial.sum(axis=0)`` alone added 1.6 s to a cold start). Thread t takes the blocks
# t·NB/T to (t+1)·NB/T, so that its scratch and partial sums need no locking.

@parallel_sum_kernel
def _sources(x, sources, padded, taps, positions, geometry, B):
    """sources[k] = the source of block k (B images), for all blocks."""
    T, N, NB = padded.shape[0], x.shape[0], sources.shape[0]
    for t in prange(T):
        for k in range(t * NB // T, (t + 1) * NB // T):
            _block_source(x, k * B, min(k * B + B, N), sources[k], padded[t], taps, positions, geometry)


@parallel_sum_kernel
def _forward(x, filters, bias, y, kept, keep, scratch, wide_out, padded, taps, positions, window, geometry,
             wide, B):
    """y = conv(x) + bias. The block sources go to kept[k] when ``keep``, else to the thread's scratch[t]. The
    products write y directly, or, for ``wide`` blocks, the thread's wide_out (T, C_out·B·Q), copied to y."""
    N, C_out = y.shape[0], y.shape[1]
    Q = y.shape[2] * y.shape[3]
    y3 = y.reshape(N, C_out, Q)
    NB, T = -(-N // B), padded.shape[0]
    for t in prange(T):
        for k in range(t * NB // T, (t + 1) * NB // T):
            n0, n1 = k * B, min(k * B + B, N)
            source = kept[k] if keep else scratch[t]
            _block_source(x, n0, n1, source, padded[t], taps, positions, geometry)
            # One call site per product and compiled branch: each is inlined, for ~1 s of LLVM's time.
            if positions is None or not wide:
                matmul_bias(filters, source.reshape(B, source.size // B)[:n1 - n0], window, bias, y3[n0:n1])
            else:
                matmul_bias(filters, source.reshape(1, source.size), window, bias, wide_out[t].reshape(1, C_out, B * Q))
                _wide_to_outputs(wide_out[t], y, n0, n1, B)


@parallel_sum_kernel
def _backward_weight(grad_out, kept, partial, wide_g, window, wide, B):
    """partial[t] += Σ g[n] @ cols[n]ᵀ over thread t's blocks, from their kept sources (for ``wide`` blocks,
    the output gradients laid side by side in the thread's wide_g (T, C_out·B·Q) first)."""
    N, C_out = grad_out.shape[0], grad_out.shape[1]
    Q = grad_out.shape[2] * grad_out.shape[3]
    NB, T = kept.shape[0], partial.shape[0]
    g3 = grad_out.reshape(N, C_out, Q)
    for t in prange(T):
        for k in range(t * NB // T, (t + 1) * NB // T):
            n0, n1 = k * B, min(k * B + B, N)
            if wide:
                _outputs_to_wide(grad_out, n0, n1, wide_g[t], B)
                g, images = wide_g[t].reshape(1, C_out, B * Q), kept[k].reshape(1, kept.shape[1])
            else:
                g, images = g3[n0:n1], kept[k].reshape(B, kept.shape[1] // B)[:n1 - n0]
            matmul_nt_add(g, images, window, partial[t])


@parallel_sum_kernel
def _backward_input(grad_out, filters_t, no_bias, grad_x, wide_g, grad_cols, target, taps, positions, window,
                    row_window, geometry, wide, B):
    """grad_x[n] = col2im(Wᵀ @ g[n]) for each image: the block's output gradients (side by side in wide_g
    for ``wide`` blocks) multiplied by filters_t = Wᵀ (R, C_out) into the thread's grad_cols (T, B·R·Q), then
    each image's columns added back where the forward read them: into a padded image (then cropped) for
    strides > 1, into a spread image (then folded) for stride 1."""
    N, C_out = grad_out.shape[0], grad_out.shape[1]
    Q = grad_out.shape[2] * grad_out.shape[3]
    T, R = grad_cols.shape[0], filters_t.shape[0]
    NB = -(-N // B)
    g2 = grad_out.reshape(N, C_out * Q)
    for t in prange(T):
        for k in range(t * NB // T, (t + 1) * NB // T):
            n0, n1 = k * B, min(k * B + B, N)
            if positions is None:                     # stride 1: rows added straight into spread gradients
                spread = target[t].reshape(B, target.shape[1] // B)[:n1 - n0]
                _zero(spread)
                matmul_scatter_add(filters_t, g2[n0:n1], row_window, spread, window, Q)
                for n in range(n0, n1):
                    _fold(spread[n - n0], n, grad_x, geometry)
                continue
            if wide:
                _outputs_to_wide(grad_out, n0, n1, wide_g[t], B)
                g, out = wide_g[t].reshape(1, wide_g.shape[1]), grad_cols[t].reshape(1, R, B * Q)
            else:
                g, out = g2[n0:n1], grad_cols[t].reshape(B, R, Q)[:n1 - n0]
            matmul_bias(filters_t, g, row_window, no_bias, out)
            for n in range(n0, n1):
                offset, row_stride = ((n - n0) * Q, B * Q) if wide else ((n - n0) * R * Q, Q)
                _scatter(grad_cols[t], offset, row_stride, taps, positions, target[t])
                _crop_image(target[t], n, grad_x, geometry)


# --- the public kernels --------------------------------------------------------------------------------------

def _plan(x_shape, KH, KW, stride_h, stride_w, pad_h, pad_w, out_h, out_w):
    """The Plan of a convolution, made once per geometry and thread count: building its tables costs ~60 µs,
    three times per training step of each layer, 0.18 ms of LeNet's second layer's 1.26 ms forward+backward."""
    return _cached_plan(tuple(x_shape[1:]), KH, KW, stride_h, stride_w, pad_h, pad_w, out_h, out_w,
                        get_num_threads())


@functools.lru_cache(maxsize=64)
def _cached_plan(image_shape, KH, KW, stride_h, stride_w, pad_h, pad_w, out_h, out_w, threads):
    return Plan(*image_shape, KH, KW, stride_h, stride_w, pad_h, pad_w, out_h, out_w)


def conv2d_forward(x, weight, bias, stride_h, stride_w, pad_h, pad_w, out_h, out_w):
    """y = conv2d(x, weight) + bias.

    Inputs: x (N, C_in, H, W), weight (C_out, C_in, KH, KW), bias (C_out,) (zeros for "no bias"), all
    C-contiguous and of one dtype; stride, padding and output size already checked by
    ``shapes.conv2d_geometry``. Returns: y (N, C_out, OH, OW).
    """
    return _conv2d_forward(x, weight, bias, stride_h, stride_w, pad_h, pad_w, out_h, out_w, keep=False)[0]


def conv2d_forward_keep(x, weight, bias, stride_h, stride_w, pad_h, pad_w, out_h, out_w):
    """``conv2d_forward`` that also returns what the weight gradient needs of x, ``kept`` (blocks, size): each
    block's source (spread images for stride 1, columns otherwise; see ``Plan``). Keeping it costs no time."""
    return _conv2d_forward(x, weight, bias, stride_h, stride_w, pad_h, pad_w, out_h, out_w, keep=True)


def _wide_scratch(plan, rows, dtype):
    """Each thread's (rows, B·Q) matrix for wide blocks; empty when the blocks are not wide."""
    size = rows * plan.images_per_block * plan.columns if plan.wide else 0
    return np.empty((plan.threads, size), dtype=dtype)


def _conv2d_forward(x, weight, bias, stride_h, stride_w, pad_h, pad_w, out_h, out_w, keep):
    N = x.shape[0]
    C_out, _, KH, KW = weight.shape
    plan = _plan(x.shape, KH, KW, stride_h, stride_w, pad_h, pad_w, out_h, out_w)
    y = np.empty((N, C_out, out_h, out_w), dtype=x.dtype)
    kept = np.empty((plan.blocks(N) if keep else 0, plan.block_size), dtype=x.dtype)
    scratch = np.empty((0 if keep else plan.threads, plan.block_size), dtype=x.dtype)
    padded = np.empty((plan.threads, plan.padded_size if plan.gather else 0), dtype=x.dtype)
    _forward(x, weight.reshape(C_out, -1), bias, y, kept, keep, scratch, _wide_scratch(plan, C_out, x.dtype), padded,
             plan.taps, plan.positions, plan.window, plan.geometry, plan.wide, plan.images_per_block)
    return y, kept


def conv2d_backward_weight_kept(grad_out, kept, x_shape, KH, KW, stride_h, stride_w, pad_h, pad_w):
    """dL/dweight = Σ_n g[n] @ cols[n]ᵀ, from the forward's ``kept`` sources.

    Each thread sums its blocks into its own (C_out, R) buffer and the buffers are added at the end, so the
    result does not depend on scheduling (only on the number of threads, through the order of the sums).
    """
    N, C_out, out_h, out_w = grad_out.shape
    plan = _plan(x_shape, KH, KW, stride_h, stride_w, pad_h, pad_w, out_h, out_w)
    if kept.shape != (plan.blocks(N), plan.block_size):
        raise ValueError(f"kept: expected the forward's sources of shape {(plan.blocks(N), plan.block_size)} "
                         f"for this geometry, got {kept.shape}")
    partial = np.zeros((plan.threads, C_out, plan.taps.size), dtype=grad_out.dtype)
    _backward_weight(grad_out, kept, partial, _wide_scratch(plan, C_out, grad_out.dtype), plan.window, plan.wide,
                     plan.images_per_block)
    return partial.sum(axis=0).reshape((C_out, x_shape[1], KH, KW))


def conv2d_backward_weight(grad_out, x, KH, KW, stride_h, stride_w, pad_h, pad_w):
    """dL/dweight when the forward kept nothing: form the sources of x again, then as above.

    Inputs: grad_out (N, C_out, OH, OW), x (N, C_in, H, W), the kernel size, stride, padding.
    Returns: grad_weight (C_out, C_in, KH, KW).
    """
    out_h, out_w = grad_out.shape[2:]
    plan = _plan(x.shape, KH, KW, stride_h, stride_w, pad_h, pad_w, out_h, out_w)
    kept = np.empty((plan.blocks(x.shape[0]), plan.block_size), dtype=x.dtype)
    padded = np.empty((plan.threads, plan.padded_size), dtype=x.dtype)
    _sources(x, kept, padded, plan.taps, plan.positions, plan.geometry, plan.images_per_block)
    return conv2d_backward_weight_kept(grad_out, kept, x.shape, KH, KW, stride_h, stride_w, pad_h, pad_w)


def conv2d_backward_input(grad_out, weight, H, W, stride_h, stride_w, pad_h, pad_w):
    """dL/dx of a convolution: for each image, dcols = Wᵀ @ g[n], then col2im.

    Inputs: grad_out (N, C_out, OH, OW), weight (C_out, C_in, KH, KW), the input's H and W, stride, padding.
    Returns: grad_x (N, C_in, H, W).
    """
    N, C_out, out_h, out_w = grad_out.shape
    _, C_in, KH, KW = weight.shape
    plan = _plan((N, C_in, H, W), KH, KW, stride_h, stride_w, pad_h, pad_w, out_h, out_w)
    filters_t = np.ascontiguousarray(weight.reshape(C_out, -1).T)           # (R, C_out)
    R, B, Q = filters_t.shape[0], plan.images_per_block, plan.columns
    no_bias = np.zeros(R, dtype=grad_out.dtype)
    grad_cols = np.empty((plan.threads, B * R * Q if plan.gather else 0), dtype=grad_out.dtype)
    target = np.empty((plan.threads, plan.padded_size if plan.gather else plan.block_size), dtype=grad_out.dtype)
    row_window = np.arange(C_out, dtype=np.uint64) * np.uint64(B * Q if plan.wide else Q)
    grad_x = np.empty((N, C_in, H, W), dtype=grad_out.dtype)
    _backward_input(grad_out, filters_t, no_bias, grad_x, _wide_scratch(plan, C_out, grad_out.dtype), grad_cols,
                    target, plan.taps, plan.positions, plan.window, row_window, plan.geometry, plan.wide,
                    B)
    return grad_x


def _gathering(C_in, H, W, KH, KW, stride_h, stride_w, pad_h, pad_w, out_h, out_w, dtype):
    """What explicit columns of single images need, for any stride: the offset tables, one padded scratch
    image per thread, and the geometry."""
    Hp, Wp = H + 2 * pad_h, W + 2 * pad_w
    taps, positions = _taps(C_in, Hp, Wp, KH, KW), _positions(Wp, stride_h, stride_w, out_h, out_w)
    padded = np.empty((get_num_threads(), C_in * Hp * Wp), dtype=dtype)
    return taps, positions, padded, (C_in, H, W, KH, KW, stride_h, stride_w, pad_h, pad_w, out_h, out_w)


def im2col(x, KH, KW, stride_h, stride_w, pad_h, pad_w, out_h, out_w):
    """Every image's columns, cols (N, C_in·KH·KW, OH·OW): ``cols[n, (ci·KH + kh)·KW + kw, oh·OW + ow] =
    xp[n, ci, oh·S + kh, ow·S + kw]``. (The convolution kernels above build these only for strides > 1, a
    block of images at a time.)"""
    N, C_in, H, W = x.shape
    taps, positions, padded, geometry = _gathering(C_in, H, W, KH, KW, stride_h, stride_w, pad_h, pad_w,
                                                   out_h, out_w, x.dtype)
    cols = np.empty((N, taps.size * positions.size), dtype=x.dtype)
    _sources(x, cols, padded, taps, positions, geometry, 1)             # blocks of one image
    return cols.reshape(N, taps.size, positions.size)


def col2im(cols, C_in, H, W, KH, KW, stride_h, stride_w, pad_h, pad_w, out_h, out_w):
    """The adjoint of im2col: cols (N, C_in·KH·KW, OH·OW) → x-shaped sums (N, C_in, H, W)."""
    taps, positions, padded, geometry = _gathering(C_in, H, W, KH, KW, stride_h, stride_w, pad_h, pad_w,
                                                   out_h, out_w, cols.dtype)
    x = np.empty((cols.shape[0], C_in, H, W), dtype=cols.dtype)
    _col2im(np.ascontiguousarray(cols).reshape(cols.shape[0], -1), x, padded, taps, positions, geometry)
    return x


@parallel_sum_kernel
def _col2im(cols, x, padded, taps, positions, geometry):
    """x[n] = col2im(cols[n]) for all n, through each thread's padded scratch image."""
    T, N = padded.shape[0], x.shape[0]
    Q = positions.shape[0]
    for t in prange(T):
        for n in range(t * N // T, (t + 1) * N // T):
            _scatter(cols[n], 0, Q, taps, positions, padded[t])
            _crop_image(padded[t], n, x, geometry)
