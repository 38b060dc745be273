"""2-D max, average and global average pooling, compiled with Numba.

Twins: ``minicnn/plain/pool.py`` (the same numbers, plain loops), ``contract.py`` (the engine contract's
functions, which call these).
Notation as in the package docstring: x (N, C, H, W) → y (N, C, OH, OW), window K = (KH, KW), stride S,
padding P, with OH from ``minicnn/shapes.py``. Window (oh, ow) covers input rows ``oh*S_h - P_h ...`` up to
``K_h`` rows further, clipped to the input, and likewise for columns.

**Max pooling** takes the largest value of each window and remembers where it was (``argmax``, a flat index
``row * W + col`` into the input plane, as PyTorch's ``return_indices``). Padded cells never win: the loops only
visit real cells. Ties go to the first maximum in row-major order; a NaN wins over any number (PyTorch's rule
``if (v > best or isnan(v))``, so the value is NaN and NaN propagates). Backward sends each output's gradient
to its argmax cell; when windows overlap (S < K) a cell can be the argmax of several windows and accumulates.

**Average pooling** divides each window's sum by a divisor (PyTorch's rules):
``count_include_pad=True``: the window's size clipped to the *padded* input (padding counts, but ceil_mode's
overhang beyond the padding does not); ``count_include_pad=False``: the number of real cells in the window.
Backward spreads ``g / divisor`` evenly over the window's real cells.

**Global average pooling** is the mean of each (n, c) plane: (N, C, H, W) → (N, C, 1, 1).

**Blur pooling** (Zhang 2019, "Making Convolutional Networks Shift-Invariant Again") low-pass filters each
channel with the fixed 3 × 3 binomial filter [1, 2, 1]ᵀ[1, 2, 1] / 16 before subsampling with stride S, so
that a one-pixel shift of the input changes the output smoothly instead of aliasing. The border is padded by
reflection (row −1 reads row 1), as in Zhang's code: OH = floor((H − 1) / S) + 1.

Parallel strategy: every kernel splits the N·C planes among threads (``p = n * C + c``). A plane's outputs, and
its input gradient, belong to one iteration only, so no two threads ever write the same cell. Each loop is
compiled serially too (``by_size``), and inputs below ``PARALLEL_MIN_ELEMENTS`` use that.

Two habits keep these loops fast: no array views inside loops (a view costs a reference count), and no
``np.zeros`` inside parallel kernels (see ``_zero_plane``).

Fast path: the classic 2×2 window with stride 2 and no padding, every window inside the input (floor mode),
has its own loops with the four cells read explicitly, because the general loop recomputes and clips each
window's bounds. It visits the cells in the same order and sums the same way, so its results are bitwise those
of the general path. The general max pooling finds each window's maximum first and then where it is, so that
no branch depends on the data while the maximum is found (``_max_pool2d_general``). The measurements behind
each choice: ``docs/performance.md``.
"""
import numpy as np
from numba import prange

from . import by_size, kernel, parallel_kernel, sum_by_size


def _is_plain_2x2(H, W, kernel_h, kernel_w, stride_h, stride_w, pad_h, pad_w, out_h, out_w):
    """True for a 2×2, stride-2, unpadded pooling whose windows all lie inside the H × W input."""
    return ((kernel_h, kernel_w, stride_h, stride_w, pad_h, pad_w) == (2, 2, 2, 2, 0, 0)
            and 2 * out_h <= H and 2 * out_w <= W)


def max_pool2d_forward(x, kernel_h, kernel_w, stride_h, stride_w, pad_h, pad_w, out_h, out_w):
    """Inputs: x (N, C, H, W), window, stride, padding, output size (checked by ``minicnn/shapes.py``).

    Returns: y (N, C, OH, OW), the maxima; argmax (N, C, OH, OW) int64, each a flat index ``row * W + col``.
    """
    if _is_plain_2x2(*x.shape[2:], kernel_h, kernel_w, stride_h, stride_w, pad_h, pad_w, out_h, out_w):
        return _max_pool2d_2x2(x, out_h, out_w)
    return _max_pool2d_general(x, kernel_h, kernel_w, stride_h, stride_w, pad_h, pad_w, out_h, out_w)


@by_size
def _max_pool2d_2x2(x, out_h, out_w):
    """The fast path of ``max_pool2d_forward``: each window's four cells, in row-major order."""
    N, C, H, W = x.shape
    y = np.empty((N, C, out_h, out_w), dtype=x.dtype)
    argmax = np.empty((N, C, out_h, out_w), dtype=np.int64)
    for p in prange(N * C):
        n, c = p // C, p % C
        for oh in range(out_h):
            top, bottom = 2 * oh, 2 * oh + 1
            for ow in range(out_w):
                j = 2 * ow
                best, best_at = x[n, c, top, j], top * W + j
                v = x[n, c, top, j + 1]
                if v > best or np.isnan(v):
                    best, best_at = v, top * W + j + 1
                v = x[n, c, bottom, j]
                if v > best or np.isnan(v):
                    best, best_at = v, bottom * W + j
                v = x[n, c, bottom, j + 1]
                if v > best or np.isnan(v):
                    best, best_at = v, bottom * W + j + 1
                y[n, c, oh, ow] = best
                argmax[n, c, oh, ow] = best_at
    return y, argmax


