"""``conv2d``: the differentiable 2-D convolution.

The path a reader follows: ``nn.Conv2d.forward`` → ``conv2d`` here (checks the arguments through
``minicnn/shapes.py``, calls the engine contract, saves what backward needs) → ``minicnn/plain/conv.py`` (the
loops, forward and backward, with the formulas).

    y[n, co, oh, ow] = bias[co] + Σ_{ci, kh, kw} weight[co, ci, kh, kw] · x_padded[n, ci, oh·S + kh·D, ow·S + kw·D]
    OH = floor((H + 2P − D·(KH − 1) − 1) / S) + 1

Backward computes only the gradients that are wanted: the input gradient of a network's first layer (whose
input is an image without ``requires_grad``) is never computed, nor a frozen weight's; and the forward keeps
the input only when the weight gradient will be wanted.

``conv2d_relu`` is ``relu(conv2d(...))`` in one pass: the engine applies the ReLU as it stores each output, and
its backward masks the gradient where the output is 0, as ReLU's does, before the convolution's own. The
numbers are the same as the two ops'. ``nn.Conv2dReLU`` (made by ``nn.fuse``) runs it.
"""
import functools

import numpy as np

from .. import engine
from ..autograd import Function
from ..shapes import check_same_dtype, conv2d_args, conv2d_geometry, same_padding
from ..tensor import Tensor, as_tensor
from ._batch import run_batched
from .shape import pad as F_pad

__all__ = ["conv2d", "conv2d_relu"]


class Conv2d(Function):
    """Inputs: x (N, C_in, H, W), weight (C_out, C_in/groups, KH, KW), bias (C_out,) or None.
    Settings: stride, padding, dilation, out_size (checked (height, width) pairs), groups; relu (the output
    through max(·, 0)). Output: (N, C_out, OH, OW)."""

    @staticmethod
    def forward(ctx, x, weight, bias, *, stride, padding, dilation, groups, out_size, relu=False):
        x, weight = np.ascontiguousarray(x), np.ascontiguousarray(weight)
        ctx.settings = (stride, padding, dilation, groups)
        ctx.x_shape = x.shape
        y, saved = engine.conv2d_forward(x, weight, bias, *ctx.settings, out_size, relu=relu,
                                         keep_input=ctx.needs_input_grad[1])
        ctx.save_for_backward(saved, weight)
        return y

    @staticmethod
    def backward(ctx, grad):
        saved, weight = ctx.saved
        return engine.conv2d_backward(np.ascontiguousarray(grad), weight, saved, ctx.x_shape, *ctx.settings,
                                      *ctx.needs_input_grad)


def conv2d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1) -> Tensor:
    """2-D convolution (cross-correlation) of ``input`` with ``weight``, plus ``bias`` (``torch.nn.functional.conv2d``).

    Args:
        input: (N, C_in, H, W), or (C_in, H, W) for one image.
        weight: (C_out, C_in / groups, KH, KW).
        bias: (C_out,) or None.
        stride, padding, dilation: an int or a (height, width) pair; padding adds zeros on both sides (or
            ``'same'``: the output keeps the input's size, stride 1 only; ``'valid'``: none), dilation spaces
            the kernel's taps.
        groups: split the channels into this many groups, each convolved with its own filters
            (``groups == C_in``: depthwise).
    Returns:
        (N, C_out, OH, OW) with OH = floor((H + 2·padding − dilation·(KH − 1) − 1) / stride) + 1.

    >>> import numpy as np, minicnn as mc, minicnn.functional as F
    >>> F.conv2d(mc.Tensor(np.ones((1, 1, 28, 28))), mc.Tensor(np.ones((6, 1, 5, 5))), padding=2).shape
    (1, 6, 28, 28)
    """
    return _conv2d("conv2d", input, weight, bias, stride, padding, dilation, groups, relu=False)


def conv2d_relu(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1) -> Tensor:
    """``relu(conv2d(input, weight, bias, stride, padding, dilation, groups))`` in one pass (see the module
    docstring); same arguments and result as that."""
    return _conv2d("conv2d_relu", input, weight, bias, stride, padding, dilation, groups, relu=True)


def _conv2d(name, x, weight, bias, stride, padding, dilation, groups, relu):
    x, weight = as_tensor(x), as_tensor(weight)
    if isinstance(padding, str):
        x, padding = _string_padding(name, x, weight, stride, padding, dilation)
    stride, padding, dilation, groups, out_size = _geometry(x.shape, weight.shape, stride, padding, dilation, groups)
    if bias is not None:
        bias = as_tensor(bias)
        if bias.shape != (weight.shape[0],):
            raise ValueError(f"{name}: expected bias of shape ({weight.shape[0]},), got {bias.shape}")
    check_same_dtype(name, input=x, weight=weight, bias=bias)
    return run_batched(name, lambda xb: Conv2d.apply(xb, weight, bias, stride=stride, padding=padding,
                                                     dilation=dilation, groups=groups, out_size=out_size,
                                                     relu=relu), x)


@functools.lru_cache(maxsize=256)
def _cached_geometry(*arguments):
    return conv2d_geometry(*arguments)


def _geometry(*arguments):
    """``conv2d_geometry``, remembered for settings seen before (a training step asks the same each time)."""
    try:
        return _cached_geometry(*arguments)
    except TypeError:                                    # unhashable settings (a list): checked afresh
        return conv2d_geometry(*arguments)


def _string_padding(name, x, weight, stride, padding, dilation):
    """``padding='valid'`` is no padding; ``'same'`` pads so that the output keeps the input's size (stride 1):
    symmetric padding when the zeros split evenly, else the input padded first (``F.pad``: the extra zero on
    the bottom and right, PyTorch's rule). Returns (input, padding pair)."""
    kernel, _, padding, dilation = conv2d_args(weight.shape[2:] if weight.ndim == 4 else 1, stride, padding, name,
                                               dilation)
    if padding == "valid":
        return x, (0, 0)
    (top, bottom), (left, right) = same_padding(kernel, dilation)
    if (top, left) == (bottom, right):
        return x, (top, left)
    return F_pad(x, (left, right, top, bottom)), (0, 0)
