"""``minicnn.functional``: every differentiable op, as a function on Tensors (``import minicnn.functional as F``).

Each file holds one family, each op one ``Function`` class (forward and backward side by side) with its
lowercase wrapper right below it:

    elementwise.py  add sub mul div neg pow exp log relu dropout
    reduction.py    sum mean max
    shape.py        reshape permute flatten getitem
    linear.py       matmul linear linear_relu
    conv.py         conv2d conv2d_relu
    pool.py         max_pool2d avg_pool2d global_avg_pool2d blur_pool2d
    loss.py         log_softmax nll_loss cross_entropy mse_loss
"""
from .conv import conv2d, conv2d_relu
from .elementwise import add, div, dropout, exp, log, mul, neg, pow, relu, sub
from .linear import linear, linear_relu, matmul
from .loss import cross_entropy, log_softmax, mse_loss, nll_loss
from .pool import avg_pool2d, blur_pool2d, global_avg_pool2d, max_pool2d
from .reduction import max, mean, sum
from .shape import flatten, getitem, permute, reshape

__all__ = ["conv2d", "conv2d_relu", "add", "sub", "mul", "div", "neg", "pow", "exp", "log", "relu", "dropout",
           "linear", "linear_relu", "matmul", "cross_entropy", "log_softmax", "mse_loss", "nll_loss", "avg_pool2d",
           "blur_pool2d", "global_avg_pool2d", "max_pool2d", "max", "mean", "sum", "flatten", "getitem", "permute",
           "reshape"]
