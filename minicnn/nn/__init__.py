"""``minicnn.nn``: modules that hold parameters and call ``minicnn.functional`` (as ``torch.nn``).

    module.py   Module, Parameter, Sequential
    layers.py   Conv2d, MaxPool2d, MaxUnpool2d, AvgPool2d, AdaptiveAvgPool2d, AdaptiveMaxPool2d, GlobalAvgPool2d,
                BlurPool2d, ReLU, Linear, Flatten, Dropout
    loss.py     CrossEntropyLoss, NLLLoss, MSELoss
    fuse.py     fuse: Conv2d + ReLU and Linear + ReLU as one module each (Conv2dReLU, LinearReLU)
    functional  minicnn.functional under PyTorch's name (import minicnn.nn.functional as F)
    init.py     PyTorch's default initialisation, from minicnn's seeded generator
"""
from . import init
from .fuse import Conv2dReLU, LinearReLU, fuse
from .loss import CrossEntropyLoss, MSELoss, NLLLoss
from .layers import (AdaptiveAvgPool2d, AdaptiveMaxPool2d, AvgPool2d, BlurPool2d, Conv2d, Dropout, Flatten,
                     GlobalAvgPool2d, Linear, MaxPool2d, MaxUnpool2d, ReLU)
from .module import Module, Parameter, Sequential

__all__ = ["Module", "Parameter", "Sequential", "Conv2d", "MaxPool2d", "AvgPool2d", "GlobalAvgPool2d", "BlurPool2d", "ReLU",
           "Linear", "Flatten", "Dropout", "MaxUnpool2d", "AdaptiveAvgPool2d", "AdaptiveMaxPool2d", "init", "fuse", "Conv2dReLU", "LinearReLU",
           "CrossEntropyLoss", "NLLLoss", "MSELoss"]
