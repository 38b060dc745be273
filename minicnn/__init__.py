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
    D           dilation: the spacing of a window's taps
    G           groups: channels split into G groups, each convolved with its own filters
    OH, OW      output height and width: OH = floor((H + 2P − D·(KH − 1) − 1) / S) + 1

Layout is NCHW: an image batch is an array of shape (N, C, H, W), float32.

The floors of the code, top to bottom (data flows down in forward, up in backward):
``models``/``train``/``summary``/``metrics`` (pyramids by name, loops, tables, invariance measures) → ``nn``
(layers hold parameters) → ``functional`` (differentiable ops) → ``tensor``/``autograd`` (the graph) →
``shapes`` (output sizes, argument checks) → ``engine`` (the contract: array functions) → ``plain`` (loops to
read, the engine that always runs) or ``fast`` (minicnn's speed, loaded on first use).
Beside them: ``data`` (Fashion-MNIST, batches, corruptions; never imports ``nn``) and ``optim``.

The path from a layer to its arithmetic: ``nn/layers.py`` → ``functional/<op>.py`` → ``plain/<op>.py``.
"""
from . import autograd, engine, functional, nn, optim, random, testing
from .autograd import enable_grad, is_grad_enabled, no_grad
from .creation import arange, from_numpy, ones, rand, randn, tensor, zeros
from .engine import engine_name, use_engine
from .functional import cat, stack
from .random import manual_seed
from .serialization import load, save
from .summary import summary          # mc.summary(model, (1, 28, 28)): the per-layer table
from .tensor import Tensor, as_tensor

__version__ = "0.1.0"

__all__ = ["Tensor", "as_tensor", "no_grad", "enable_grad", "is_grad_enabled", "manual_seed", "save", "load", "summary",
           "use_engine", "engine_name", "tensor", "zeros", "ones", "rand", "randn", "arange", "from_numpy", "cat", "stack",
           "nn", "optim", "functional", "autograd", "engine", "random", "testing"]
