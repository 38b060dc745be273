"""2-D convolution (cross-correlation, as in every deep-learning library): a block of images at a time, in Numba.

Twins: ``minicnn/plain/conv.py`` (the same numbers, the textbook way), ``contract.py`` (the engine contract's
``conv2d_forward``/``conv2d_backward``, which call these). Notation as in the package docstring::

    x       (N, C_in, H, W)          weight  (C_out, C_in, KH, KW)     bias (C_out,)
    y       (N, C_out, OH, OW)       OH = floor((H + 2P − KH) / S) + 1   (minicnn/shapes.py)

    y[n, co, oh, ow] = bias[co] + sum_{ci, kh, kw} weight[co, ci, kh, kw] * xp[n, ci, oh*S + kh, ow*S + kw]

where ``xp`` is ``x`` with P rows/columns of zeros on each side, of size Hp × Wp.

Strategy: **im2col without the copies, products in Numba.** A convolution is one matrix product with the
weight seen as a (C_out, R) matrix, R = C_in·KH·KW, and so are both halves of its backward::

    y     = W  @ cols + bias        cols (R, columns): row r = (ci, kh, kw) holds the input under tap r
    dW   += g  @ colsᵀ              for every output position
    dcols = Wᵀ @ g                  then each row is added back where it was read (col2im)

The column matrix repeats each input number up to KH·KW times, so it is never formed. Instead a block of B
images is copied once into a **spread** (``_spread_block``) laid out so that every row of the block's column
matrix is one contiguous run of it::

    spread[ci, kw, ph, hh, j, ow] = xp[n0 + j, ci, S_h·hh + ph, S_w·ow + kw]        (ph < S_h: the row's phase)
    row r = (ci, kh, kw), column (oh, j, ow)  =  spread[ci, kw, kh % S_h, kh // S_h + oh, j, ow]

For fixed r and growing (oh, j, ow) the right-hand side walks through memory one number at a time: row r is
the run of B·OH·OW numbers from ``window[r]``. The products (``matmul.py``) read these runs in place,
overlapping as they are; the weight gradient reads the same kept spread; the input gradient adds its rows
straight back into a spread gradient (``matmul_scatter_add``) that ``_fold_block`` adds onto the images.
The spread holds each input number about KW / S_w times. Putting the images j between oh and ow is what
lets one run cover B images: the products' tiles run along it, and long runs make them fast
(``images_per_block``).

Blocks hold about 1024 columns, shared evenly between the threads (``images_per_block``); the products run
on register tiles of LLVM vectors (``vectors.py``, through ``matmul.py``); the spread copies runs out of rows
split into their stride phases (``_spread_split``) for strides up to 2, else reads through a table; the input
and weight gradients run in one kernel (``_backward``). How this design came about, version by version, with
its measurements: ``docs/performance.md``.
"""
import functools

import numpy as np
from numba import types
from numba.extending import overload

from . import inline_kernel, kernel, sum_kernel
from .shares import in_shares
from .threads import governor
from .matmul import ADD, STORE, STORE_RELU, matmul_nt_add, matmul_scatter_add
from .vectors import AVAILABLE as VECTOR_CODE, VECTOR_BYTES, copy_runs, split_rows

#: A block holds about this many images' columns (images × OH·OW), so that the spread's rows and the
#: products' rows are long (``images_per_block``).
MIN_COLUMNS = 1024


