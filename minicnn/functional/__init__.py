"""``minicnn.functional``: every differentiable op, as a function on Tensors (``import minicnn.functional as F``).

Each file holds one family, each op one ``Function`` class (forward and backward side by side) with its
lowercase wrapper right below it:

    elementwise.py  add sub mul div neg pow exp log sqrt abs clamp cast relu dropout
    reduction.py    sum mean max min argmax argmin
    shape.py        reshape permute flatten getitem unsqueeze squeeze cat stack pad
    linear.py       matmul linear linear_relu
    conv.py         conv2d conv2d_relu
    pool.py         max_pool2d max_unpool2d avg_pool2d adaptive_avg_pool2d adaptive_max_pool2d global_avg_pool2d
                    blur_pool2d
    loss.py         log_softmax softmax nll_loss cross_entropy mse_loss

``minicnn.nn.functional`` is this module too, as ``torch.nn.functional`` is PyTorch's.
"""
from .conv import conv2d, conv2d_relu
from .elementwise import abs, add, cast, clamp, div, dropout, exp, log, mul, neg, pow, relu, sqrt, sub
from .linear import linear, linear_relu, matmul
from .loss import cross_entropy, log_softmax, mse_loss, nll_loss, softmax
from .pool import (adaptive_avg_pool2d, adaptive_max_pool2d, avg_pool2d, blur_pool2d, global_avg_pool2d, max_pool2d,
                   max_unpool2d)
from .reduction import argmax, argmin, max, mean, min, sum
from .shape import cat, flatten, getitem, pad, permute, reshape, squeeze, stack, unsqueeze

__all__ = ["conv2d", "conv2d_relu", "add", "sub", "mul", "div", "neg", "pow", "exp", "log", "sqrt", "abs", "clamp",
           "cast", "relu", "dropout", "linear", "linear_relu", "matmul", "cross_entropy", "log_softmax", "softmax",
           "mse_loss", "nll_loss", "avg_pool2d", "adaptive_avg_pool2d", "adaptive_max_pool2d", "max_unpool2d", "blur_pool2d", "global_avg_pool2d", "max_pool2d", "max", "min",
           "mean", "sum", "argmax", "argmin", "flatten", "getitem", "permute", "reshape", "unsqueeze", "squeeze",
           "cat", "stack", "pad"]
