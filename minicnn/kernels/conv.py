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

Row r of cols[n] need not be copied anywhere: in the flattened padded image, tap r of output (oh, ow) sits at
``taps[r] + positions[q]`` with ``taps[r] = (ci·Hp + kh)·Wp + kw`` and ``positions[q] = oh·S·Wp + ow·S``.

- **Stride 1**: compute the outputs on the padded image's full width (OW → Wp columns per output row, the extra
  ones discarded). Then ``positions[q] = q`` and row r of cols is the contiguous run ``xp_flat[taps[r]:][:OH·Wp]``:
  the product reads the padded image directly (``source``) and no column matrix exists. The cost is Wp/OW times
  the multiply-adds (1.14× for LeNet's first layer, 1.4× for its second); the gain is no im2col pass (which took
  as long as the product) and 25× less memory kept for backward.
- **Other strides**: the runs are not contiguous, so the columns are gathered into an explicit cols[n] first
  (``source`` is then cols[n] and its row r starts at r·Q).

Both cases meet in two register-blocked loops that read row r of the source at ``source[window[r]:]``:
``matmul_bias`` (forward and input gradient) and ``matmul_nt_add`` (weight gradient), 4 × 4 blocks of the
output so that each number loaded feeds four multiply-adds. The images are split among Numba's threads in
contiguous shares; each thread's scratch stays in its core's cache.

Measured on the 2-core machine, batch 64, milliseconds (``benchmarks/bench_ops.py`` times the whole layers),
against the first version of this file (one im2col of the whole batch, numpy's BLAS for the products, which is
memory-bound on these long, thin matrices) and the second (per-image im2col, these products)::

    layer                        forward              weight grad          input grad
    Conv2d(1, 6, 5, p=2)         1.05 → 0.34 → 0.23   0.68 → 0.18 → 0.22   1.43 → 0.53 → 0.37
    Conv2d(6, 16, 5)             1.10 → 0.54 → 0.43   0.47 → 0.37 → 0.46   1.26 → 0.68 → 0.61
    Conv2d(6, 16, 5, stride=2)   0.34 → 0.27 → 0.20   0.31 → 0.22 → 0.16   0.35 → 0.35 → 0.25

