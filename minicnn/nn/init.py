"""Initial weights, as PyTorch draws them by default, from minicnn's seeded generator (``mc.manual_seed``).

PyTorch's ``Linear`` and ``Conv2d`` use ``kaiming_uniform_(weight, a=√5)``: uniform on [−bound, bound] with

    gain  = √(2 / (1 + a²)) = √(1/3)
    bound = gain · √(3 / fan_in) = 1 / √fan_in

and their bias uniform on [−1/√fan_in, 1/√fan_in]. fan_in is the number of inputs one output sums over:
in_features for a linear layer, in_channels · KH · KW for a convolution.
"""
import math

import numpy as np

from ..random import generator

__all__ = ["fan_in", "uniform", "kaiming_uniform", "default_weight", "default_bias"]


def fan_in(shape) -> int:
    """Inputs per output: shape[1] times the kernel's cells (shape is (out, in, ...))."""
    return int(shape[1] * np.prod(shape[2:])) if len(shape) > 1 else int(shape[0])


def uniform(shape, low: float, high: float) -> np.ndarray:
    """float32 array of ``shape`` drawn uniformly from [low, high)."""
    return generator().uniform(low, high, size=shape).astype(np.float32)


def kaiming_uniform(shape, a: float = 0.0) -> np.ndarray:
    """He/Kaiming uniform initialisation for a leaky-ReLU slope ``a`` (a=0: ReLU)."""
    gain = math.sqrt(2.0 / (1.0 + a * a))
    bound = gain * math.sqrt(3.0 / fan_in(shape))
    return uniform(shape, -bound, bound)


def default_weight(shape) -> np.ndarray:
    """PyTorch's default for Linear and Conv2d weights: Kaiming uniform with a = √5, i.e. U(±1/√fan_in)."""
    return kaiming_uniform(shape, a=math.sqrt(5.0))


def default_bias(weight_shape) -> np.ndarray:
    """PyTorch's default bias: U(±1/√fan_in), with fan_in taken from the weight's shape."""
    bound = 1.0 / math.sqrt(fan_in(weight_shape))
    return uniform((weight_shape[0],), -bound, bound)
