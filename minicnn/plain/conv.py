"""2-D convolution: the plain engine's ``conv2d_forward`` and ``conv2d_backward``, as the textbook computes it.

The definition (a cross-correlation, as every deep-learning library computes it), with stride S, padding P,
dilation D and G groups of channels::

    y[n, co, oh, ow] = bias[co] + Σ_{ci, kh, kw} weight[co, ci, kh, kw] · x[n, g·C_in/G + ci, h, w]
        h = oh·S_h + kh·D_h − P_h,   w = ow·S_w + kw·D_w − P_w,   g = co // (C_out/G)  (co's group)
        OH = floor((H + 2P_h − D_h·(KH − 1) − 1) / S_h) + 1          (``minicnn/shapes.py``)

A tap (h, w) outside the input reads a padded zero. Shapes: x (N, C_in, H, W), weight (C_out, C_in/G, KH, KW),
bias (C_out,), y (N, C_out, OH, OW).

How it is computed: the sum above is a matrix product in disguise. Copy every window of the input into one
column of a matrix (``_im2col``, a loop nest: row (ci, kh, kw), column (n, oh, ow) holds the tap x[n, ci, h, w]
or 0), and each group's output is its filters, as rows, times its columns::

    cols   (C_in·KH·KW, N·OH·OW)        y_g = W_g (C_out/G, C_in/G·KH·KW) @ cols_g        (BLAS, through numpy)

The backward pass is the same product turned around. Each output cell read a window through its filter, so:

    grad_W_g    = grad_y_g @ cols_gᵀ          (what each weight multiplied, summed over every window)
    grad_cols_g = W_gᵀ @ grad_y_g             (what each tap of each window sent back)
    grad_x      = _col2im(grad_cols)          (each window's taps added back where they were read:
                                               overlapping windows add up, padding is dropped)
    grad_bias   = Σ_{n, oh, ow} grad_y

The loops copy; the products do the arithmetic, on every core, in numpy's BLAS. The fast engine
(``minicnn/fast/conv.py``) computes the same numbers without ever forming ``cols``.
"""
import numpy as np

from ._jit import jit
from .activation import relu_backward, relu_forward

__all__ = ["conv2d_forward", "conv2d_backward", "Saved"]


class Saved:
    """What the forward keeps for the backward: ``x`` (the input, kept only when the weight gradient will be
    wanted) and ``y`` (the output, kept only when the ReLU was fused in, to mask the gradient with)."""
    __slots__ = ("x", "y")

    def __init__(self, x, y):
        self.x, self.y = x, y


@jit()
def _im2col(x, KH, KW, stride_h, stride_w, pad_h, pad_w, dil_h, dil_w, OH, OW, cols):
    """cols[(ci·KH + kh)·KW + kw, (n·OH + oh)·OW + ow] = x[n, ci, h, w], or 0 where (h, w) is padding."""
    N, C_in, H, W = x.shape
    for ci in range(C_in):
        for kh in range(KH):
            for kw in range(KW):
                row = (ci * KH + kh) * KW + kw
                for n in range(N):
                    for oh in range(OH):
                        h = oh * stride_h + kh * dil_h - pad_h
                        for ow in range(OW):
                            w = ow * stride_w + kw * dil_w - pad_w
                            inside = 0 <= h < H and 0 <= w < W
                            cols[row, (n * OH + oh) * OW + ow] = x[n, ci, h, w] if inside else 0


@jit()
def _col2im(cols, KH, KW, stride_h, stride_w, pad_h, pad_w, dil_h, dil_w, OH, OW, grad_x):
    """The adjoint of ``_im2col``: grad_x (zeros on entry) += each column entry, where its tap was read."""
    N, C_in, H, W = grad_x.shape
    for ci in range(C_in):
        for kh in range(KH):
            for kw in range(KW):
                row = (ci * KH + kh) * KW + kw
                for n in range(N):
                    for oh in range(OH):
                        h = oh * stride_h + kh * dil_h - pad_h
                        if 0 <= h < H:
                            for ow in range(OW):
                                w = ow * stride_w + kw * dil_w - pad_w
                                if 0 <= w < W:
                                    grad_x[n, ci, h, w] += cols[row, (n * OH + oh) * OW + ow]


