"""Pooling as loops: max, average, global average and blur pooling, forward and backward (the plain engine).

A pooling window of KH × KW cells slides over each plane of the input with stride S; window (oh, ow) covers
rows h = oh·S_h − P_h + kh·D_h and columns w = ow·S_w − P_w + kw·D_w (D, the dilation, is 1 but for max
pooling). The padding is never read: max pooling treats it as −∞ and average pooling as zeros that count only
where ``count_include_pad`` says so. Shapes: x (N, C, H, W) → y (N, C, OH, OW), OH from ``minicnn/shapes.py``.

    max:      y = the window's largest cell; argmax = its flat index h·W + w in the plane, kept for the backward.
              Ties go to the first cell in row-major order, and a NaN wins (the last NaN, as PyTorch's scan
              ``v > best or isnan(v)`` finds it). A dilated window may hold no real cell at all: its output is
              −∞ and its argmax −1.  Backward: each gradient goes to its window's argmax; where
              windows overlap, a cell's gradients add up.
    average:  y = Σ window / divisor, the divisor being ``divisor_override`` if given, else the window's cells
              clipped to the padded input (``count_include_pad=True``: padding counts, ceil_mode's overhang past
              the padding does not), else its real cells only.  Backward: g / divisor to every real cell.
    global:   y[n, c] = the plane's mean.  Backward: g / (H·W) to every cell.
    blur:     y = Σ_{i, j < 3} b[i]·b[j]/16 · x_reflected[oh·S + i − 1, ow·S + j − 1], b = (1, 2, 1): Zhang's
              anti-aliasing filter, the input padded by reflection (row −1 is row 1).  Backward: each gradient
              spread with the filter's weights; a reflected cell's share goes to the cell it copied.

Every loop nest walks the N·C planes one after the other; each plane is read and written by its own iteration.
"""
import numpy as np
from ._jit import jit

__all__ = ["max_pool2d_forward", "max_pool2d_backward", "avg_pool2d_forward", "avg_pool2d_backward",
           "global_avg_pool2d_forward", "global_avg_pool2d_backward", "blur_pool2d_forward", "blur_pool2d_backward"]


@jit()
def _max_pool(x, y, argmax, kernel_h, kernel_w, stride_h, stride_w, pad_h, pad_w, dil_h, dil_w):
    N, C, H, W = x.shape
    OH, OW = y.shape[2], y.shape[3]
    for p in range(N * C):
        n, c = p // C, p % C
        for oh in range(OH):
            for ow in range(OW):
                best, where = -np.inf, -1            # a window with no real cell (dilated past the input): -inf
                for kh in range(kernel_h):
                    h = oh * stride_h - pad_h + kh * dil_h
                    if 0 <= h < H:
                        for kw in range(kernel_w):
                            w = ow * stride_w - pad_w + kw * dil_w
                            if 0 <= w < W:
                                value = x[n, c, h, w]
                                if where < 0 or value > best or np.isnan(value):
                                    best, where = value, h * W + w
                y[n, c, oh, ow] = best
                argmax[n, c, oh, ow] = where