The third version's weight gradient of Conv2d(6, 16, 5) is slower in isolation (1.4x the multiply-adds), but
the whole maxpool training step is faster with it (batch 256: 13.9 → 11.5 ms): what it keeps for backward is
the padded input, 25x smaller than the columns, and the step's working set stays in cache.
"""
import numpy as np
from numba import get_num_threads, prange

from . import kernel, parallel_sum_kernel, sum_kernel
from .matmul import matmul_bias, matmul_nt_add

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


class Plan:
    """Everything the kernels need to know about one convolution's geometry, computed once per call in Python.

    The images are taken B = ``images_per_block`` at a time (block k: images k·B to k·B + B), so that each
    product has at least ``MIN_COLUMNS`` output columns. A block's ``source`` (``block_size`` numbers) is

    - stride 1: its B padded images one after the other, L = C_in·Hp·Wp + KW numbers each; the product
      runs over the B images with Q = OH·Wp columns each;
    - other strides: one (R, B·Q) column matrix, Q = OH·OW, image j's columns at j·Q to j·Q + Q of every
      row (unused images' columns zero in the last block). One long product instead of B short ones: with
      Q = 25 (the strided pyramid's second layer), B = 10 products of 25 columns ran at 43 GFLOP/s, one of
      250 columns at 64 GFLOP/s, and the weight gradient's at 30 → 66 (``matmul.py``'s loops are vectorised
      along the columns, 8 or more at a time).

    ``geometry`` is the tuple of ints the kernels unpack: (C_in, H, W, KH, KW, S_h, S_w, P_h, P_w, OH, OW, Wq)
    with Wq the width of an output row in the products (Wp for stride 1, OW otherwise). Offset tables (see the
    module docstring): ``taps`` (R,), ``positions`` (Q,), and ``window`` (R,), where row r starts in a source.
    """

    def __init__(self, C_in, H, W, KH, KW, stride_h, stride_w, pad_h, pad_w, out_h, out_w):
        Hp, Wp = H + 2 * pad_h, W + 2 * pad_w
        self.gather = (stride_h, stride_w) != (1, 1)
        self.taps = _taps(C_in, Hp, Wp, KH, KW)
        R = self.taps.size
        row_width = out_w if self.gather else Wp
        self.columns = Q = out_h * row_width
        self.images_per_block = B = max(1, MIN_COLUMNS // Q)
        self.padded_size = C_in * Hp * Wp + KW                          # the last row's extra columns read past
        if self.gather:
            self.positions = _positions(Wp, stride_h, stride_w, out_h, out_w)
            self.window = np.arange(R, dtype=np.uint64) * np.uint64(B * Q)
            self.block_size = R * B * Q
        else:
            self.positions = np.arange(Q, dtype=np.uint64)
            self.window = self.taps
            self.block_size = B * self.padded_size
        self.geometry = (C_in, H, W, KH, KW, stride_h, stride_w, pad_h, pad_w, out_h, out_w, row_width)
        self.threads = get_num_threads()

    def blocks(self, N):
        """How many blocks N images make."""
        return -(-N // self.images_per_block)

    def scratch(self, *shape, dtype):
        """One buffer per thread and image of a block: (T, B, *shape)."""
        return np.empty((self.threads, self.images_per_block) + shape, dtype=dtype)


# --- one image: padding, gathering, scattering ---------------------------------------------------------------
# A block's matrices (sources, output rows, column gradients) are flat: ``_place`` says where image j's part
# of row i starts, for a block of B images with Q columns each and ``count`` rows per image.

@kernel
def _place(j, count, Q, B, gather):
    """(offset, row_stride): image j's row i starts at offset + i·row_stride. Stride 1: the images' matrices
    one after another; other strides: one matrix of B·Q columns, image j's at column j·Q."""
    if gather:
        return j * Q, B * Q
    return j * count * Q, Q


@sum_kernel
def _pad_image(x, n, padded, geometry):
    """padded[:C_in·Hp·Wp] = image n of x with P zeros around each plane, flattened; the rest of padded = 0."""
    C_in, H, W, KH, KW, stride_h, stride_w, pad_h, pad_w, out_h, out_w, row_width = geometry
    Hp, Wp = H + 2 * pad_h, W + 2 * pad_w
    for i in range(C_in * Hp * Wp, padded.shape[0]):
        padded[i] = 0
    for ci in range(C_in):
        for i in range(Hp):
            ih = i - pad_h
            row_inside = 0 <= ih < H
            start = (ci * Hp + i) * Wp
            for j in range(Wp):
                iw = j - pad_w
                padded[start + j] = x[n, ci, ih, iw] if row_inside and 0 <= iw < W else 0


@sum_kernel
def _gather(padded, taps, positions, cols, offset, row_stride):
    """im2col of one padded image: cols[offset + r·row_stride + q] = padded[taps[r] + positions[q]], no bounds
    tests. One flat loop over q through the offset table ran 2–3x faster than loops over (oh, ow), whose rows
    are short (5 to 14 numbers here), even with the stride a constant. The tables are unsigned, so that Numba
    does not test each index for being negative (which, in ``_scatter``, made the loop 3x slower)."""
    Q = np.uint64(positions.shape[0])
    for r in range(taps.shape[0]):
        start, dst = taps[r], np.uint64(offset + r * row_stride)
        for q in range(Q):
            cols[dst + q] = padded[start + positions[q]]


@sum_kernel
def _scatter(cols, offset, row_stride, taps, positions, padded, contiguous):
    """The adjoint of ``_gather``: padded[taps[r] + positions[q]] += cols[offset + r·row_stride + q] (padded
    zeroed first). ``contiguous``: positions[q] = q (stride 1), where each row is added as one run."""
    for i in range(padded.shape[0]):
        padded[i] = 0
    Q = np.uint64(positions.shape[0])
    for r in range(taps.shape[0]):
        start, src = taps[r], np.uint64(offset + r * row_stride)
        if contiguous:
            for q in range(Q):
                padded[start + q] += cols[src + q]
        else:
            for q in range(Q):
                padded[start + positions[q]] += cols[src + q]


@sum_kernel
def _crop_image(padded, n, x, geometry):
    """Image n of x = the inside of a padded image (what fell on the padding is dropped)."""
    C_in, H, W, KH, KW, stride_h, stride_w, pad_h, pad_w, out_h, out_w, row_width = geometry
    Hp, Wp = H + 2 * pad_h, W + 2 * pad_w
    for ci in range(C_in):
        for i in range(H):
            start = (ci * Hp + i + pad_h) * Wp + pad_w
            for j in range(W):
                x[n, ci, i, j] = padded[start + j]


@sum_kernel
def _block_source(x, n0, n1, source, padded, taps, positions, geometry, gather, B):
    """The source of the block of images n0 to n1 (at most B): see ``Plan``."""
    C_in, H, W, KH, KW, stride_h, stride_w, pad_h, pad_w, out_h, out_w, row_width = geometry
    Q, L = out_h * row_width, padded.shape[0]
    for n in range(n0, n1):
        if gather:
            _pad_image(x, n, padded, geometry)
            offset, row_stride = _place(n - n0, taps.shape[0], Q, B, True)
            _gather(padded, taps, positions, source, offset, row_stride)
        else:
            _pad_image(x, n, source[(n - n0) * L:(n - n0 + 1) * L], geometry)
    if gather:
        _zero_columns(source, taps.shape[0], n1 - n0, Q, B)


@sum_kernel
def _zero_columns(block, count, used, Q, B):
    """Columns of images used to B - 1 in each of the ``count`` rows of a (count, B·Q) block matrix = 0."""
    for i in range(count):
        for c in range(i * B * Q + used * Q, (i + 1) * B * Q):
            block[c] = 0


@kernel
def _runs(geometry):
    """How an output plane (OH, OW) lies on a block matrix's rows of width Wq: (runs, run, end), ``runs``
    runs of ``run`` numbers, each padded with zeros up to ``end``. One run of OH·OW when Wq = OW (strides
    > 1); else one per output row, of OW numbers padded to Wq (stride 1)."""
    out_h, out_w, row_width = geometry[9], geometry[10], geometry[11]
    if row_width == out_w:
        return 1, np.uint64(out_h * out_w), np.uint64(out_h * out_w)
    return out_h, np.uint64(out_w), np.uint64(row_width)


@sum_kernel
def _outputs_to_rows(g, n, rows, offset, row_stride, geometry):
    """g[n] (C_out, OH, OW) laid out on rows of width Wq in a flat block matrix: rows[offset + co·row_stride +
    oh·Wq + ow] = g[n, co, oh, ow], zero in the extra columns. Unsigned offsets: see ``_gather``."""
    runs, run, end = _runs(geometry)
    plane = g[n].ravel()
    for co in range(g.shape[1]):
        for i in range(runs):
            dst = np.uint64(offset + co * row_stride + i * geometry[11])
            src = np.uint64(co * plane.size // g.shape[1]) + np.uint64(i) * run
            for j in range(run):
                rows[dst + j] = plane[src + j]
            for j in range(run, end):
                rows[dst + j] = 0


@sum_kernel
def _rows_to_outputs(rows, offset, row_stride, y, n, geometry):
    """The inverse of ``_outputs_to_rows``: y[n, co, oh, ow] = rows[offset + co·row_stride + oh·Wq + ow]."""
    runs, run, end = _runs(geometry)
    plane = y[n].ravel()
    for co in range(y.shape[1]):
        for i in range(runs):
            src = np.uint64(offset + co * row_stride + i * geometry[11])
            dst = np.uint64(co * plane.size // y.shape[1]) + np.uint64(i) * run
            for j in range(run):
                plane[dst + j] = rows[src + j]


@sum_kernel
def _block_rows(g, n0, n1, rows, geometry, gather, B):
    """rows (flat) = the output gradients g[n0:n1] laid out as the block's (C_out, ...) matrix: see ``Plan``."""
    C_out = g.shape[1]
    Q = geometry[9] * geometry[11]
    for n in range(n0, n1):
        offset, row_stride = _place(n - n0, C_out, Q, B, gather)
        _outputs_to_rows(g, n, rows, offset, row_stride, geometry)
    if gather:
        _zero_columns(rows, C_out, n1 - n0, Q, B)


# --- whole batches ----------------------------------------------------------------------------------------------
# The parallel kernels leave allocation, zeros, transposes and sums to their Python callers: inside a
# ``parallel=True`` function each such array expression becomes a parallel loop of its own, which Numba takes
# long to compile (``partial.sum(axis=0)`` alone added 1.6 s to a cold start). Thread t takes the blocks
# t·NB/T to (t+1)·NB/T, so that its scratch and partial sums need no locking. In the products, a block is
# ``b`` matrices of Q columns (stride 1) or one of B·Q columns (other strides).

@parallel_sum_kernel
def _sources(x, sources, padded, taps, positions, geometry, gather, B):
    """sources[k] = the source of block k, for all blocks."""
    T, N, NB = padded.shape[0], x.shape[0], sources.shape[0]
    for t in prange(T):
        for k in range(t * NB // T, (t + 1) * NB // T):
            _block_source(x, k * B, min(k * B + B, N), sources[k], padded[t], taps, positions, geometry, gather, B)


@parallel_sum_kernel
def _forward(x, filters, bias, y, kept, keep, scratch, rows, padded, taps, positions, window, geometry, gather):
    """y = conv(x) + bias. The block sources go to kept[k] when ``keep``, else to the thread's scratch[t];
    the products write the thread's rows (T, B, C_out, Q), which are copied into y (without the extra
    columns of stride 1)."""
    N, C_out = y.shape[0], y.shape[1]
    T, B, Q = rows.shape[0], rows.shape[1], rows.shape[3]
    NB = -(-N // B)
    for t in prange(T):
        for k in range(t * NB // T, (t + 1) * NB // T):
            n0, n1 = k * B, min(k * B + B, N)
            source = kept[k] if keep else scratch[t]
            _block_source(x, n0, n1, source, padded[t], taps, positions, geometry, gather, B)
            if gather and B == 1:                     # the block is one image: its outputs go to y directly
                matmul_bias(filters, source.reshape(1, source.size), window, bias, y[n0:n1].reshape(1, C_out, Q))
                continue
            if gather:
                matmul_bias(filters, source.reshape(1, source.size), window, bias, rows[t].reshape(1, C_out, B * Q))
            else:
                matmul_bias(filters, source.reshape(B, padded.shape[1])[:n1 - n0], window, bias, rows[t, :n1 - n0])
            out = rows[t].ravel()
            for n in range(n0, n1):
                offset, row_stride = _place(n - n0, C_out, Q, B, gather)
                _rows_to_outputs(out, offset, row_stride, y, n, geometry)


@parallel_sum_kernel
def _backward_weight(grad_out, kept, partial, rows, window, geometry, gather):
    """partial[t] += Σ g[n] @ cols[n]ᵀ over thread t's blocks, from their kept sources, the output gradients
    laid out as the sources' columns first."""
    N, C_out = grad_out.shape[0], grad_out.shape[1]
    T, B, Q = rows.shape[0], rows.shape[1], rows.shape[3]
    NB = kept.shape[0]
    for t in prange(T):
        for k in range(t * NB // T, (t + 1) * NB // T):
            n0, n1 = k * B, min(k * B + B, N)
            if gather and B == 1:                     # the block is one image: its gradient is the matrix
                matmul_nt_add(grad_out[n0:n1].reshape(1, C_out, Q), kept[k].reshape(1, kept.shape[1]), window,
                              partial[t])
                continue
            _block_rows(grad_out, n0, n1, rows[t].ravel(), geometry, gather, B)
            if gather:
                matmul_nt_add(rows[t].reshape(1, C_out, B * Q), kept[k].reshape(1, kept.shape[1]), window, partial[t])
            else:
                matmul_nt_add(rows[t, :n1 - n0], kept[k].reshape(B, kept.shape[1] // B)[:n1 - n0], window, partial[t])


@parallel_sum_kernel
def _backward_input(grad_out, filters_t, no_bias, grad_x, rows, grad_cols, padded, taps, positions, row_window,
                    geometry, gather):
    """grad_x[n] = col2im(Wᵀ @ g[n]) for each image: the block's output gradients (laid out as in the
    forward's rows) multiplied by filters_t = Wᵀ (R, C_out) into grad_cols (T, B, R, Q), then each image's
    columns scattered into the thread's padded image and cropped."""
    N, C_out = grad_out.shape[0], grad_out.shape[1]
    T, B, R, Q = grad_cols.shape
    NB = -(-N // B)
    for t in prange(T):
        for k in range(t * NB // T, (t + 1) * NB // T):
            n0, n1 = k * B, min(k * B + B, N)
            if gather and B == 1:                     # the block is one image: its gradient is the matrix
                g = grad_out[n0:n1].ravel()
            else:
                g = rows[t].ravel()
                _block_rows(grad_out, n0, n1, g, geometry, gather, B)
            if gather:
                matmul_bias(filters_t, g.reshape(1, g.size), row_window, no_bias, grad_cols[t].reshape(1, R, B * Q))
            else:
                matmul_bias(filters_t, g.reshape(B, C_out * Q)[:n1 - n0], row_window, no_bias,
                            grad_cols[t, :n1 - n0])
            cols = grad_cols[t].ravel()
            for n in range(n0, n1):
                offset, row_stride = _place(n - n0, R, Q, B, gather)
                _scatter(cols, offset, row_stride, taps, positions, padded[t], not gather)
                _crop_image(padded[t], n, grad_x, geometry)


# --- the public kernels --------------------------------------------------------------------------------------

def _plan(x_shape, KH, KW, stride_h, stride_w, pad_h, pad_w, out_h, out_w):
    return Plan(*x_shape[1:], KH, KW, stride_h, stride_w, pad_h, pad_w, out_h, out_w)


def conv2d_forward(x, weight, bias, stride_h, stride_w, pad_h, pad_w, out_h, out_w):
    """y = conv2d(x, weight) + bias.

    Inputs: x (N, C_in, H, W), weight (C_out, C_in, KH, KW), bias (C_out,) (zeros for "no bias"), all
    C-contiguous and of one dtype; stride, padding and output size already checked by
    ``shapes.conv2d_geometry``. Returns: y (N, C_out, OH, OW).
    """
    return _conv2d_forward(x, weight, bias, stride_h, stride_w, pad_h, pad_w, out_h, out_w, keep=False)[0]


def conv2d_forward_keep(x, weight, bias, stride_h, stride_w, pad_h, pad_w, out_h, out_w):
    """``conv2d_forward`` that also returns what the weight gradient needs of x, ``kept`` (blocks, size): each
    block's source (padded images for stride 1, columns otherwise; see ``Plan``). Keeping it costs no time."""
    return _conv2d_forward(x, weight, bias, stride_h, stride_w, pad_h, pad_w, out_h, out_w, keep=True)


def _conv2d_forward(x, weight, bias, stride_h, stride_w, pad_h, pad_w, out_h, out_w, keep):
    N = x.shape[0]
    C_out, _, KH, KW = weight.shape
    plan = _plan(x.shape, KH, KW, stride_h, stride_w, pad_h, pad_w, out_h, out_w)
    y = np.empty((N, C_out, out_h, out_w), dtype=x.dtype)
    kept = np.empty((plan.blocks(N) if keep else 0, plan.block_size), dtype=x.dtype)
    scratch = np.empty((0 if keep else plan.threads, plan.block_size), dtype=x.dtype)
    rows = plan.scratch(C_out, plan.columns, dtype=x.dtype)
    padded = np.empty((plan.threads, plan.padded_size), dtype=x.dtype)
    _forward(x, weight.reshape(C_out, -1), bias, y, kept, keep, scratch, rows, padded, plan.taps, plan.positions,
             plan.window, plan.geometry, plan.gather)
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
    rows = plan.scratch(C_out, plan.columns, dtype=grad_out.dtype)
    _backward_weight(grad_out, kept, partial, rows, plan.window, plan.geometry, plan.gather)
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
    _sources(x, kept, padded, plan.taps, plan.positions, plan.geometry, plan.gather,
             plan.images_per_block)
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
    no_bias = np.zeros(filters_t.shape[0], dtype=grad_out.dtype)
    rows = plan.scratch(C_out, plan.columns, dtype=grad_out.dtype)
    grad_cols = plan.scratch(filters_t.shape[0], plan.columns, dtype=grad_out.dtype)
    padded = np.empty((plan.threads, plan.padded_size), dtype=grad_out.dtype)
    row_stride = plan.columns * (plan.images_per_block if plan.gather else 1)
    row_window = np.arange(C_out, dtype=np.uint64) * np.uint64(row_stride)
    grad_x = np.empty((N, C_in, H, W), dtype=grad_out.dtype)
    _backward_input(grad_out, filters_t, no_bias, grad_x, rows, grad_cols, padded, plan.taps, plan.positions,
                    row_window, plan.geometry, plan.gather)
    return grad_x


def _gathering(C_in, H, W, KH, KW, stride_h, stride_w, pad_h, pad_w, out_h, out_w, dtype):
    """What explicit columns of single images need, for any stride: the offset tables, one padded scratch image
    per thread, and the geometry with output rows of width OW."""
    Hp, Wp = H + 2 * pad_h, W + 2 * pad_w
    taps, positions = _taps(C_in, Hp, Wp, KH, KW), _positions(Wp, stride_h, stride_w, out_h, out_w)
    padded = np.empty((get_num_threads(), C_in * Hp * Wp + KW), dtype=dtype)
    return taps, positions, padded, (C_in, H, W, KH, KW, stride_h, stride_w, pad_h, pad_w, out_h, out_w, out_w)


def im2col(x, KH, KW, stride_h, stride_w, pad_h, pad_w, out_h, out_w):
    """Every image's columns, cols (N, C_in·KH·KW, OH·OW): ``cols[n, (ci·KH + kh)·KW + kw, oh·OW + ow] =
    xp[n, ci, oh·S + kh, ow·S + kw]``. (The convolution kernels above build these only for strides > 1, a
    block of images at a time.)"""
    N, C_in, H, W = x.shape
    taps, positions, padded, geometry = _gathering(C_in, H, W, KH, KW, stride_h, stride_w, pad_h, pad_w,
                                                   out_h, out_w, x.dtype)
    cols = np.empty((N, taps.size * out_h * out_w), dtype=x.dtype)
    _sources(x, cols, padded, taps, positions, geometry, True, 1)                  # blocks of one image
    return cols.reshape(N, taps.size, out_h * out_w)


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
            _scatter(cols[n], 0, Q, taps, positions, padded[t], False)
            _crop_image(padded[t], n, x, geometry)