@by_size
def _max_pool2d_general(x, kernel_h, kernel_w, stride_h, stride_w, pad_h, pad_w, out_h, out_w):
    """The general path of ``max_pool2d_forward``: any window, stride, padding and ceil_mode.

    Two passes over each window: its maximum, with no branch on the data (a select, which the CPU does without
    guessing), then its first cell equal to the maximum (the last NaN when there is one: the running maximum's
    answer, ``v > best or isnan(v)``). The running maximum in one pass branched on every cell, and random data
    mispredicts half of those branches; this way one exit per window is guessed wrong at worst. Planes indexed
    flat and unsigned."""
    N, C, H, W = x.shape
    y = np.empty((N, C, out_h, out_w), dtype=x.dtype)
    argmax = np.empty((N, C, out_h, out_w), dtype=np.int64)
    planes = x.reshape(N * C, H * W)
    maxima, places = y.reshape(N * C, out_h * out_w), argmax.reshape(N * C, out_h * out_w)
    for p in prange(N * C):
        for oh in range(out_h):
            h0 = oh * stride_h - pad_h
            h1 = min(h0 + kernel_h, H)
            h0 = max(h0, 0)
            for ow in range(out_w):
                w0 = ow * stride_w - pad_w
                w1 = min(w0 + kernel_w, W)
                w0 = max(w0, 0)
                best = planes[p, np.uint64(h0 * W + w0)]
                for i in range(np.uint64(h0), np.uint64(h1)):         # the maximum, without a branch
                    row = i * np.uint64(W)
                    for j in range(np.uint64(w0), np.uint64(w1)):
                        v = planes[p, row + j]
                        best = v if (v > best) | (v != v) else best
                best_at = np.uint64(h0 * W + w0)
                if best == best:                                      # where it is: its first cell
                    found = False
                    for i in range(np.uint64(h0), np.uint64(h1)):
                        row = i * np.uint64(W)
                        for j in range(np.uint64(w0), np.uint64(w1)):
                            if planes[p, row + j] == best:
                                best_at, found = row + j, True
                                break
                        if found:
                            break
                else:                                                 # a NaN: the last one, as the running max
                    for i in range(np.uint64(h0), np.uint64(h1)):
                        row = i * np.uint64(W)
                        for j in range(np.uint64(w0), np.uint64(w1)):
                            v = planes[p, row + j]
                            if v != v:
                                best_at = row + j
                maxima[p, oh * out_w + ow] = best
                places[p, oh * out_w + ow] = best_at
    return y, argmax


@by_size
def max_pool2d_backward(grad_out, argmax, H, W):
    """Inputs: grad_out (N, C, OH, OW), argmax (N, C, OH, OW) from the forward, the input's H and W.

    Returns: grad_x (N, C, H, W): each output's gradient added to the cell that won its window.
    """
    N, C, out_h, out_w = grad_out.shape
    grad_x = np.empty((N, C, H, W), dtype=grad_out.dtype)
    planes = grad_x.reshape(N * C, H * W)               # argmax is a flat index into a plane: no // and %
    g, at = grad_out.reshape(N * C, out_h * out_w), argmax.reshape(N * C, out_h * out_w)
    for p in prange(N * C):
        _zero_plane(planes, p)
        for k in range(out_h * out_w):
            planes[p, at[p, k]] += g[p, k]
    return grad_x


@kernel
def _zero_of(a):
    """A zero of a's dtype, made in a serial kernel (in a parallel one, ``np.zeros`` is a parallel loop)."""
    return np.zeros(1, dtype=a.dtype)[0]


@kernel
def _zero_plane(planes, p):
    """planes[p, :] = 0. Backward kernels zero each plane inside their parallel loop instead of allocating with
    ``np.zeros``, which Numba turns into a parallel loop of its own (compiled separately, launched separately)."""
    for k in range(planes.shape[1]):
        planes[p, k] = 0


