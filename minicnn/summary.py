"""``summary(model, input_shape)``: a per-layer table of output shape, parameters, multiply-adds and receptive
field, to see what pooling and striding do to a network.

Receptive field (size r) and jump (j) on the input, per axis, start at r = 1, j = 1 (one pixel, one pixel
apart) and grow through each window of size K and stride S::

    r ← r + (K − 1) · D · j      (the window spans K neighbours D apart, each step j input pixels)
    j ← j · S                    (neighbouring outputs are S steps apart)

So a 2×2 pooling after a 5×5 convolution turns (r, j) = (5, 1) into (6, 2): every later 5×5 convolution then
adds 4·2 = 8 pixels of view instead of 4. Global average pooling sees its whole input map, and so does every
layer after ``Flatten`` ("all"). Multiply-adds count the products of convolutions (C_out·OH·OW·C_in/G·KH·KW) and
linear layers (in·out) per image; pooling and ReLU count as zero. A fused ``Conv2dReLU`` or ``LinearReLU``
(``nn.fuse``) counts as its convolution or linear layer.
"""
from __future__ import annotations

import numpy as np

from . import nn
from .autograd import no_grad
from .shapes import pair
from .tensor import Tensor

__all__ = ["summary", "layer_table"]


def _leaves(model):
    """(name, module) for every module of ``model`` with no sub-modules (the layers), in registration order."""
    return [(name or type(model).__name__, m) for name, m in model.named_modules() if not m._modules]


def _record_calls(model, x):
    """Run ``model(x)`` and return (name, layer, input shape, output shape) for each layer call, in the order
    the layers ran: every layer's ``forward`` is wrapped for the one pass, then given back."""
    calls, wrapped = [], []
    for name, layer in _leaves(model):
        def recording(*args, _name=name, _layer=layer, _forward=layer.forward, **kwargs):
            out = _forward(*args, **kwargs)
            first = out[0] if isinstance(out, tuple) else out
            calls.append((_name, _layer, tuple(args[0].shape), tuple(first.shape)))
            return out
        layer.forward = recording
        wrapped.append(layer)
    try:
        with no_grad():
            model(x)
    finally:
        for layer in wrapped:
            del layer.forward                       # the class's forward again
    return calls


def layer_table(model: nn.Module, input_size=(1, 28, 28)) -> list[dict]:
    """One dict per layer call: name, output shape (per image), parameters, multiply-adds, receptive field,
    jump. Any Module: its layers are recorded as they run, and the receptive field follows them in that order
    (exact for a chain of layers, as the pyramids are)."""
    if not isinstance(model, nn.Module):
        raise TypeError(f"summary: expected an nn.Module, got {type(model).__name__}")
    shape = tuple(input_size)
    if len(shape) not in (3, 4):
        raise ValueError(f"summary: input_size must be (C, H, W) for one image or (N, C, H, W), got {shape}")
    x = Tensor(np.zeros(shape if len(shape) == 4 else (1,) + shape, dtype=np.float32))
    rf, jump, flat = 1, 1, False
    rows = []
    for index, layer, in_shape, out_shape in _record_calls(model, x):
        in_shape, out_shape = in_shape[1:], out_shape[1:]
        params = sum(p.numel() for p in layer.parameters())
        macs = 0
        if isinstance(layer, (nn.Conv2d, nn.Conv2dReLU)):
            kh, kw = layer.kernel_size
            macs = int(np.prod(out_shape)) * layer.in_channels // layer.groups * kh * kw
        elif isinstance(layer, (nn.Linear, nn.LinearReLU)):
            macs = layer.in_features * layer.out_features
        if isinstance(layer, (nn.Conv2d, nn.Conv2dReLU, nn.MaxPool2d, nn.AvgPool2d)):
            k, s = pair(layer.kernel_size, "kernel_size", "summary")[0], pair(layer.stride, "stride", "summary")[0]
            d = pair(getattr(layer, "dilation", 1), "dilation", "summary")[0]
            rf, jump = rf + (k - 1) * d * jump, jump * s
        elif isinstance(layer, nn.BlurPool2d):
            rf, jump = rf + 2 * jump, jump * layer.stride
        elif isinstance(layer, (nn.GlobalAvgPool2d, nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool2d)):
            k = -(-in_shape[-2] // out_shape[-2])                        # the widest adaptive window
            rf, jump = rf + (k - 1) * jump, jump * (in_shape[-2] // out_shape[-2])
        elif isinstance(layer, nn.Flatten):
            flat = True
        rows.append(dict(index=int(index) if index.isdigit() else index, layer=type(layer).__name__,
                         output_shape=tuple(out_shape), params=params, macs=macs,
                         receptive_field=None if flat else rf, jump=None if flat else jump))
    return rows


class Summary(list):
    """The rows of ``layer_table`` (a list of dicts), which print as the table: ``print(mc.summary(model))``."""

    def __str__(self) -> str:
        header = f"{'#':>3}  {'layer':<16}{'output shape':<16}{'params':>9}{'mult-adds':>12}{'RF':>6}{'jump':>6}"
        lines = [header, "-" * len(header)]
        for r in self:
            rf = "all" if r["receptive_field"] is None else str(r["receptive_field"])
            jump = "-" if r["jump"] is None else str(r["jump"])
            shape = "×".join(str(d) for d in r["output_shape"])
            lines.append(f"{r['index']!s:>3}  {r['layer']:<16}{shape:<16}{r['params']:>9,}{r['macs']:>12,}"
                         f"{rf:>6}{jump:>6}")
        lines.append("-" * len(header))
        lines.append(f"     {'total':<32}{sum(r['params'] for r in self):>9,}{sum(r['macs'] for r in self):>12,}")
        return "\n".join(lines)

    __repr__ = __str__


def summary(model: nn.Module, input_size=(1, 28, 28)) -> Summary:
    """The per-layer table of ``model`` for inputs of ``input_size`` ((C, H, W), or (N, C, H, W)): output
    shapes, parameters, multiply-adds and receptive field (see the module docstring). It prints as the table:
    ``print(mc.summary(model))``, or just ``mc.summary(model)`` at a prompt."""
    return Summary(layer_table(model, input_size))
