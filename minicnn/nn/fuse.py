"""Fusion, as an explicit step: ``nn.fuse(model)`` returns the same model with each ``Conv2d`` or ``Linear`` that
a ``ReLU`` follows replaced by one module that does both in one pass (``Conv2dReLU``, ``LinearReLU``).

Why: the fused op applies max(·, 0) as it stores each output, so the layer's output is written once and never
read again by a separate ReLU, and the backward masks the gradient in the same pass. The numbers are the same
as the two modules', to the bit (``functional/conv.py``). What runs is what ``print(model)`` shows::

    >>> from minicnn import nn
    >>> fused = nn.fuse(nn.Sequential(nn.Conv2d(1, 6, 5), nn.ReLU(), nn.Flatten()))
    >>> fused
    Sequential(
      (0): Conv2dReLU(1, 6, kernel_size=(5, 5), stride=(1, 1))
      (2): Flatten(start_dim=1, end_dim=-1)
    )
    >>> list(fused.state_dict())           # the unfused model's keys: weights move to and from PyTorch as they are
    ['0.weight', '0.bias']

The fused model shares its Parameters with the original (training one trains the other). A ``ReLU`` keeps its
index in the names only by its absence, as PyTorch's own fusion (``torch.ao.quantization.fuse_modules``)
would leave an ``Identity`` there.
"""
from collections import OrderedDict

from .. import functional as F
from .layers import Conv2d, Linear, ReLU
from .module import Module, Sequential

__all__ = ["fuse", "Conv2dReLU", "LinearReLU"]


class Conv2dReLU(Module):
    """``ReLU()(conv(x))`` in one pass (``F.conv2d_relu``); holds ``conv``'s Parameters and settings."""

    def __init__(self, conv: Conv2d):
        super().__init__()
        for setting in ("in_channels", "out_channels", "kernel_size", "stride", "padding", "dilation", "groups"):
            setattr(self, setting, getattr(conv, setting))
        self.weight, self.bias = conv.weight, conv.bias

    def forward(self, x):
        return F.conv2d_relu(x, self.weight, self.bias, self.stride, self.padding, self.dilation, self.groups)

    extra_repr = Conv2d.extra_repr


class LinearReLU(Module):
    """``ReLU()(linear(x))`` in one pass (``F.linear_relu``); holds ``linear``'s Parameters."""

    def __init__(self, linear: Linear):
        super().__init__()
        self.in_features, self.out_features = linear.in_features, linear.out_features
        self.weight, self.bias = linear.weight, linear.bias

    def forward(self, x):
        return F.linear_relu(x, self.weight, self.bias)

    extra_repr = Linear.extra_repr


_FUSED = {Conv2d: Conv2dReLU, Linear: LinearReLU}


def fuse(model: Sequential) -> Sequential:
    """A Sequential with every (Conv2d, ReLU) and (Linear, ReLU) pair of ``model`` fused (see module docstring).
    Only these exact classes are fused (a subclass may compute something else); nested Sequentials are fused
    too."""
    if not isinstance(model, Sequential):
        raise TypeError(f"fuse: expected an nn.Sequential, got {type(model).__name__}")
    items = list(model._modules.items())
    fused, i = OrderedDict(), 0
    while i < len(items):
        name, module = items[i]
        following = items[i + 1][1] if i + 1 < len(items) else None
        if type(module) in _FUSED and type(following) is ReLU:
            fused[name], i = _FUSED[type(module)](module), i + 2
        else:
            fused[name], i = (fuse(module) if isinstance(module, Sequential) else module), i + 1
    result = Sequential(fused)
    result.train(model.training)
    return result