def avg_pool2d_forward(x, kernel_h, kernel_w, stride_h, stride_w, pad_h, pad_w, out_h, out_w, count_include_pad):
    """Inputs: x (N, C, H, W), window, stride, padding, output size, the divisor rule.

    Returns: y (N, C, OH, OW), each window's sum divided by its divisor (see the module docstring).
    """
    if _is_plain_2x2(*x.shape[2:], kernel_h, kernel_w, stride_h, stride_w, pad_h, pad_w, out_h, out_w):
        return _avg_pool2d_2x2(x, out_h, out_w)
    return _avg_pool2d_general(x, kernel_h, kernel_w, stride_h, stride_w, pad_h, pad_w, out_h, out_w,
                               count_include_pad)


@by_size
def _avg_pool2d_2x2(x, out_h, out_w):
    """The fast path of ``avg_pool2d_forward``: four cells summed in row-major order, divided by 4."""
    N, C, H, W = x.shape
    y = np.empty((N, C, out_h, out_w), dtype=x.dtype)
    for p in prange(N * C):
        n, c = p // C, p % C
        for oh in range(out_h):
            top, bottom = 2 * oh, 2 * oh + 1
            for ow in range(out_w):
                j = 2 * ow
                total = 0.0
                total += x[n, c, top, j]
                total += x[n, c, top, j + 1]
                total += x[n, c, bottom, j]
                total += x[n, c, bottom, j + 1]
                y[n, c, oh, ow] = total / 4
    return y


@kernel
def _avg_window(oh, ow, H, W, kernel_h, kernel_w, stride_h, stride_w, pad_h, pad_w, count_include_pad):
    """Window (oh, ow)'s real rows [h0, h1) and columns [w0, w1), and what its sum is divided by."""
    h0, w0 = oh * stride_h - pad_h, ow * stride_w - pad_w
    h1, w1 = min(h0 + kernel_h, H + pad_h), min(w0 + kernel_w, W + pad_w)
    divisor = (h1 - h0) * (w1 - w0)                  # padding counts; ceil_mode's overhang does not
    h0, h1, w0, w1 = max(h0, 0), min(h1, H), max(w0, 0), min(w1, W)
    if not count_include_pad:
        divisor = (h1 - h0) * (w1 - w0)              # real cells only
    return h0, h1, w0, w1, divisor


@by_size
def _avg_pool2d_general(x, kernel_h, kernel_w, stride_h, stride_w, pad_h, pad_w, out_h, out_w, count_include_pad):
    """The general path of ``avg_pool2d_forward``: any window, stride, padding, ceil_mode and divisor rule."""
    N, C, H, W = x.shape
    y = np.empty((N, C, out_h, out_w), dtype=x.dtype)
    for p in prange(N * C):
        n, c = p // C, p % C
        for oh in range(out_h):
            for ow in range(out_w):
                h0, h1, w0, w1, divisor = _avg_window(oh, ow, H, W, kernel_h, kernel_w, stride_h, stride_w,
                                                      pad_h, pad_w, count_include_pad)
                total = 0.0  # summed in float64: exact enough for any window, and inf stays inf
                for i in range(h0, h1):
                    for j in range(w0, w1):
                        total += x[n, c, i, j]
                y[n, c, oh, ow] = total / divisor
    return y


def avg_pool2d_backward(grad_out, H, W, kernel_h, kernel_w, stride_h, stride_w, pad_h, pad_w, count_include_pad):
    """Inputs: grad_out (N, C, OH, OW), the input's H and W, and the forward's arguments.

    Returns: grad_x (N, C, H, W): each output's gradient divided by its divisor, added to every real cell of
    its window.
    """
    if _is_plain_2x2(H, W, kernel_h, kernel_w, stride_h, stride_w, pad_h, pad_w, *grad_out.shape[2:]):
        return _avg_pool2d_2x2_backward(grad_out, H, W)
    return _avg_pool2d_general_backward(grad_out, H, W, kernel_h, kernel_w, stride_h, stride_w, pad_h, pad_w,
                                        count_include_pad)


@by_size
def _avg_pool2d_2x2_backward(grad_out, H, W):
    """The fast path of ``avg_pool2d_backward``: a quarter of each gradient to each of its four cells."""
    N, C, out_h, out_w = grad_out.shape
    grad_x = np.empty((N, C, H, W), dtype=grad_out.dtype)
    planes = grad_x.reshape(N * C, H * W)
    for p in prange(N * C):
        _zero_plane(planes, p)
        n, c = p // C, p % C
        for oh in range(out_h):
            for ow in range(out_w):
                share = grad_out[n, c, oh, ow] / 4
                grad_x[n, c, 2 * oh, 2 * ow] += share
                grad_x[n, c, 2 * oh, 2 * ow + 1] += share
                grad_x[n, c, 2 * oh + 1, 2 * ow] += share
                grad_x[n, c, 2 * oh + 1, 2 * ow + 1] += share
    return grad_x