def images_per_block(Q, N=None, threads=1):
    """B, the images a block takes when each has Q = OH·OW outputs per channel: about ``MIN_COLUMNS`` // Q
    (at least 1), made even across the ``threads`` for a batch of N: each thread gets the same number of
    blocks, at least two, and B is the fewest images that covers the batch so. Why: long rows make the products'
    tiles fast, and even shares keep both threads busy to the end (``docs/performance.md``).
    Q = 784 → 1, 196 → 5, 100 → 10, 25 → 39 at N = 1000 (26 blocks), 16 at 64.
    """
    B = max(1, MIN_COLUMNS // Q)
    if N is None:
        return B
    per_thread = max(2, -(-N // (threads * B)))
    return max(1, -(-N // (threads * per_thread)))


def split_width(W, pad_w, stride_w):
    """The numbers a phase of a padded row takes in ``_spread_split``'s scratch: ceil((W + 2·P_w) / S_w), rounded
    up to a multiple of the float32 lanes, so of every dtype's (``vectors.split_rows`` stores whole vectors)."""
    phase, lanes = -(-(W + 2 * pad_w) // stride_w), VECTOR_BYTES // 4
    return -(-phase // lanes) * lanes


@kernel
def phase_rows(KH, stride_h, out_h):
    """HH = (KH − 1) // S_h + OH: the rows of each of the S_h phases a spread keeps (row kh // S_h + oh of
    phase kh % S_h is read by tap kh of output row oh; see ``_spread_block``)."""
    return (KH - 1) // stride_h + out_h


def _windows(C_in, KH, KW, stride_h, HH, row_length):
    """window[r] for r = (ci·KH + kh)·KW + kw: where row r of a block's columns starts in its spread block,
    (((ci·KW + kw)·S_h + kh % S_h)·HH + kh // S_h)·B·OW, with row_length = B·OW (see ``_spread_block``)."""
    ci, kh, kw = np.ix_(np.arange(C_in), np.arange(KH), np.arange(KW))
    return ((((ci * KW + kw) * stride_h + kh % stride_h) * HH + kh // stride_h) * row_length).ravel().astype(np.uint64)


def _reads(C_in, H, W, KW, stride_w, pad_w, B, out_w):
    """Where the lanes of a spread row read x: reads[kw, j·OW + ow] = j·C_in·H·W + w, w = S_w·ow + kw − P_w
    clipped to 0..W − 1, counted from the start of that row in the block's first image. A lane whose w falls
    on the padding reads a number that is there, and the kernels then put a zero in its place: padding[kw]
    lists those lanes (padding[kw, :padded[kw]], a few per image). Without padding the lists are empty.

    Only the horizontal padding needs tables: a spread row that falls on a padding row is all zeros."""
    w = stride_w * np.arange(out_w)[None, None, :] + np.arange(KW)[:, None, None] - pad_w        # (KW, 1, OW)
    image = (np.arange(B) * (C_in * H * W))[None, :, None]                                       # (1, B, 1)
    reads = (image + np.clip(w, 0, W - 1)).reshape(KW, B * out_w).astype(np.uint64)
    off_x = np.broadcast_to((w < 0) | (w >= W), (KW, B, out_w)).reshape(KW, B * out_w)
    padded = off_x.sum(axis=1)
    padding = np.zeros((KW, max(1, padded.max())), dtype=np.uint64)
    for kw in range(KW):
        padding[kw, :padded[kw]] = np.flatnonzero(off_x[kw])
    return reads, padding, padded.astype(np.int64)


class Plan:
    """What the kernels need to know about one convolution's geometry, computed in Python once per geometry,
    block size and thread count (``_plan`` keeps them).

    The images go B = ``images_per_block`` at a time: block k holds images k·B to k·B + B (the last block's
    unused places are zeros). A block's columns form one (R, B·Q) matrix, R = C_in·KH·KW, Q = OH·OW, column
    (oh·B + j)·OW + ow for image j's output (oh, ow); its row r is the contiguous run of ``block_columns``
    numbers that starts at ``window[r]`` in the block's spread (``_spread_block``, ``block_size`` numbers),
    which is made from x either from the block's rows split into their S_w phases when S_w ≤ 2
    (``split_width`` not 0; ``split_scratch``), or else through the table ``reads`` (see ``_spread_block``).

    ``geometry`` is the tuple of ints the kernels unpack: (C_in, H, W, KH, KW, S_h, S_w, P_h, P_w, OH, OW).
    """

    def __init__(self, C_in, H, W, KH, KW, stride_h, stride_w, pad_h, pad_w, out_h, out_w, images=None, threads=None):
        self.images_per_block = B = images or images_per_block(out_h * out_w)
        HH = getattr(phase_rows, "py_func", phase_rows)(KH, stride_h, out_h)   # the plain function: no compile
        self.rows = C_in * KH * KW
        self.block_columns = B * out_h * out_w
        self.window = _windows(C_in, KH, KW, stride_h, HH, B * out_w)
        self.block_size = C_in * KW * stride_h * HH * B * out_w
        self.tables = _reads(C_in, H, W, KW, stride_w, pad_w, B, out_w)     # (reads, padding, padded)
        self.split_width = split_width(W, pad_w, stride_w) if VECTOR_CODE and stride_w <= 2 else 0
        self.split_size = B * C_in * H * stride_w * self.split_width
        self.geometry = (C_in, H, W, KH, KW, stride_h, stride_w, pad_h, pad_w, out_h, out_w)
        self.threads = threads or governor.full

    def blocks(self, N):
        """How many blocks N images make."""
        return -(-N // self.images_per_block)

    def scratch(self, numbers, dtype, wanted=True):
        """One flat buffer of ``numbers`` per thread (T, numbers); (T, 0) when not ``wanted``."""
        return np.empty((self.threads, numbers if wanted else 0), dtype=dtype)

    def split_scratch(self, dtype):
        """The split rows' scratch, one per thread, or None when the spread goes through ``reads`` instead. The
        type of ``split`` (array or None) chooses the way when Numba compiles (``_spread_block_compiled``), so a
        kernel compiled for one way holds no code of the other."""
        return self.scratch(self.split_size, dtype) if self.split_width else None


# --- one block: padding, spreading, folding, outputs in and out ---------------------------------------------
# The loops index flat arrays with unsigned offsets: Numba tests a signed index for being negative (Python's
# wrap-around), and that test keeps LLVM from vectorising a loop (in a scatter loop it made it 3x slower).

def _spread_block(x, n0, n1, block, split, t, tables, B, geometry):
    """block[ci, kw, ph, hh, j, ow] = xp[n0 + j, ci, S_h·hh + ph, S_w·ow + kw] for the block's images n0 to n1,
    ph < S_h, hh < HH = (KH − 1) // S_h + OH, j < B, ow < OW: xp is x with its P zeros around each plane, and
    zeros stand for rows past the padded input and for the places of a last, partial block's missing images.

    Why this layout: the input under tap (ci, kh, kw) of output (oh, ow) is xp[ci, S_h·oh + kh, S_w·ow + kw]
    = block[ci, kw, kh % S_h, kh // S_h + oh, j, ow]. For fixed (ci, kh, kw) and growing (oh, j, ow) that is
    one contiguous run: row r of the block's (R, B·OH·OW) column matrix, which the products read in place.

    Two ways to fill it, the same numbers: ``_spread_split`` out of thread t's scratch split[t] when the plan
    gave one (S_w ≤ 2), else ``_spread_read`` (``split`` None). Splitting is faster for every run but the
    shortest, and choosing it for every S_w ≤ 2 keeps the table path out of the pyramids' compiled kernels
    (``Plan.split_scratch``), which then compile faster.
    """
    if split is None:
        _spread_read(x, n0, n1, block, tables, B, geometry)
    else:
        _spread_split(x, n0, n1, block, split[t], B, geometry)


@overload(_spread_block, inline="always")
def _spread_block_compiled(x, n0, n1, block, split, t, tables, B, geometry):
    """``_spread_block`` inside compiled kernels, its way chosen by the type of ``split`` when Numba compiles: a
    kernel holds the code of one way only. (A plain ``if split is None`` left both ways in the kernels that got
    an array: Numba settles that test only when the argument is None.)"""
    if isinstance(split, types.NoneType):
        return lambda x, n0, n1, block, split, t, tables, B, geometry: _spread_read(x, n0, n1, block, tables, B,
                                                                                   geometry)
    return lambda x, n0, n1, block, split, t, tables, B, geometry: _spread_split(x, n0, n1, block, split[t], B,
                                                                                geometry)


@inline_kernel
def _spread_read(x, n0, n1, block, tables, B, geometry):
    """``_spread_block`` one number at a time. Each of the C_in·KW·S_h·HH rows of the block is B·OW numbers
    read from x through the table ``reads[kw]`` (``Plan``), which knows where the padding is, so no padded copy
    of the images is made. Per row of the block, not of each image, so that short rows cost one table lookup
    each rather than one set of bounds each."""
    _through_reads(block, x, n0, n1, tables, B, geometry, False)


@sum_kernel
def _through_reads(block, x, n0, n1, tables, B, geometry, fold):
    """The rows of a block and the numbers of x they hold, walked through ``reads``: copied into the block
    (the spread, ``fold`` False) or added back onto x (the fold, ``fold`` True; x zeroed by the caller).
    Lanes that fall on the padding hold a zero in the spread and are dropped from the fold: the block's
    entries there are zeroed, after the copy or before the sum."""
    C_in, H, W, KH, KW, stride_h, stride_w, pad_h, pad_w, out_h, out_w = geometry
    reads, padding, padded = tables
    HH = phase_rows(KH, stride_h, out_h)
    flat = x.ravel()
    first = n0 * C_in * H * W
    run, used = np.uint64(B * out_w), np.uint64((n1 - n0) * out_w)
    for ci in range(C_in):
        for kw in range(KW):
            lanes = reads[kw]
            for ph in range(stride_h):
                for hh in range(HH):
                    h = stride_h * hh + ph - pad_h
                    row = np.uint64((((ci * KW + kw) * stride_h + ph) * HH + hh) * B * out_w)
                    if 0 <= h < H:
                        image = np.uint64(first + (ci * H + h) * W)
                        if not fold:
                            for i in range(used):
                                block[row + i] = flat[image + lanes[i]]
                        for m in range(padded[kw]):                 # the lanes on the padding
                            block[row + padding[kw, m]] = 0
                        if fold:
                            for i in range(used):
                                flat[image + lanes[i]] += block[row + i]
                        else:
                            for i in range(used, run):
                                block[row + i] = 0
                    elif not fold:
                        for i in range(run):
                            block[row + i] = 0


@sum_kernel
def _spread_split(x, n0, n1, block, split, B, geometry):
    """``_spread_block`` in runs. First every row of the block's images is padded and split into its S_w
    phases (``vectors.split_rows``): split[j, ci, h, pw, w'] = xp[n0 + j, ci, h, S_w·w' + pw], Wd numbers a
    phase. Then the spread's row (ci, kw, ph, hh) holds, for each image j, the OW numbers split[j, ci, h,
    kw % S_w, kw // S_w :][:OW], h = S_h·hh + ph − P_h: runs that ``vectors.copy_runs`` copies a vector at a
    time, all the rows of one (ci, kw, ph) in one call. Rows that fall on the vertical padding, and the
    places of missing images, are zeroed."""
    C_in, H, W, KH, KW, stride_h, stride_w, pad_h, pad_w, out_h, out_w = geometry
    HH = phase_rows(KH, stride_h, out_h)
    size, number = x.itemsize, block[0]
    width = split.size // (B * C_in * H * stride_w)                   # Wd, the plan's split_width
    image = C_in * H * stride_w * width                               # one image's split rows
    split_rows(number, split.ctypes.data, stride_w * width, width, x.ctypes.data + n0 * C_in * H * W * size, W,
               (n1 - n0) * C_in * H, W, pad_w, stride_w)
    run, used = B * out_w, (n1 - n0) * out_w
    for ci in range(C_in):
        for kw in range(KW):
            for ph in range(stride_h):
                row0 = ((ci * KW + kw) * stride_h + ph) * HH          # the block's row of (ci, kw, ph, hh = 0)
                low = 0                                               # rows hh in [low, high) lie on x
                while low < HH and stride_h * low + ph < pad_h:
                    low += 1
                high = low
                while high < HH and stride_h * high + ph - pad_h < H:
                    high += 1
                if high > low:
                    h = stride_h * low + ph - pad_h
                    src = ((ci * H + h) * stride_w + kw % stride_w) * width + kw // stride_w
                    copy_runs(number, block.ctypes.data + (row0 + low) * run * size, run, out_w,
                              split.ctypes.data + src * size, stride_h * stride_w * width, image,
                              high - low, n1 - n0, out_w)
                for hh in range(HH):                # after the copy, which may write past a row's last run
                    start = (row0 + hh) * run
                    for i in range(used if low <= hh < high else 0, run):
                        block[start + i] = 0


@inline_kernel
def _fold_block(block, grad_x, n0, n1, tables, B, geometry):
    """The adjoint of ``_spread_block``: grad_x[n0:n1] (zeroed here) = for each number of x, the sum of the
    block entries that copied it; entries that stand for padding (zeroed in ``block`` first, then added as
    zeros) or for missing images are dropped."""
    C_in, H, W = geometry[0], geometry[1], geometry[2]
    flat = grad_x.ravel()
    for i in range(np.uint64(n0 * C_in * H * W), np.uint64(n1 * C_in * H * W)):
        flat[i] = 0
    _through_reads(block, grad_x, n0, n1, tables, B, geometry, True)


@sum_kernel
def _block_to_outputs(block, y, n0, n1, B):
    """y[n0 + j, co, oh, ow] = block[co, oh, j, ow]: the products' (C_out, OH·B·OW) result to NCHW images, runs
    of OW numbers (``vectors.copy_runs``)."""
    C_out, out_h, out_w = y.shape[1], y.shape[2], y.shape[3]
    if VECTOR_CODE:
        size = y.itemsize
        copy_runs(block[0], y.ctypes.data + n0 * C_out * out_h * out_w * size, C_out * out_h * out_w, out_w,
                  block.ctypes.data, out_w, B * out_w, n1 - n0, C_out * out_h, out_w)
        return
    for j in range(n1 - n0):
        image = y[n0 + j].ravel()
        for c in range(C_out * out_h):                            # c = co·OH + oh
            src, dst = np.uint64((c * B + j) * out_w), np.uint64(c * out_w)
            for ow in range(np.uint64(out_w)):
                image[dst + ow] = block[src + ow]


@sum_kernel
def _outputs_to_block(g, n0, n1, block, B):
    """block[co, oh, j, ow] = g[n0 + j, co, oh, ow], zero for j ≥ n1 − n0: ``_block_to_outputs`` reversed, for
    the output gradient."""
    C_out, out_h, out_w = g.shape[1], g.shape[2], g.shape[3]
    if VECTOR_CODE:
        size = g.itemsize
        copy_runs(block[0], block.ctypes.data, B * out_w, out_w, g.ctypes.data + n0 * C_out * out_h * out_w * size,
                  out_w, C_out * out_h * out_w, C_out * out_h, n1 - n0, out_w)
        for c in range(C_out * out_h):
            for i in range((c * B + n1 - n0) * out_w, (c + 1) * B * out_w):
                block[i] = 0
        return
    for j in range(B):
        image = g[min(n0 + j, n1 - 1)].ravel()
        for c in range(C_out * out_h):
            dst, src = np.uint64((c * B + j) * out_w), np.uint64(c * out_w)
            if n0 + j < n1:
                for ow in range(np.uint64(out_w)):
                    block[dst + ow] = image[src + ow]
            else:
                for ow in range(np.uint64(out_w)):
                    block[dst + ow] = 0


@inline_kernel
def _gradient_block(grad_out, n0, n1, g_block, B):
    """The block's output gradient as one (1, C_out·B·Q) matrix with columns (oh, j, ow), as the products read
    it: the rows of grad_out itself for a block of one image, else reordered into g_block (1, C_out·B·Q)."""
    if B == 1:
        N, C_out = grad_out.shape[0], grad_out.shape[1]
        return grad_out.reshape(N, C_out * grad_out.shape[2] * grad_out.shape[3])[n0:n1]
    _outputs_to_block(grad_out, n0, n1, g_block[0], B)
    return g_block


@inline_kernel
def _zero(block):
    """block (rows, size) = 0."""
    for n in range(block.shape[0]):
        for i in range(block.shape[1]):
            block[n, i] = 0


# --- whole batches ----------------------------------------------------------------------------------------------
# Each kernel is a serial worker for one share of the blocks, run on every thread by ``shares.in_shares``
# (a ``prange`` loop's body is translated four times by Numba, a worker once: ``shares.py``).
# Thread t takes the blocks t·NB/T to (t+1)·NB/T, so that its scratch and partial sums need no locking. The
# workers leave allocation, transposes and sums to their Python callers. Each product has one call site: each
# is inlined, for ~1 s of LLVM's time. A block of one image needs no reordering: its columns (oh, 0, ow) are
# the image's own output order, so the products read and write the caller's arrays directly.

@sum_kernel
def _sources_share(args, t, T):
    """Share t of T of sources[k] = the spread of block k (B images), for all blocks (split[t]: the thread's
    scratch)."""
    x, sources, split, tables, geometry, B = args
    N, NB = x.shape[0], sources.shape[0]
    for k in range(t * NB // T, (t + 1) * NB // T):
        _spread_block(x, k * B, min(k * B + B, N), sources[k], split, t, tables, B, geometry)


_sources = in_shares(_sources_share)


@sum_kernel
def _forward_share(args, t, T):
    """Share t of T of the forward: y = conv(x) + bias (through a ReLU when ``relu``), block by block: spread
    (into kept[k] when ``keep``, else the thread's scratch[t]; split[t]: the spread's own scratch), then bias +
    W @ cols stored by the product (the input gradient's, storing its rows at ``row_window`` this time, through
    max(·, 0) when ``relu``: one product compiled for all), and for blocks of several images their outputs
    moved from out_block[t] to y."""
    x, filters, bias, relu, y, kept, keep, scratch, split, out_block, tables, window, row_window, geometry, B = args
    N, C_out = y.shape[0], y.shape[1]
    Q = y.shape[2] * y.shape[3]
    y2 = y.reshape(N, C_out * Q)
    NB = -(-N // B)
    mode = STORE_RELU if relu else STORE
    for k in range(t * NB // T, (t + 1) * NB // T):
        n0, n1 = k * B, min(k * B + B, N)
        source = kept[k:k + 1] if keep else scratch[t:t + 1]
        _spread_block(x, n0, n1, source[0], split, t, tables, B, geometry)
        target = y2[n0:n1] if B == 1 else out_block[t:t + 1]
        matmul_scatter_add(filters, source, window, target, row_window, B * Q, bias, mode)
        if B > 1:
            _block_to_outputs(out_block[t], y, n0, n1, B)


_forward = in_shares(_forward_share)


@sum_kernel
def _backward_share(args, t, T):
    """Share t of T of both gradients, block by block, from each block's output gradient g (reordered once into
    g_block[t] when the block holds several images, ``_gradient_block``):

    - the weight's, when ``need_w``: partial[t] += g @ colsᵀ against the block's kept spread (thread t's own
      (C_out, R) sums, added up by the caller);
    - the input's, when ``need_x``: the rows of Wᵀ @ g (filters_t = Wᵀ, (R, C_out)) added straight into a
      zeroed spread gradient where the forward read them (``matmul_scatter_add``), then folded onto the
      images' gradient (``_fold_block``).

    One kernel for both, so the gradient of each block is reordered once, and a cold start compiles one
    kernel, not two."""
    (grad_out, kept, partial, filters_t, zeros, grad_x, g_block, spread_grad, tables, window, row_window, geometry,
     B, need_x, need_w) = args
    N, C_out = grad_out.shape[0], grad_out.shape[1]
    Q = grad_out.shape[2] * grad_out.shape[3]
    NB = -(-N // B)
    for k in range(t * NB // T, (t + 1) * NB // T):
        n0, n1 = k * B, min(k * B + B, N)
        g = _gradient_block(grad_out, n0, n1, g_block[t:t + 1], B)
        if need_w:
            matmul_nt_add(g.reshape(1, C_out, B * Q), kept[k:k + 1], window, partial[t])
        if need_x:
            target = spread_grad[t:t + 1]
            _zero(target)
            matmul_scatter_add(filters_t, g, row_window, target, window, B * Q, zeros, ADD)
            _fold_block(spread_grad[t], grad_x, n0, n1, tables, B, geometry)


_backward = in_shares(_backward_share)


# --- the public kernels --------------------------------------------------------------------------------------

def _plan(x_shape, KH, KW, stride_h, stride_w, pad_h, pad_w, out_h, out_w, images=None, threads=None):
    """The Plan of a convolution, made once per geometry, block size and thread count: building tables with
    numpy costs tens of µs, three times per training step of each layer. The block size depends on the
    batch (``images_per_block``) and the thread count, so a backward passes the forward's ``threads`` and the
    two share a plan. The count is the pool's full one even while the governor keeps to one thread
    (``threads.Governor``): the shares then run one after the other, each summing what it would have summed on
    its own thread, so the numbers do not depend on how busy the machine was."""
    threads = threads or governor.full
    images = images or images_per_block(out_h * out_w, x_shape[0], threads)
    return _cached_plan(tuple(x_shape[1:]), KH, KW, stride_h, stride_w, pad_h, pad_w, out_h, out_w, images, threads)


@functools.lru_cache(maxsize=64)
def _cached_plan(image_shape, KH, KW, stride_h, stride_w, pad_h, pad_w, out_h, out_w, images, threads):
    return Plan(*image_shape, KH, KW, stride_h, stride_w, pad_h, pad_w, out_h, out_w, images, threads)


def _row_window(C_out, plan):
    """Where row co of a block's outputs (or output gradient) starts: co·B·Q."""
    return np.arange(C_out, dtype=np.uint64) * np.uint64(plan.block_columns)


def conv2d_forward(x, weight, bias, stride_h, stride_w, pad_h, pad_w, out_h, out_w, relu=False):
    """y = conv2d(x, weight) + bias, or max(that, 0) when ``relu`` (the ReLU applied as each output is stored).

    Inputs: x (N, C_in, H, W), weight (C_out, C_in, KH, KW), bias (C_out,) (zeros for "no bias"), all
    C-contiguous and of one dtype; stride, padding and output size already checked by
    ``minicnn/shapes.py``. Returns: y (N, C_out, OH, OW).
    """
    return _conv2d_forward(x, weight, bias, stride_h, stride_w, pad_h, pad_w, out_h, out_w, relu, keep=False)[0]


def conv2d_forward_keep(x, weight, bias, stride_h, stride_w, pad_h, pad_w, out_h, out_w, relu=False):
    """``conv2d_forward`` that also returns what the weight gradient needs of x, ``kept`` (blocks, size): each
    block's spread (see ``Plan``). Keeping it costs no time: the forward writes it anyway."""
    return _conv2d_forward(x, weight, bias, stride_h, stride_w, pad_h, pad_w, out_h, out_w, relu, keep=True)


def _conv2d_forward(x, weight, bias, stride_h, stride_w, pad_h, pad_w, out_h, out_w, relu, keep):
    N = x.shape[0]
    C_out, _, KH, KW = weight.shape
    plan = _plan(x.shape, KH, KW, stride_h, stride_w, pad_h, pad_w, out_h, out_w)
    y = np.empty((N, C_out, out_h, out_w), dtype=x.dtype)
    kept = np.empty((plan.blocks(N) if keep else 0, plan.block_size), dtype=x.dtype)
    scratch = plan.scratch(plan.block_size, x.dtype, wanted=not keep)
    out_block = plan.scratch(C_out * plan.block_columns, x.dtype, wanted=plan.images_per_block > 1)
    _forward((x, weight.reshape(C_out, -1), bias, bool(relu), y, kept, keep, scratch,
              plan.split_scratch(x.dtype), out_block, plan.tables, plan.window, _row_window(C_out, plan),
              plan.geometry, plan.images_per_block), plan.threads)
    return y, kept


def conv2d_backward(grad_out, weight, kept, x_shape, stride_h, stride_w, pad_h, pad_w, need_x=True, need_w=True,
                    threads=None):
    """(dL/dx, dL/dweight) of a convolution in one pass over the blocks, each None when not ``need_x`` or
    ``need_w``: dL/dweight = Σ_n g[n] @ cols[n]ᵀ from the forward's ``kept`` spreads, dL/dx = for each block
    Wᵀ @ g added back where the forward read it, then folded.

    Inputs: grad_out (N, C_out, OH, OW), weight (C_out, C_in, KH, KW), kept (blocks, size) from
    ``conv2d_forward_keep`` (or None when not ``need_w``), the input's shape x_shape, stride, padding.
    Each thread sums its blocks' weight gradients into its own (C_out, R) buffer and the buffers are added at
    the end, so the result does not depend on scheduling (only on the number of threads, through the order of
    the sums).
    """
    N, C_out, out_h, out_w = grad_out.shape
    _, C_in, KH, KW = weight.shape
    plan = _plan(x_shape, KH, KW, stride_h, stride_w, pad_h, pad_w, out_h, out_w, threads=threads)
    dtype, B = grad_out.dtype, plan.images_per_block
    if not need_w:
        kept = np.empty((0, plan.block_size), dtype)
    elif kept.shape != (plan.blocks(N), plan.block_size):
        raise ValueError(f"kept: expected the forward's spreads of shape {(plan.blocks(N), plan.block_size)} "
                         f"for this geometry, got {kept.shape}")
    partial = np.zeros((plan.threads, C_out, plan.rows) if need_w else (plan.threads, 0, 0), dtype)
    grad_x = np.empty(tuple(x_shape) if need_x else (0, C_in, x_shape[2], x_shape[3]), dtype)
    filters_t = np.ascontiguousarray(weight.reshape(C_out, -1).T)           # (R, C_out)
    _backward((grad_out, kept, partial, filters_t, np.zeros(plan.rows, dtype), grad_x,
               plan.scratch(C_out * plan.block_columns, dtype, B > 1), plan.scratch(plan.block_size, dtype, need_x),
               plan.tables, plan.window, _row_window(C_out, plan), plan.geometry, B, bool(need_x), bool(need_w)),
              plan.threads)
    return (grad_x if need_x else None,
            partial.sum(axis=0).reshape((C_out, C_in, KH, KW)) if need_w else None)


def conv2d_backward_weight_kept(grad_out, kept, x_shape, KH, KW, stride_h, stride_w, pad_h, pad_w):
    """dL/dweight alone, from the forward's ``kept`` spreads (``conv2d_backward``)."""
    weight = np.empty((grad_out.shape[1], x_shape[1], KH, KW), grad_out.dtype)       # only its shape is read
    return conv2d_backward(grad_out, weight, kept, x_shape, stride_h, stride_w, pad_h, pad_w, need_x=False)[1]


def conv2d_backward_weight(grad_out, x, KH, KW, stride_h, stride_w, pad_h, pad_w):
    """dL/dweight when the forward kept nothing: spread x again, then as above.

    Inputs: grad_out (N, C_out, OH, OW), x (N, C_in, H, W), the kernel size, stride, padding.
    Returns: grad_weight (C_out, C_in, KH, KW).
    """
    out_h, out_w = grad_out.shape[2:]
    plan = _plan(x.shape, KH, KW, stride_h, stride_w, pad_h, pad_w, out_h, out_w)
    kept = np.empty((plan.blocks(x.shape[0]), plan.block_size), dtype=x.dtype)
    _sources((x, kept, plan.split_scratch(x.dtype), plan.tables, plan.geometry, plan.images_per_block), plan.threads)
    return conv2d_backward_weight_kept(grad_out, kept, x.shape, KH, KW, stride_h, stride_w, pad_h, pad_w)


def conv2d_backward_input(grad_out, weight, H, W, stride_h, stride_w, pad_h, pad_w):
    """dL/dx alone (``conv2d_backward``).

    Inputs: grad_out (N, C_out, OH, OW), weight (C_out, C_in, KH, KW), the input's H and W, stride, padding.
    Returns: grad_x (N, C_in, H, W).
    """
    x_shape = (grad_out.shape[0], weight.shape[1], H, W)
    return conv2d_backward(grad_out, weight, None, x_shape, stride_h, stride_w, pad_h, pad_w, need_w=False)[0]


# --- im2col and col2im, for the tests: the spread and the fold against the plain definition -----------------

def im2col(x, KH, KW, stride_h, stride_w, pad_h, pad_w, out_h, out_w):
    """Every image's columns, cols (N, C_in·KH·KW, OH·OW): ``cols[n, (ci·KH + kh)·KW + kw, oh·OW + ow] =
    xp[n, ci, oh·S + kh, ow·S + kw]``, read out of each image's spread at the plan's windows (the convolution
    kernels never form them)."""
    plan = _plan(x.shape, KH, KW, stride_h, stride_w, pad_h, pad_w, out_h, out_w, images=1)
    cols = np.empty((x.shape[0], plan.rows, out_h * out_w), dtype=x.dtype)
    _im2col((x, cols, plan.scratch(plan.block_size, x.dtype), plan.split_scratch(x.dtype), plan.tables,
             plan.window, plan.geometry), plan.threads)
    return cols


def col2im(cols, C_in, H, W, KH, KW, stride_h, stride_w, pad_h, pad_w, out_h, out_w):
    """The adjoint of im2col: cols (N, C_in·KH·KW, OH·OW) → x-shaped sums (N, C_in, H, W), each row added into
    a spread gradient at its window, then folded."""
    plan = _plan((cols.shape[0], C_in, H, W), KH, KW, stride_h, stride_w, pad_h, pad_w, out_h, out_w, images=1)
    x = np.empty((cols.shape[0], C_in, H, W), dtype=cols.dtype)
    _col2im((np.ascontiguousarray(cols), x, plan.scratch(plan.block_size, cols.dtype),
             plan.tables, plan.window, plan.geometry), plan.threads)
    return x


@sum_kernel
def _im2col_share(args, t, T):
    x, cols, scratch, split, tables, window, geometry = args
    N = x.shape[0]
    for n in range(t * N // T, (t + 1) * N // T):
        _spread_block(x, n, n + 1, scratch[t], split, t, tables, 1, geometry)
        for r in range(cols.shape[1]):
            for q in range(cols.shape[2]):
                cols[n, r, q] = scratch[t, window[r] + q]


@sum_kernel
def _col2im_share(args, t, T):
    cols, x, scratch, tables, window, geometry = args
    N = x.shape[0]
    for n in range(t * N // T, (t + 1) * N // T):
        _zero(scratch[t:t + 1])
        for r in range(cols.shape[1]):
            for q in range(cols.shape[2]):
                scratch[t, window[r] + q] += cols[n, r, q]
        _fold_block(scratch[t], x, n, n + 1, tables, 1, geometry)


_im2col, _col2im = in_shares(_im2col_share), in_shares(_col2im_share)
