"""Output sizes and argument checks: written once, used by every floor.

Every convolution and pooling op slides a window of size K with step S over an input of size H padded by P on
both sides; with dilation D the window's taps stand D apart, so it spans D·(K − 1) + 1 cells. The number of
window positions is the one formula of this file (PyTorch's, from its documentation of ``Conv2d``,
``MaxPool2d`` and ``AvgPool2d``)::

    OH = floor((H + 2P − D·(K − 1) − 1) / S) + 1             (ceil_mode=False)
    OH = ceil((H + 2P − D·(K − 1) − 1) / S) + 1, minus one if (ceil_mode=True)
         the last window would start at or beyond H + P, so that every window starts inside the input or its
         left padding

Example: H=7, K=2, S=2 gives floor(5/2)+1 = 3 windows; with ceil_mode 4, the last one covering column 6 alone.

The checks raise ``ValueError``/``TypeError`` naming the argument, what was expected and what came, *before* a
kernel runs: inside Numba bounds checks are off, so a bad size there would read or write the wrong memory.
Nothing here imports numba; these are plain Python functions on shapes (tuples of ints).
"""
from __future__ import annotations

import numbers

__all__ = ["pair", "output_size", "conv2d_args", "same_padding", "check_groups", "conv2d_geometry", "pool2d_args", "pool2d_geometry",
           "check_input_ndim", "check_same_dtype"]


def pair(value, name: str, op: str) -> tuple[int, int]:
    """Turn an int or a pair of ints into a ``(height, width)`` tuple, as PyTorch's ``_pair`` does.

    >>> pair(3, "kernel_size", "conv2d")
    (3, 3)
    >>> pair((2, 1), "stride", "max_pool2d")
    (2, 1)
    """
    if isinstance(value, numbers.Integral) and not isinstance(value, bool):
        return int(value), int(value)
    if (isinstance(value, (tuple, list)) and len(value) == 2
            and all(isinstance(v, numbers.Integral) and not isinstance(v, bool) for v in value)):
        return int(value[0]), int(value[1])
    raise TypeError(f"{op}: {name} must be an int or a pair of ints, got {value!r}")