@by_size
def _avg_pool2d_general_backward(grad_out, H, W, kernel_h, kernel_w, stride_h, stride_w, pad_h, pad_w,
                                 count_include_pad):
    """The general path of ``avg_pool2d_backward``."""
    N, C, out_h, out_w = grad_out.shape
    grad_x = np.empty((N, C, H, W), dtype=grad_out.dtype)
    planes = grad_x.reshape(N * C, H * W)
    for p in prange(N * C):
        _zero_plane(planes, p)
        n, c = p // C, p % C
        for oh in range(out_h):
            for ow in range(out_w):
                h0, h1, w0, w1, divisor = _avg_window(oh, ow, H, W, kernel_h, kernel_w, stride_h, stride_w,
                                                      pad_h, pad_w, count_include_pad)
                share = grad_out[n, c, oh, ow] / divisor
                for i in range(h0, h1):
                    for j in range(w0, w1):
                        grad_x[n, c, i, j] += share
    return grad_x


@sum_by_size
def global_avg_pool2d_forward(x):
    """Inputs: x (N, C, H, W). Returns: y (N, C, 1, 1), the mean of each plane.

    Each plane is summed in the input's dtype with its additions allowed to reassociate (``sum_by_size``),
    so LLVM keeps several partial sums in one vector instead of a chain of dependent additions; indexed flat
    with unsigned offsets (no test for Python's negative indices in the loop, see ``fast/conv.py``)."""
    N, C, H, W = x.shape
    size = np.uint64(H * W)
    flat = x.ravel()
    y = np.empty((N, C, 1, 1), dtype=x.dtype)
    means = y.reshape(N * C)
    zero = _zero_of(x)
    for p in prange(N * C):
        start = np.uint64(p) * size
        total = zero
        for k in range(size):
            total += flat[start + k]
        means[p] = total / (H * W)
    return y


@parallel_kernel
def global_avg_pool2d_backward(grad_out, H, W):
    """Inputs: grad_out (N, C, 1, 1), the input's H and W. Returns: grad_x (N, C, H, W) = g / (H*W) everywhere.

    Always parallel over the N·C planes: its input is small (N·C numbers) but its output is not."""
    N, C = grad_out.shape[0], grad_out.shape[1]
    grad_x = np.empty((N, C, H, W), dtype=grad_out.dtype)
    planes = grad_x.reshape(N * C, H * W)
    g = grad_out.reshape(N * C)
    for p in prange(N * C):
        share = g[p] / (H * W)
        for k in range(H * W):
            planes[p, k] = share
    return grad_x


_BLUR = (1.0, 2.0, 1.0)          # the binomial filter; [1, 2, 1]ᵀ[1, 2, 1] sums to 16


@kernel
def _reflect(i, size):
    """Index i of a row padded by one reflected cell on each side: −1 → 1, size → size − 2."""
    if i < 0:
        return -i
    if i >= size:
        return 2 * size - 2 - i
    return i


@by_size
def blur_pool2d_forward(x, stride, out_h, out_w):
    """Inputs: x (N, C, H, W) with H, W ≥ 2, the stride, the output size.

    Returns: y (N, C, OH, OW), y[n, c, oh, ow] = Σ_{i, j < 3} b[i]·b[j]/16 · x_reflected[n, c, oh·S + i − 1, ow·S + j − 1].
    """
    N, C, H, W = x.shape
    y = np.empty((N, C, out_h, out_w), dtype=x.dtype)
    for p in prange(N * C):
        n, c = p // C, p % C
        for oh in range(out_h):
            for ow in range(out_w):
                total = 0.0
                for i in range(3):
                    ih = _reflect(oh * stride + i - 1, H)
                    for j in range(3):
                        total += _BLUR[i] * _BLUR[j] * x[n, c, ih, _reflect(ow * stride + j - 1, W)]
                y[n, c, oh, ow] = total / 16.0
    return y


@by_size
def blur_pool2d_backward(grad_out, H, W, stride):
    """Inputs: grad_out (N, C, OH, OW), the input's H and W, the stride.

    Returns: grad_x (N, C, H, W): each output's gradient spread back with the filter's weights; a reflected
    cell's share goes to the real cell it copied (so border cells can receive two shares).
    """
    N, C, out_h, out_w = grad_out.shape
    grad_x = np.empty((N, C, H, W), dtype=grad_out.dtype)
    planes = grad_x.reshape(N * C, H * W)
    for p in prange(N * C):
        _zero_plane(planes, p)
        n, c = p // C, p % C
        for oh in range(out_h):
            for ow in range(out_w):
                g = grad_out[n, c, oh, ow] / 16.0
                for i in range(3):
                    ih = _reflect(oh * stride + i - 1, H)
                    for j in range(3):
                        grad_x[n, c, ih, _reflect(ow * stride + j - 1, W)] += _BLUR[i] * _BLUR[j] * g
    return grad_x