def _columns(x, weight_shape, stride, padding, dilation, out_size):
    """``cols`` (C_in·KH·KW, N·OH·OW) of x: every window as a column."""
    N, C_in = x.shape[:2]
    KH, KW = weight_shape[2:]
    cols = np.empty((C_in * KH * KW, N * out_size[0] * out_size[1]), dtype=x.dtype)
    _im2col(x, KH, KW, *stride, *padding, *dilation, *out_size, cols)
    return cols


def conv2d_forward(x, weight, bias, stride, padding, dilation, groups, out_size, relu=False, keep_input=False):
    """The contract's convolution (``minicnn/engine.py``).

    Inputs: x (N, C_in, H, W), weight (C_out, C_in/groups, KH, KW), bias (C_out,) or None, all C-contiguous and
    of one dtype; stride, padding, dilation, out_size as (height, width) pairs and groups an int, checked by
    ``minicnn/shapes.py``. ``relu``: return max(y, 0). ``keep_input``: the weight gradient will be wanted.
    Returns: (y (N, C_out, OH, OW), saved), ``saved`` to hand back to ``conv2d_backward``.
    """
    N, C_out = x.shape[0], weight.shape[0]
    cols = _columns(x, weight.shape, stride, padding, dilation, out_size)
    y = np.empty((C_out, cols.shape[1]), dtype=x.dtype)                     # (C_out, N·OH·OW)
    for rows, taps in _groups(C_out, cols.shape[0], groups):
        y[rows] = weight[rows].reshape(rows.stop - rows.start, -1) @ cols[taps]
    if bias is not None:
        y += bias[:, None]
    y = np.ascontiguousarray(y.reshape((C_out, N) + tuple(out_size)).transpose(1, 0, 2, 3))
    if relu:
        y = relu_forward(y)
    return y, Saved(x if keep_input else None, y if relu else None)


def conv2d_backward(grad_y, weight, saved, x_shape, stride, padding, dilation, groups, need_input, need_weight,
                    need_bias):
    """The gradients of ``conv2d_forward`` that are wanted (None for the others).

    Inputs: grad_y (N, C_out, OH, OW), the forward's weight, its ``saved``, the input's shape and the forward's
    settings. Returns: (grad_x (N, C_in, H, W), grad_w (C_out, C_in/groups, KH, KW), grad_bias (C_out,)).
    """
    if saved.y is not None:
        grad_y = relu_backward(grad_y, saved.y)                 # through the fused ReLU first: zero where it cut
    C_out, out_size = weight.shape[0], grad_y.shape[2:]
    grad = grad_y.transpose(1, 0, 2, 3).reshape(C_out, -1)       # (C_out, N·OH·OW), as the forward's product
    grad_x = grad_w = grad_b = None
    taps_per_group = weight[0].size
    if need_input:
        grad_cols = np.empty((taps_per_group * groups, grad.shape[1]), dtype=grad.dtype)
        for rows, taps in _groups(C_out, grad_cols.shape[0], groups):
            grad_cols[taps] = weight[rows].reshape(rows.stop - rows.start, -1).T @ grad[rows]
        grad_x = np.zeros(x_shape, dtype=grad.dtype)
        _col2im(grad_cols, *weight.shape[2:], *stride, *padding, *dilation, *out_size, grad_x)
    if need_weight:
        cols = _columns(saved.x, weight.shape, stride, padding, dilation, out_size)
        grad_w = np.empty(weight.shape, dtype=grad.dtype)
        for rows, taps in _groups(C_out, cols.shape[0], groups):
            grad_w[rows] = (grad[rows] @ cols[taps].T).reshape(grad_w[rows].shape)
    if need_bias:
        grad_b = grad.sum(axis=1)
    return grad_x, grad_w, grad_b


def _groups(C_out, taps, groups):
    """For each group, its filters' rows and its columns' rows: (slice of C_out, slice of the taps)."""
    per_out, per_tap = C_out // groups, taps // groups
    return [(slice(g * per_out, (g + 1) * per_out), slice(g * per_tap, (g + 1) * per_tap)) for g in range(groups)]