def output_size(size: int, kernel: int, stride: int, padding: int, ceil_mode: bool = False, dilation: int = 1) -> int:
    """The number of window positions along one axis (the formula in the module docstring).

    >>> output_size(28, 5, 1, 2)        # Conv2d(1, 6, 5, padding=2) keeps 28
    28
    >>> output_size(7, 2, 2, 0), output_size(7, 2, 2, 0, ceil_mode=True)
    (3, 4)
    >>> output_size(5, 2, 2, 1, ceil_mode=True)   # a 4th window would start in the right padding
    3
    """
    span = size + 2 * padding - dilation * (kernel - 1) - 1
    if ceil_mode:
        out = -(-span // stride) + 1          # ceil division on integers
        if (out - 1) * stride >= size + padding:
            out -= 1
    else:
        out = span // stride + 1
    return out


def check_input_ndim(shape: tuple, op: str) -> None:
    """Refuse inputs that are neither (C, H, W) nor (N, C, H, W), and any with 0 channels, rows or columns (a
    batch of 0 images is fine, as in PyTorch)."""
    if len(shape) not in (3, 4):
        raise ValueError(f"{op}: expected a 4-D (N, C, H, W) or 3-D (C, H, W) input, "
                         f"got {len(shape)}-D input of shape {tuple(shape)}")
    for name, size in zip(("C", "H", "W"), shape[-3:]):
        if size == 0:
            raise ValueError(f"{op}: expected an input with non-zero C, H and W (only the batch N may be 0), "
                             f"got {name} = 0 in input of shape {tuple(shape)}")


def _check_positive(values, name, op):
    if min(values) <= 0:
        raise ValueError(f"{op}: {name} must be positive, got {values}")


def _check_non_negative(values, name, op):
    if min(values) < 0:
        raise ValueError(f"{op}: {name} must be non-negative, got {values}")


def conv2d_args(kernel_size, stride, padding, op: str = "conv2d", dilation=1):
    """Check a convolution's settings; return ``(kernel, stride, padding, dilation)`` as pairs of ints, padding
    as the strings ``'same'`` or ``'valid'`` when given so (see ``same_padding``)."""
    kernel = pair(kernel_size, "kernel_size", op)
    stride = pair(stride, "stride", op)
    dilation = pair(dilation, "dilation", op)
    _check_positive(kernel, "kernel_size", op)
    _check_positive(stride, "stride", op)
    _check_positive(dilation, "dilation", op)
    if isinstance(padding, str):
        if padding not in ("same", "valid"):
            raise ValueError(f"{op}: padding must be an int, a pair of ints, 'same' or 'valid', got {padding!r}")
        if padding == "same" and stride != (1, 1):
            raise ValueError(f"{op}: padding='same' is not supported for strided convolutions (stride {stride})")
        return kernel, stride, padding, dilation
    padding = pair(padding, "padding", op)
    _check_non_negative(padding, "padding", op)
    return kernel, stride, padding, dilation


def same_padding(kernel, dilation):
    """The zeros ``padding='same'`` adds, as ((top, bottom), (left, right)): D·(K − 1) in all along each axis,
    half before and the rest after, so an even kernel's extra zero goes to the bottom and right (PyTorch's
    rule). With stride 1 the output then has the input's size.

    >>> same_padding((3, 4), (1, 1))
    ((1, 1), (1, 2))
    """
    return tuple((d * (k - 1) // 2, d * (k - 1) - d * (k - 1) // 2) for k, d in zip(kernel, dilation))


def check_groups(groups, in_channels, out_channels, op: str) -> int:
    """Check ``groups``: a positive int dividing both channel counts. Returns it as an int."""
    if not isinstance(groups, numbers.Integral) or isinstance(groups, bool) or groups <= 0:
        raise ValueError(f"{op}: groups must be a positive int, got {groups!r}")
    for name, channels in (("in_channels", in_channels), ("out_channels", out_channels)):
        if channels % groups:
            raise ValueError(f"{op}: {name} ({channels}) must be divisible by groups ({groups})")
    return int(groups)


def conv2d_geometry(x_shape, w_shape, stride, padding, dilation=1, groups=1):
    """Check a convolution's arguments; return ``(stride, padding, dilation, groups, (OH, OW))``.

    ``x_shape`` is (N, C_in, H, W) (or (C_in, H, W)); ``w_shape`` is (C_out, C_in / groups, KH, KW).
    """
    op = "conv2d"
    check_input_ndim(x_shape, op)
    if len(w_shape) != 4:
        raise ValueError(f"{op}: expected weight of shape (C_out, C_in/groups, KH, KW) (4-D), "
                         f"got {len(w_shape)}-D weight of shape {tuple(w_shape)}")
    (kh, kw), stride, padding, dilation = conv2d_args(w_shape[2:], stride, padding, op, dilation)
    c_in, h, w = x_shape[-3:]
    groups = check_groups(groups, c_in, w_shape[0], op)
    if c_in != w_shape[1] * groups:
        raise ValueError(f"{op}: expected input with {w_shape[1] * groups} channels (weight of shape "
                         f"{tuple(w_shape)}, groups={groups}), got {c_in} channels in input of shape {tuple(x_shape)}")
    span = (dilation[0] * (kh - 1) + 1, dilation[1] * (kw - 1) + 1)
    if h + 2 * padding[0] < span[0] or w + 2 * padding[1] < span[1]:
        spread = f" (spanning {span} with dilation {dilation})" if dilation != (1, 1) else ""
        raise ValueError(f"{op}: kernel_size {(kh, kw)}{spread} is larger than the padded input "
                         f"{(h + 2 * padding[0], w + 2 * padding[1])} (input {(h, w)}, padding {padding})")
    out = (output_size(h, kh, stride[0], padding[0], dilation=dilation[0]),
           output_size(w, kw, stride[1], padding[1], dilation=dilation[1]))
    return stride, padding, dilation, groups, out


def pool2d_args(kernel_size, stride, padding, op: str, dilation=1):
    """Check a pooling op's settings; return ``(kernel, stride, padding, dilation)`` as pairs of ints.

    ``stride=None`` means ``stride = kernel_size`` (PyTorch's default). Padding may be at most half the kernel
    (PyTorch's rule, dilation or not), so that every window holds at least one real cell.
    """
    kernel = pair(kernel_size, "kernel_size", op)
    stride = kernel if stride is None else pair(stride, "stride", op)
    padding = pair(padding, "padding", op)
    dilation = pair(dilation, "dilation", op)
    _check_positive(kernel, "kernel_size", op)
    _check_positive(stride, "stride", op)
    _check_non_negative(padding, "padding", op)
    _check_positive(dilation, "dilation", op)
    if padding[0] > kernel[0] // 2 or padding[1] > kernel[1] // 2:
        raise ValueError(f"{op}: padding must be at most half of kernel_size {kernel}, "
                         f"i.e. at most {(kernel[0] // 2, kernel[1] // 2)}, got {padding}")
    return kernel, stride, padding, dilation


def pool2d_geometry(x_shape, kernel_size, stride, padding, ceil_mode, op, dilation=1):
    """Check a pooling op's arguments; return ``(kernel, stride, padding, dilation, (OH, OW))`` as pairs of ints.

    There must be at least one window on each axis.
    """
    check_input_ndim(x_shape, op)
    kernel, stride, padding, dilation = pool2d_args(kernel_size, stride, padding, op, dilation)
    h, w = x_shape[-2:]
    out = (output_size(h, kernel[0], stride[0], padding[0], ceil_mode, dilation[0]),
           output_size(w, kernel[1], stride[1], padding[1], ceil_mode, dilation[1]))
    if out[0] < 1 or out[1] < 1:
        raise ValueError(f"{op}: kernel_size {kernel} is larger than the padded input "
                         f"{(h + 2 * padding[0], w + 2 * padding[1])}: output size would be {out}")
    return kernel, stride, padding, dilation, out


def check_same_dtype(op: str, **arrays) -> None:
    """Layers compute in one dtype: refuse, by name, a float64 input to a float32 layer (or the reverse).

    ``arrays`` maps names to anything with a ``.dtype`` (None entries are skipped).
    """
    dtypes = {name: a.dtype for name, a in arrays.items() if a is not None}
    if len(set(dtypes.values())) > 1:
        names = ", ".join(f"{name}={dtype}" for name, dtype in dtypes.items())
        raise TypeError(f"{op}: {', '.join(dtypes)} must have the same dtype, got {names}; convert the input "
                        "(Tensor(x, dtype=...)) or the model (model.to(np.float64))")