@jit()
def _max_pool_gradient(grad_y, argmax, grad_x):
    N, C, OH, OW = grad_y.shape
    W = grad_x.shape[3]
    for p in range(N * C):
        n, c = p // C, p % C
        for oh in range(OH):
            for ow in range(OW):
                k = argmax[n, c, oh, ow]
                if k >= 0:                            # -1: a window with no real cell sends nothing back
                    grad_x[n, c, k // W, k % W] += grad_y[n, c, oh, ow]


@jit()
def _avg_window(oh, ow, H, W, kernel_h, kernel_w, stride_h, stride_w, pad_h, pad_w, count_include_pad,
                divisor_override):
    """Window (oh, ow)'s real rows [h0, h1) and columns [w0, w1), and what its sum is divided by."""
    h0, w0 = oh * stride_h - pad_h, ow * stride_w - pad_w
    h1, w1 = min(h0 + kernel_h, H + pad_h), min(w0 + kernel_w, W + pad_w)
    padded_cells = (h1 - h0) * (w1 - w0)                 # the window clipped to the padded input
    h0, h1, w0, w1 = max(h0, 0), min(h1, H), max(w0, 0), min(w1, W)
    if divisor_override > 0:
        return h0, h1, w0, w1, divisor_override
    if count_include_pad:
        return h0, h1, w0, w1, padded_cells
    return h0, h1, w0, w1, (h1 - h0) * (w1 - w0)


@jit()
def _avg_pool(x, y, kernel_h, kernel_w, stride_h, stride_w, pad_h, pad_w, count_include_pad, divisor_override):
    N, C, H, W = x.shape
    OH, OW = y.shape[2], y.shape[3]
    for p in range(N * C):
        n, c = p // C, p % C
        for oh in range(OH):
            for ow in range(OW):
                h0, h1, w0, w1, divisor = _avg_window(oh, ow, H, W, kernel_h, kernel_w, stride_h, stride_w,
                                                      pad_h, pad_w, count_include_pad, divisor_override)
                total = 0.0                               # summed in float64
                for h in range(h0, h1):
                    for w in range(w0, w1):
                        total += x[n, c, h, w]
                y[n, c, oh, ow] = total / divisor


@jit()
def _avg_pool_gradient(grad_y, grad_x, kernel_h, kernel_w, stride_h, stride_w, pad_h, pad_w, count_include_pad,
                       divisor_override):
    N, C, OH, OW = grad_y.shape
    H, W = grad_x.shape[2], grad_x.shape[3]
    for p in range(N * C):
        n, c = p // C, p % C
        for oh in range(OH):
            for ow in range(OW):
                h0, h1, w0, w1, divisor = _avg_window(oh, ow, H, W, kernel_h, kernel_w, stride_h, stride_w,
                                                      pad_h, pad_w, count_include_pad, divisor_override)
                share = grad_y[n, c, oh, ow] / divisor
                for h in range(h0, h1):
                    for w in range(w0, w1):
                        grad_x[n, c, h, w] += share


@jit()
def _reflect(i, size):
    """Index i of a row padded by one reflected cell on each side: −1 → 1, size → size − 2."""
    if size == 1:
        return 0
    if i < 0:
        return -i
    if i >= size:
        return 2 * size - 2 - i
    return i


@jit()
def _blur_pool(x, y, stride):
    N, C, H, W = x.shape
    OH, OW = y.shape[2], y.shape[3]
    b = (1.0, 2.0, 1.0)
    for p in range(N * C):
        n, c = p // C, p % C
        for oh in range(OH):
            for ow in range(OW):
                total = 0.0
                for i in range(3):
                    h = _reflect(oh * stride + i - 1, H)
                    for j in range(3):
                        total += b[i] * b[j] * x[n, c, h, _reflect(ow * stride + j - 1, W)]
                y[n, c, oh, ow] = total / 16.0


@jit()
def _blur_pool_gradient(grad_y, grad_x, stride):
    N, C, OH, OW = grad_y.shape
    H, W = grad_x.shape[2], grad_x.shape[3]
    b = (1.0, 2.0, 1.0)
    for p in range(N * C):
        n, c = p // C, p % C
        for oh in range(OH):
            for ow in range(OW):
                g = grad_y[n, c, oh, ow] / 16.0
                for i in range(3):
                    h = _reflect(oh * stride + i - 1, H)
                    for j in range(3):
                        grad_x[n, c, h, _reflect(ow * stride + j - 1, W)] += b[i] * b[j] * g


# --- the contract (``minicnn/engine.py``): arrays in, arrays out; settings checked by ``minicnn/shapes.py`` ----

def max_pool2d_forward(x, kernel, stride, padding, dilation, out_size):
    """x (N, C, H, W) → (y, argmax), both (N, C, OH, OW); argmax int64, each the flat index h·W + w of the winner."""
    N, C = x.shape[:2]
    y = np.empty((N, C) + tuple(out_size), dtype=x.dtype)
    argmax = np.empty((N, C) + tuple(out_size), dtype=np.int64)
    _max_pool(x, y, argmax, *kernel, *stride, *padding, *dilation)
    return y, argmax


def max_pool2d_backward(grad_y, argmax, in_size):
    """grad_y, argmax (N, C, OH, OW), the input's (H, W) → grad_x (N, C, H, W)."""
    grad_x = np.zeros(grad_y.shape[:2] + tuple(in_size), dtype=grad_y.dtype)
    _max_pool_gradient(grad_y, argmax, grad_x)
    return grad_x


def avg_pool2d_forward(x, kernel, stride, padding, out_size, count_include_pad, divisor_override):
    """x (N, C, H, W) → y (N, C, OH, OW). ``divisor_override``: None, or the positive int every sum is divided by."""
    y = np.empty(x.shape[:2] + tuple(out_size), dtype=x.dtype)
    _avg_pool(x, y, *kernel, *stride, *padding, count_include_pad, divisor_override or 0)
    return y


def avg_pool2d_backward(grad_y, in_size, kernel, stride, padding, count_include_pad, divisor_override):
    """grad_y (N, C, OH, OW), the input's (H, W) and the forward's settings → grad_x (N, C, H, W)."""
    grad_x = np.zeros(grad_y.shape[:2] + tuple(in_size), dtype=grad_y.dtype)
    _avg_pool_gradient(grad_y, grad_x, *kernel, *stride, *padding, count_include_pad, divisor_override or 0)
    return grad_x


def global_avg_pool2d_forward(x):
    """x (N, C, H, W) → y (N, C, 1, 1), each plane's mean."""
    return x.mean(axis=(2, 3), keepdims=True, dtype=np.float64).astype(x.dtype)


def global_avg_pool2d_backward(grad_y, in_size):
    """grad_y (N, C, 1, 1), the input's (H, W) → grad_x (N, C, H, W): an equal share g / (H·W) everywhere."""
    H, W = in_size
    return np.broadcast_to(grad_y / (H * W), grad_y.shape[:2] + (H, W)).copy()


def blur_pool2d_forward(x, stride, out_size):
    """x (N, C, H, W) → y (N, C, OH, OW), OH = ceil(H / stride)."""
    y = np.empty(x.shape[:2] + tuple(out_size), dtype=x.dtype)
    _blur_pool(x, y, stride)
    return y


def blur_pool2d_backward(grad_y, in_size, stride):
    """grad_y (N, C, OH, OW), the input's (H, W) → grad_x (N, C, H, W)."""
    grad_x = np.zeros(grad_y.shape[:2] + tuple(in_size), dtype=grad_y.dtype)
    _blur_pool_gradient(grad_y, grad_x, stride)
    return grad_x
