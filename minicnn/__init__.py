"""minicnn: a from-scratch mini deep-learning framework for convolutional networks.

    import minicnn as mc
    from minicnn import nn, optim
    import minicnn.functional as F

Notation, used by every kernel, reference and op (the names PyTorch's documentation uses):

    N           batch size (images per batch)
    C_in, C_out channels going into / coming out of a layer (C when they are the same)
    H, W        input height and width
    KH, KW      kernel (window) height and width, K when square
    S           stride: how far the window moves per step
    P           padding: zeros added on each side
    OH, OW      output height and width: OH = floor((H + 2P − KH) / S) + 1

Layout is NCHW: an image batch is an array of shape (N, C, H, W), float32.

The floors of the code, top to bottom (data flows down in forward, up in backward):
``models``/``train``/``summary``/``metrics`` (pyramids by name, loops, tables, invariance measures) → ``nn``
(layers hold parameters) → ``functional`` (differentiable ops) → ``tensor``/``autograd`` (the graph) →
``kernels`` (Numba loops) ↔ ``reference`` (the same loops, plain and slow, to read and to test against).
Beside them: ``data`` (Fashion-MNIST, batches, corruptions; never imports ``nn``) and ``optim``.
"""
from . import autograd, functional, kernels, nn, optim, random, reference, testing
from .autograd import enable_grad, is_grad_enabled, no_grad
from .random import manual_seed
from .serialization import load, save
from .summary import summary          # mc.summary(model, (1, 28, 28)): the per-layer table
from .tensor import Tensor, as_tensor

__version__ = "0.1.0"

__all__ = ["Tensor", "as_tensor", "no_grad", "enable_grad", "is_grad_enabled", "manual_seed", "save", "load", "summary",
           "nn", "optim", "functional", "autograd", "kernels", "reference", "random", "testing"]
