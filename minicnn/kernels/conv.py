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

from . import parallel_sum_kernel, sum_kernel
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

    ``geometry`` is the tuple of ints the kernels unpack: (C_in, H, W, KH, KW, S_h, S_w, P_h, P_w, OH, OW, Wq)
    with Wq the width of an output row in the products (Wp for stride 1, OW otherwise). Arrays: ``taps`` (R,),
    ``positions`` (Q,) (offsets in the flattened padded image, see the module docstring) and ``window`` (R,),
    where row r of a source starts. ``gather``: whether sources are gathered columns (stride > 1) or padded
    images (stride 1). ``source_size``: the length of one image's source.
    """

    def __init__(self, C_in, H, W, KH, KW, stride_h, stride_w, pad_h, pad_w, out_h, out_w):
        Hp, Wp = H + 2 * pad_h, W + 2 * pad_w
        self.gather = (stride_h, stride_w) != (1, 1)
        self.taps = _taps(C_in, Hp, Wp, KH, KW)
        R = self.taps.size
        if not self.gather:
            row_width = Wp
            self.columns = out_h * Wp                                    # Q: output rows on the full width
            self.positions = np.arange(self.columns, dtype=np.uint64)
            self.window = self.taps
            self.source_size = C_in * Hp * Wp + KW                       # the last row's extra columns read past
        else:
            row_width = out_w
            self.columns = out_h * out_w
            self.positions = _positions(Wp, stride_h, stride_w, out_h, out_w)
            self.window = np.arange(R, dtype=np.uint64) * np.uint64(self.columns)
            self.source_size = R * self.columns
        self.padded_size = C_in * Hp * Wp + KW
        self.geometry = (C_in, H, W, KH, KW, stride_h, stride_w, pad_h, pad_w, out_h, out_w, row_width)
        self.threads = get_num_threads()
        self.images_per_call = max(1, MIN_COLUMNS // self.columns)

    def scratch(self, *shape, dtype):
        """One buffer per thread and image of a call: (T, B, *shape)."""
        return np.empty((self.threads, self.images_per_call) + shape, dtype=dtype)


# --- one image: padding, gathering, scattering ---------------------------------------------------------------

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
def _gather(padded, taps, positions, cols):
    """cols[r·Q + q] = padded[taps[r] + positions[q]]: im2col from a padded image, no bounds tests. The offset
    tables are unsigned, so that Numba does not test each index for being negative (which, in ``_scatter``,
    made the loop 3x slower)."""
    Q = positions.shape[0]
    for r in range(taps.shape[0]):
        start = taps[r]
        for q in range(Q):
            cols[r * Q + q] = padded[start + positions[q]]


@sum_kernel
def _scatter(cols, taps, positions, padded, contiguous):
    """The adjoint of ``_gather``: padded[taps[r] + positions[q]] += cols[r, q] (padded zeroed first).
    ``contiguous``: positions[q] = q (stride 1), where each row is added as one run."""
    for i in range(padded.shape[0]):
        padded[i] = 0
    Q = positions.shape[0]
    for r in range(taps.shape[0]):
        start = taps[r]
        if contiguous:
            run = padded[start:start + Q]
            for q in range(Q):
                run[q] += cols[r, q]
        else:
            for q in range(Q):
                padded[start + positions[q]] += cols[r, q]


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
def _source(x, n, source, padded, taps, positions, geometry, gather):
    """The source of image n: its gathered columns when ``gather`` (strides > 1), else its padded image."""
    if gather:
        _pad_image(x, n, padded, geometry)
        _gather(padded, taps, positions, source)
    else:
        _pad_image(x, n, source, geometry)


@sum_kernel
def _outputs_to_rows(g, n, rows, geometry):
    """rows (C_out, OH·Wq) = g[n] (C_out, OH, OW) laid out on rows of width Wq, zero in the extra columns."""
    C_in, H, W, KH, KW, stride_h, stride_w, pad_h, pad_w, out_h, out_w, row_width = geometry
    for co in range(g.shape[1]):
        for oh in range(out_h):
            for ow in range(out_w):
                rows[co, oh * row_width + ow] = g[n, co, oh, ow]
            for ow in range(out_w, row_width):
                rows[co, oh * row_width + ow] = 0


@sum_kernel
def _rows_to_outputs(rows, y, n, geometry):
    """y[n] (C_out, OH, OW) = the first OW columns of each output row of rows (C_out, OH·Wq)."""
    C_in, H, W, KH, KW, stride_h, stride_w, pad_h, pad_w, out_h, out_w, row_width = geometry
    for co in range(y.shape[1]):
        for oh in range(out_h):
            for ow in range(out_w):
                y[n, co, oh, ow] = rows[co, oh * row_width + ow]


# --- whole batches ----------------------------------------------------------------------------------------------
# The parallel kernels leave allocation, zeros, transposes and sums to their Python callers: inside a
# ``parallel=True`` function each such array expression becomes a parallel loop of its own, which Numba takes
# long to compile (``partial.sum(axis=0)`` alone added 1.6 s to a cold start). Thread t takes the images
# t·N/T to (t+1)·N/T, B at a time, so that its scratch and partial sums need no locking.

@parallel_sum_kernel
def _sources(x, sources, padded, taps, positions, geometry, gather):
    """sources[n] = the source of image n, for all n."""
    T, N = padded.shape[0], x.shape[0]
    for t in prange(T):
        for n in range(t * N // T, (t + 1) * N // T):
            _source(x, n, sources[n], padded[t], taps, positions, geometry, gather)


@parallel_sum_kernel
def _forward(x, filters, bias, y, kept, keep, scratch, rows, padded, taps, positions, window, geometry, gather):
    """y = conv(x) + bias. The sources go to kept[n] (N, L) when ``keep``, else to the thread's scratch
    (T, B, L). Stride 1 computes full-width rows into the thread's rows (T, B, C_out, OH·Wp) and keeps their
    first OW columns; other strides write y directly."""
    N, C_out, out_h, out_w = y.shape
    T, B = rows.shape[0], rows.shape[1]
    y3 = y.reshape(N, C_out, out_h * out_w)
    for t in prange(T):
        end = (t + 1) * N // T
        for n0 in range(t * N // T, end, B):
            n1 = min(n0 + B, end)
            sources = kept[n0:n1] if keep else scratch[t, :n1 - n0]
            for n in range(n0, n1):
                _source(x, n, sources[n - n0], padded[t], taps, positions, geometry, gather)
            out = y3[n0:n1] if gather else rows[t, :n1 - n0]
            matmul_bias(filters, sources, window, bias, out)
            if not gather:
                for n in range(n0, n1):
                    _rows_to_outputs(rows[t, n - n0], y, n, geometry)


@parallel_sum_kernel
def _backward_weight(grad_out, kept, partial, rows, window, geometry, gather):
    """partial[t] += Σ g[n] @ cols[n]ᵀ over thread t's images, from their kept sources (g[n] laid out on
    full-width rows first for stride 1)."""
    N, C_out, out_h, out_w = grad_out.shape
    T, B = rows.shape[0], rows.shape[1]
    g3 = grad_out.reshape(N, C_out, out_h * out_w)
    for t in prange(T):
        end = (t + 1) * N // T
        for n0 in range(t * N // T, end, B):
            n1 = min(n0 + B, end)
            if not gather:
                for n in range(n0, n1):
                    _outputs_to_rows(grad_out, n, rows[t, n - n0], geometry)
            g = g3[n0:n1] if gather else rows[t, :n1 - n0]
            matmul_nt_add(g, kept[n0:n1], window, partial[t])


@parallel_sum_kernel
def _backward_input(grad_out, filters_t, no_bias, grad_x, rows, grad_cols, padded, taps, positions, row_window,
                    geometry, gather):
    """grad_x[n] = col2im(Wᵀ @ g[n]) for each image: g[n] (laid out on full-width rows for stride 1) multiplied
    by filters_t = Wᵀ (R, C_out) into grad_cols (T, B, R, Q), scattered into the thread's padded image."""
    N, C_out, out_h, out_w = grad_out.shape
    T, B, Q = rows.shape[0], rows.shape[1], rows.shape[3]
    g2 = grad_out.reshape(N, C_out * out_h * out_w)
    for t in prange(T):
        end = (t + 1) * N // T
        for n0 in range(t * N // T, end, B):
            n1 = min(n0 + B, end)
            if not gather:
                for n in range(n0, n1):
                    _outputs_to_rows(grad_out, n, rows[t, n - n0], geometry)
            g = g2[n0:n1] if gather else rows[t, :n1 - n0].reshape(n1 - n0, C_out * Q)   # each image one source
            matmul_bias(filters_t, g, row_window, no_bias, grad_cols[t, :n1 - n0])
            for n in range(n0, n1):
                _scatter(grad_cols[t, n - n0], taps, positions, padded[t], not gather)
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
    """``conv2d_forward`` that also returns what the weight gradient needs of x, ``kept`` (N, L): each image's
    source (its padded image for stride 1, its columns otherwise). Keeping it costs no time here."""
    return _conv2d_forward(x, weight, bias, stride_h, stride_w, pad_h, pad_w, out_h, out_w, keep=True)


def _conv2d_forward(x, weight, bias, stride_h, stride_w, pad_h, pad_w, out_h, out_w, keep):
    N = x.shape[0]
    C_out, _, KH, KW = weight.shape
    plan = _plan(x.shape, KH, KW, stride_h, stride_w, pad_h, pad_w, out_h, out_w)
    y = np.empty((N, C_out, out_h, out_w), dtype=x.dtype)
    kept = np.empty((N if keep else 0, plan.source_size), dtype=x.dtype)
    scratch = plan.scratch(plan.source_size, dtype=x.dtype) if not keep else np.empty((0, 0, 0), x.dtype)
    rows = plan.scratch(C_out, plan.columns, dtype=x.dtype)
    padded = np.empty((plan.threads, plan.padded_size), dtype=x.dtype)
    _forward(x, weight.reshape(C_out, -1), bias, y, kept, keep, scratch, rows, padded, plan.taps, plan.positions,
             plan.window, plan.geometry, plan.gather)
    return y, kept


def conv2d_backward_weight_kept(grad_out, kept, x_shape, KH, KW, stride_h, stride_w, pad_h, pad_w):
    """dL/dweight = Σ_n g[n] @ cols[n]ᵀ, from the forward's ``kept`` sources.

    Each thread sums its images into its own (C_out, R) buffer and the buffers are added at the end, so the
    result does not depend on scheduling (only on the number of threads, through the order of the sums).
    """
    N, C_out, out_h, out_w = grad_out.shape
    plan = _plan(x_shape, KH, KW, stride_h, stride_w, pad_h, pad_w, out_h, out_w)
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
    kept = np.empty((x.shape[0], plan.source_size), dtype=x.dtype)
    padded = np.empty((plan.threads, plan.padded_size), dtype=x.dtype)
    _sources(x, kept, padded, plan.taps, plan.positions, plan.geometry, plan.gather)
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
    row_window = np.arange(C_out, dtype=np.uint64) * np.uint64(plan.columns)
    grad_x = np.empty((N, C_in, H, W), dtype=grad_out.dtype)
    _backward_input(grad_out, filters_t, no_bias, grad_x, rows, grad_cols, padded, plan.taps, plan.positions,
                    row_window, plan.geometry, plan.gather)
    return grad_x


def _gathering(C_in, H, W, KH, KW, stride_h, stride_w, pad_h, pad_w, out_h, out_w, dtype):
    """What explicit columns need, for any stride: the offset tables, one padded scratch image per thread, and
    the geometry with output rows of width OW."""
    Hp, Wp = H + 2 * pad_h, W + 2 * pad_w
    taps, positions = _taps(C_in, Hp, Wp, KH, KW), _positions(Wp, stride_h, stride_w, out_h, out_w)
    padded = np.empty((get_num_threads(), C_in * Hp * Wp), dtype=dtype)
    return taps, positions, padded, (C_in, H, W, KH, KW, stride_h, stride_w, pad_h, pad_w, out_h, out_w, out_w)


def im2col(x, KH, KW, stride_h, stride_w, pad_h, pad_w, out_h, out_w):
    """Every image's columns, cols (N, C_in·KH·KW, OH·OW): ``cols[n, (ci·KH + kh)·KW + kw, oh·OW + ow] =
    xp[n, ci, oh·S + kh, ow·S + kw]``. (The convolution kernels above build these only for strides > 1.)"""
    N, C_in, H, W = x.shape
    taps, positions, padded, geometry = _gathering(C_in, H, W, KH, KW, stride_h, stride_w, pad_h, pad_w,
                                                   out_h, out_w, x.dtype)
    cols = np.empty((N, taps.size * positions.size), dtype=x.dtype)
    _sources(x, cols, padded, taps, positions, geometry, True)
    return cols.reshape(N, taps.size, positions.size)


def col2im(cols, C_in, H, W, KH, KW, stride_h, stride_w, pad_h, pad_w, out_h, out_w):
    """The adjoint of im2col: cols (N, C_in·KH·KW, OH·OW) → x-shaped sums (N, C_in, H, W)."""
    taps, positions, padded, geometry = _gathering(C_in, H, W, KH, KW, stride_h, stride_w, pad_h, pad_w,
                                                   out_h, out_w, cols.dtype)
    x = np.empty((cols.shape[0], C_in, H, W), dtype=cols.dtype)
    _col2im(np.ascontiguousarray(cols), x, padded, taps, positions, geometry)
    return x


@parallel_sum_kernel
def _col2im(cols, x, padded, taps, positions, geometry):
    """x[n] = col2im(cols[n]) for all n, through each thread's padded scratch image."""
    T, N = padded.shape[0], x.shape[0]
    for t in prange(T):
        for n in range(t * N // T, (t + 1) * N // T):
            _scatter(cols[n], taps, positions, padded[t], False)
            _crop_image(padded[t], n, x, geometry)
