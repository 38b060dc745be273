"""Max, average and global average pooling as the definitions read (twin of ``minicnn/kernels/pool.py``).

Each output cell looks at one window of its input plane, clipped to the real cells (padding is never read).
"""
import numpy as np


def _window(oh, ow, H, W, kernel_h, kernel_w, stride_h, stride_w, pad_h, pad_w):
    """The rows [h0, h1) and columns [w0, w1) of window (oh, ow), clipped to the H × W input."""
    h0, w0 = oh * stride_h - pad_h, ow * stride_w - pad_w
    return max(h0, 0), min(h0 + kernel_h, H), max(w0, 0), min(w0 + kernel_w, W)


def _divisor(oh, ow, H, W, kernel_h, kernel_w, stride_h, stride_w, pad_h, pad_w, count_include_pad):
    """What average pooling divides window (oh, ow)'s sum by (PyTorch's rule)."""
    h0, h1, w0, w1 = _window(oh, ow, H, W, kernel_h, kernel_w, stride_h, stride_w, pad_h, pad_w)
    if not count_include_pad:
        return (h1 - h0) * (w1 - w0)                       # real cells only
    top, left = oh * stride_h - pad_h, ow * stride_w - pad_w
    bottom, right = min(top + kernel_h, H + pad_h), min(left + kernel_w, W + pad_w)
    return (bottom - top) * (right - left)                  # padding counts; ceil_mode's overhang does not


def max_pool2d_forward(x, kernel_h, kernel_w, stride_h, stride_w, pad_h, pad_w, out_h, out_w):
    """x (N, C, H, W) → (y, argmax), both (N, C, OH, OW); argmax is the flat index row * W + col of the winner."""
    N, C, H, W = x.shape
    y = np.zeros((N, C, out_h, out_w), dtype=x.dtype)
    argmax = np.zeros((N, C, out_h, out_w), dtype=np.int64)
    for n in range(N):
        for c in range(C):
            for oh in range(out_h):
                for ow in range(out_w):
                    h0, h1, w0, w1 = _window(oh, ow, H, W, kernel_h, kernel_w, stride_h, stride_w, pad_h, pad_w)
                    window = x[n, c, h0:h1, w0:w1]
                    nans = np.flatnonzero(np.isnan(window))
                    # a NaN wins (the last one, as PyTorch's `v > best or isnan(v)` scan finds); else the first maximum
                    k = nans[-1] if nans.size else np.argmax(window)
                    i, j = divmod(int(k), w1 - w0)
                    y[n, c, oh, ow] = window[i, j]
                    argmax[n, c, oh, ow] = (h0 + i) * W + (w0 + j)
    return y, argmax


def max_pool2d_backward(grad_out, argmax, H, W):
    """grad_out, argmax (N, C, OH, OW) → grad_x (N, C, H, W): each gradient goes to its window's winner."""
    N, C, out_h, out_w = grad_out.shape
    grad_x = np.zeros((N, C, H, W), dtype=grad_out.dtype)
    for n in range(N):
        for c in range(C):
            for oh in range(out_h):
                for ow in range(out_w):
                    i, j = divmod(int(argmax[n, c, oh, ow]), W)
                    grad_x[n, c, i, j] += grad_out[n, c, oh, ow]
    return grad_x


def avg_pool2d_forward(x, kernel_h, kernel_w, stride_h, stride_w, pad_h, pad_w, out_h, out_w, count_include_pad):
    """x (N, C, H, W) → y (N, C, OH, OW): each window's sum over its divisor."""
    N, C, H, W = x.shape
    y = np.zeros((N, C, out_h, out_w), dtype=x.dtype)
    geometry = (kernel_h, kernel_w, stride_h, stride_w, pad_h, pad_w)
    for oh in range(out_h):
        for ow in range(out_w):
            h0, h1, w0, w1 = _window(oh, ow, H, W, *geometry)
            divisor = _divisor(oh, ow, H, W, *geometry, count_include_pad)
            y[:, :, oh, ow] = x[:, :, h0:h1, w0:w1].sum(axis=(2, 3)) / divisor
    return y


def avg_pool2d_backward(grad_out, H, W, kernel_h, kernel_w, stride_h, stride_w, pad_h, pad_w, count_include_pad):
    """grad_out (N, C, OH, OW) → grad_x (N, C, H, W): g / divisor added to every real cell of the window."""
    N, C, out_h, out_w = grad_out.shape
    grad_x = np.zeros((N, C, H, W), dtype=grad_out.dtype)
    geometry = (kernel_h, kernel_w, stride_h, stride_w, pad_h, pad_w)
    for oh in range(out_h):
        for ow in range(out_w):
            h0, h1, w0, w1 = _window(oh, ow, H, W, *geometry)
            divisor = _divisor(oh, ow, H, W, *geometry, count_include_pad)
            grad_x[:, :, h0:h1, w0:w1] += (grad_out[:, :, oh, ow] / divisor)[:, :, None, None]
    return grad_x


def global_avg_pool2d_forward(x):
    """x (N, C, H, W) → y (N, C, 1, 1): the mean of each plane."""
    return x.mean(axis=(2, 3), keepdims=True)


def global_avg_pool2d_backward(grad_out, H, W):
    """grad_out (N, C, 1, 1) → grad_x (N, C, H, W): every cell gets an equal share g / (H·W)."""
    return np.broadcast_to(grad_out / (H * W), grad_out.shape[:2] + (H, W)).copy()


BLUR = np.outer([1.0, 2.0, 1.0], [1.0, 2.0, 1.0]) / 16.0      # Zhang's 3 × 3 binomial low-pass filter


def blur_pool2d_forward(x, stride, out_h, out_w):
    """x (N, C, H, W) → y (N, C, OH, OW): pad each plane by reflection, then every S-th 3 × 3 window · BLUR."""
    xp = np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1)), mode="reflect")
    N, C = x.shape[:2]
    y = np.zeros((N, C, out_h, out_w), dtype=x.dtype)
    for oh in range(out_h):
        for ow in range(out_w):
            window = xp[:, :, oh * stride:oh * stride + 3, ow * stride:ow * stride + 3]
            y[:, :, oh, ow] = np.sum(window * BLUR, axis=(2, 3))
    return y


def blur_pool2d_backward(grad_out, H, W, stride):
    """grad_out (N, C, OH, OW) → grad_x (N, C, H, W): the gradient of the padded input, with each reflected
    border cell's gradient added back onto the real cell it mirrors."""
    N, C, out_h, out_w = grad_out.shape
    grad_xp = np.zeros((N, C, H + 2, W + 2), dtype=grad_out.dtype)
    for oh in range(out_h):
        for ow in range(out_w):
            grad_xp[:, :, oh * stride:oh * stride + 3, ow * stride:ow * stride + 3] += (
                grad_out[:, :, oh, ow, None, None] * BLUR)
    grad_xp[:, :, 2, :] += grad_xp[:, :, 0, :]             # padded row −1 was a copy of row 1
    grad_xp[:, :, H - 1, :] += grad_xp[:, :, H + 1, :]     # padded row H was a copy of row H − 2
    grad_xp[:, :, :, 2] += grad_xp[:, :, :, 0]
    grad_xp[:, :, :, W - 1] += grad_xp[:, :, :, W + 1]
    return grad_xp[:, :, 1:H + 1, 1:W + 1]
