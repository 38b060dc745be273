"""2-D convolution as the definition reads (twin of ``minicnn/kernels/conv.py``).

    y[n, co, oh, ow] = bias[co] + sum_{ci, kh, kw} weight[co, ci, kh, kw] * xp[n, ci, oh*S + kh, ow*S + kw]

One output cell at a time: cut the window out of the padded input, multiply by the filter, sum.
"""
import numpy as np


def pad2d(x, pad_h, pad_w):
    """``x`` (N, C, H, W) with ``pad_h`` rows and ``pad_w`` columns of zeros added on each side."""
    return np.pad(x, ((0, 0), (0, 0), (pad_h, pad_h), (pad_w, pad_w)))


def conv2d_forward(x, weight, bias, stride_h, stride_w, pad_h, pad_w, out_h, out_w, relu=False):
    """x (N, C_in, H, W), weight (C_out, C_in, KH, KW), bias (C_out,) → y (N, C_out, OH, OW); max(y, 0) when
    ``relu`` (NaN stays NaN, as in ``reference/activation.py``)."""
    N = x.shape[0]
    C_out, _, KH, KW = weight.shape
    xp = pad2d(x, pad_h, pad_w)
    y = np.zeros((N, C_out, out_h, out_w), dtype=x.dtype)
    for n in range(N):
        for co in range(C_out):
            for oh in range(out_h):
                for ow in range(out_w):
                    top, left = oh * stride_h, ow * stride_w
                    window = xp[n, :, top:top + KH, left:left + KW]        # (C_in, KH, KW)
                    y[n, co, oh, ow] = np.sum(window * weight[co]) + bias[co]
    return np.where(y <= 0, 0, y).astype(y.dtype) if relu else y


def conv2d_backward_input(grad_out, weight, H, W, stride_h, stride_w, pad_h, pad_w):
    """grad_out (N, C_out, OH, OW), weight → grad_x (N, C_in, H, W).

    Every output cell sent ``weight[co] * g`` back onto the window it read; overlapping windows add up.
    """
    N, C_out, out_h, out_w = grad_out.shape
    _, C_in, KH, KW = weight.shape
    grad_xp = np.zeros((N, C_in, H + 2 * pad_h, W + 2 * pad_w), dtype=grad_out.dtype)
    for n in range(N):
        for co in range(C_out):
            for oh in range(out_h):
                for ow in range(out_w):
                    top, left = oh * stride_h, ow * stride_w
                    grad_xp[n, :, top:top + KH, left:left + KW] += weight[co] * grad_out[n, co, oh, ow]
    return grad_xp[:, :, pad_h:pad_h + H, pad_w:pad_w + W]


def conv2d_backward_weight(grad_out, x, KH, KW, stride_h, stride_w, pad_h, pad_w):
    """grad_out (N, C_out, OH, OW), x (N, C_in, H, W) → grad_weight (C_out, C_in, KH, KW).

    Every output cell adds ``g * window`` to its filter's gradient: the window is what the filter was multiplied by.
    """
    N, C_out, out_h, out_w = grad_out.shape
    C_in = x.shape[1]
    xp = pad2d(x, pad_h, pad_w)
    grad_w = np.zeros((C_out, C_in, KH, KW), dtype=grad_out.dtype)
    for n in range(N):
        for co in range(C_out):
            for oh in range(out_h):
                for ow in range(out_w):
                    top, left = oh * stride_h, ow * stride_w
                    grad_w[co] += grad_out[n, co, oh, ow] * xp[n, :, top:top + KH, left:left + KW]
    return grad_w


def im2col(x, KH, KW, stride_h, stride_w, pad_h, pad_w, out_h, out_w):
    """Every KH × KW window of the padded x, flattened into one column: (N, C_in·KH·KW, OH·OW).

    Column ``oh·OW + ow`` of ``cols[n]`` is window (oh, ow) of image n, read channel by channel, row by row.
    """
    N, C_in = x.shape[:2]
    xp = pad2d(x, pad_h, pad_w)
    cols = np.zeros((N, C_in * KH * KW, out_h * out_w), dtype=x.dtype)
    for n in range(N):
        for oh in range(out_h):
            for ow in range(out_w):
                top, left = oh * stride_h, ow * stride_w
                cols[n, :, oh * out_w + ow] = xp[n, :, top:top + KH, left:left + KW].ravel()
    return cols


def col2im(cols, C_in, H, W, KH, KW, stride_h, stride_w, pad_h, pad_w, out_h, out_w):
    """The adjoint of im2col: each column is added back onto its window; what lands on padding is dropped."""
    N = cols.shape[0]
    xp = np.zeros((N, C_in, H + 2 * pad_h, W + 2 * pad_w), dtype=cols.dtype)
    for n in range(N):
        for oh in range(out_h):
            for ow in range(out_w):
                top, left = oh * stride_h, ow * stride_w
                column = cols[n, :, oh * out_w + ow]
                xp[n, :, top:top + KH, left:left + KW] += column.reshape(C_in, KH, KW)
    return xp[:, :, pad_h:pad_h + H, pad_w:pad_w + W]
