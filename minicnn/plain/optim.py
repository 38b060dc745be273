"""Stochastic gradient descent's update as one loop: the plain engine's ``sgd_step``.

For each element of a parameter p with gradient g and momentum buffer b (PyTorch's ``torch.optim.SGD``)::

    g ← g + weight_decay · p
    b ← g                                   on the first step
    b ← momentum · b + (1 − dampening) · g  afterwards          (no buffer when momentum = 0)
    g ← g + momentum · b  (nesterov)   or   g ← b
    p ← p − lr · g

Why a loop, when numpy does each line in one call: a step reads and writes the parameter, its gradient and its
buffer, which the backward pass has pushed out of the cores' caches, and numpy's four calls walk them four
times; the loop walks them once. Each product and sum is rounded in the arrays' dtype, one operation at a
time, in the order of the lines above: the result is what those lines give computed one by one in numpy.

The fast engine has no other way to do this and takes the plain engine's (``engine.SHARED``).
"""
import numpy as np

from ._jit import jit

__all__ = ["sgd_step"]


@jit()
def _sgd(p, g, b, lr, momentum, keep, weight_decay, nesterov, first):
    """The update above on flat arrays p, g, b (b empty when momentum = 0); keep = 1 − dampening. The numbers
    come in the arrays' dtype, so a float32 parameter is updated in float32 arithmetic."""
    for i in range(p.size):
        step = g[i]                                              # g, then the direction the update takes
        if weight_decay != 0:
            step = step + weight_decay * p[i]
        if momentum != 0:
            velocity = step if first else momentum * b[i] + (step if keep == 1 else keep * step)
            b[i] = velocity
            step = step + momentum * velocity if nesterov else velocity
        p[i] = p[i] - lr * step


def sgd_step(param, grad, buffer, lr, momentum, dampening, weight_decay, nesterov, first):
    """One SGD step of one parameter, in place.

    Args: param (any shape; updated), grad (its shape), buffer (its shape, C-contiguous; updated; ignored when
    momentum = 0), the settings as numbers, nesterov and first (the buffer's first step) as bools.
    """
    if momentum and not buffer.flags.c_contiguous:
        raise ValueError("sgd_step: buffer must be C-contiguous (it is updated through a flat view)")
    flat = param.reshape(-1)                          # a view when param is C-contiguous, else a copy
    number = param.dtype.type
    _sgd(flat, np.ascontiguousarray(grad, dtype=param.dtype).reshape(-1),
         buffer.reshape(-1) if momentum else flat[:0], number(lr), number(momentum), number(1.0 - dampening),
         number(weight_decay), bool(nesterov), bool(first))
    if not param.flags.c_contiguous:
        param[...] = flat.reshape(param.shape)      # the copy's values back into the parameter
