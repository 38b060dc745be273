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


def layer_table(model: nn.Sequential, input_shape) -> list[dict]:
    """One dict per layer: name, output shape (per image), parameters, multiply-adds, receptive field, jump."""
    if not isinstance(model, nn.Sequential):
        raise TypeError(f"summary: expected an nn.Sequential, got {type(model).__name__}")
    shape = tuple(input_shape)
    if len(shape) != 3:
        raise ValueError(f"summary: input_shape must be (C, H, W) for one image, got {shape}")
    x = Tensor(np.zeros((1,) + shape, dtype=np.float32))
    rf, jump, flat = 1, 1, False
    rows = []
    with no_grad():
        for index, layer in model.named_children():
            in_shape = x.shape[1:]
            x = layer(x)
            out_shape = x.shape[1:]
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
            elif isinstance(layer, nn.GlobalAvgPool2d):
                rf, jump = rf + (in_shape[-1] - 1) * jump, jump * in_shape[-1]
            elif isinstance(layer, nn.Flatten):
                flat = True
            rows.append(dict(index=int(index) if index.isdigit() else index, layer=type(layer).__name__, output_shape=tuple(out_shape), params=params,
                             macs=macs, receptive_field=None if flat else rf, jump=None if flat else jump))
    return rows


def summary(model: nn.Sequential, input_shape=(1, 28, 28), print_fn=print) -> list[dict]:
    """Print the table of ``layer_table`` (receptive field and jump along the height axis) with totals;
    return its rows."""
    rows = layer_table(model, input_shape)
    header = f"{'#':>3}  {'layer':<16}{'output shape':<16}{'params':>9}{'mult-adds':>12}{'RF':>6}{'jump':>6}"
    lines = [header, "-" * len(header)]
    for r in rows:
        rf = "all" if r["receptive_field"] is None else str(r["receptive_field"])
        jump = "-" if r["jump"] is None else str(r["jump"])
        shape = "×".join(str(d) for d in r["output_shape"])
        lines.append(f"{r['index']:>3}  {r['layer']:<16}{shape:<16}{r['params']:>9,}{r['macs']:>12,}{rf:>6}{jump:>6}")
    lines.append("-" * len(header))
    total_params = sum(r["params"] for r in rows)
    total_macs = sum(r["macs"] for r in rows)
    lines.append(f"     {'total':<32}{total_params:>9,}{total_macs:>12,}")
    print_fn("\n".join(lines))
    return rows
