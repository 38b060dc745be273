"""Randomised geometries for convolution and pooling, one seed per case.

Case ``i`` of an op draws its geometry from ``numpy.random.default_rng([OP_SEED, i])``: every case is its own
draw, the same on every run and machine, and independent of which other tests ran before it. The test id
spells the geometry out (``r07-x13x2x9x11-k3x2-s2x1-p1x0``), so a failing case can be read at a glance and rerun
alone with ``pytest -k r07-``.

What the draws cover, because each breaks some kernel:
- kernel sizes 1 and the whole padded input (case ``i % 4 == 0`` and ``== 1``), and random ones between;
- strides 1 to 3 (pooling: to 4), different by axis; strides that do not divide the input;
- padding 0 to 2 (pooling: up to half the kernel, PyTorch's limit);
- odd and non-square sizes, 1 included;
- batches of 1 to 24 images, so that a convolution's blocks of images (``images_per_block``: about 1024
  output columns each) come several to a thread, the last one partial;
- for pooling, ``ceil_mode`` and ``count_include_pad`` both ways.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest

from minicnn.shapes import conv2d_geometry, pool2d_geometry

CONV_SEED, POOL_SEED = 20261205, 20261206
#: How many random cases each op gets.
RANDOM_CASES = 24
#: Batch sizes drawn from: 1, a few, and enough for several blocks per thread.
BATCHES = (1, 2, 3, 5, 13, 24)


@dataclass(frozen=True)
class ConvCase:
    x_shape: tuple          # (N, C_in, H, W)
    w_shape: tuple          # (C_out, C_in / groups, KH, KW)
    stride: tuple
    padding: tuple
    dilation: tuple = (1, 1)
    groups: int = 1

    @property
    def out_size(self):
        return conv2d_geometry(self.x_shape, self.w_shape, self.stride, self.padding, self.dilation, self.groups)[4]

    def id(self, label):
        (N, C, H, W), (C_out, _, KH, KW) = self.x_shape, self.w_shape
        return (f"{label}-x{N}x{C}x{H}x{W}-w{C_out}-k{KH}x{KW}-s{self.stride[0]}x{self.stride[1]}"
                f"-p{self.padding[0]}x{self.padding[1]}"
                + (f"-d{self.dilation[0]}x{self.dilation[1]}" if self.dilation != (1, 1) else "")
                + (f"-g{self.groups}" if self.groups != 1 else ""))


@dataclass(frozen=True)
class PoolCase:
    x_shape: tuple          # (N, C, H, W)
    kernel: tuple
    stride: tuple
    padding: tuple
    ceil_mode: bool
    count_include_pad: bool = True
    dilation: tuple = (1, 1)            # max pooling's; average pooling has none

    @property
    def out_size(self):
        return pool2d_geometry(self.x_shape, self.kernel, self.stride, self.padding, self.ceil_mode, "test",
                               self.dilation)[4]

    def id(self, label):
        N, C, H, W = self.x_shape
        return (f"{label}-x{N}x{C}x{H}x{W}-k{self.kernel[0]}x{self.kernel[1]}-s{self.stride[0]}x{self.stride[1]}"
                f"-p{self.padding[0]}x{self.padding[1]}" + ("-ceil" if self.ceil_mode else "")
                + ("" if self.count_include_pad else "-nopad")
                + (f"-d{self.dilation[0]}x{self.dilation[1]}" if self.dilation != (1, 1) else ""))


def _kernel(rng, i, padded, largest):
    """Case i's kernel size along an axis of ``padded`` numbers: 1, the whole axis, or random."""
    if i % 4 == 0:
        return 1
    if i % 4 == 1:
        return padded
    return int(rng.integers(1, min(largest, padded) + 1))


def conv_case(i: int) -> ConvCase:
    """Random convolution case number ``i``."""
    rng = np.random.default_rng([CONV_SEED, i])
    N = int(rng.choice(BATCHES))
    C_in, C_out = int(rng.integers(1, 5)), int(rng.integers(1, 6))
    H, W = int(rng.integers(1, 17)), int(rng.integers(1, 17))
    P = (int(rng.integers(0, 3)), int(rng.integers(0, 3)))
    K = (_kernel(rng, i, H + 2 * P[0], 5), _kernel(rng, i, W + 2 * P[1], 5))
    S = (int(rng.integers(1, 4)), int(rng.integers(1, 4)))
    return ConvCase((N, C_in, H, W), (C_out, C_in, *K), S, P)


def pool_case(i: int) -> PoolCase:
    """Random pooling case number ``i`` (redrawn, from the same generator, until PyTorch would accept it)."""
    rng = np.random.default_rng([POOL_SEED, i])
    while True:
        N, C = int(rng.choice(BATCHES)), int(rng.integers(1, 4))
        H, W = int(rng.integers(1, 15)), int(rng.integers(1, 15))
        if i % 4 == 1:                          # the window covers the whole padded input
            P = (int(rng.integers(0, 2)), int(rng.integers(0, 2)))
            K = (H + 2 * P[0], W + 2 * P[1])
        else:
            K = (_kernel(rng, i, H, 5), _kernel(rng, i, W, 5))
            P = (int(rng.integers(0, K[0] // 2 + 1)), int(rng.integers(0, K[1] // 2 + 1)))
        S = (int(rng.integers(1, 5)), int(rng.integers(1, 5)))
        case = PoolCase((N, C, H, W), K, S, P, bool(rng.integers(0, 2)), bool(rng.integers(0, 2)))
        try:
            case.out_size
        except ValueError:
            continue
        return case


def dilated_conv_case(i: int) -> ConvCase:
    """Random convolution case ``i`` with dilation (1 to 3 by axis) and groups (1, 2, 3 or depthwise)."""
    rng = np.random.default_rng([CONV_SEED, 1, i])
    while True:
        groups = int(rng.choice([1, 2, 3]))
        C_in, C_out = groups * int(rng.integers(1, 3)), groups * int(rng.integers(1, 3))
        if i % 4 == 3:
            C_out = C_in = groups                 # depthwise: one filter per channel
        N, H, W = int(rng.choice(BATCHES[:4])), int(rng.integers(1, 14)), int(rng.integers(1, 14))
        K = (int(rng.integers(1, 4)), int(rng.integers(1, 4)))
        D = (int(rng.integers(1, 4)), int(rng.integers(1, 4)))
        P = (int(rng.integers(0, 3)), int(rng.integers(0, 3)))
        S = (int(rng.integers(1, 3)), int(rng.integers(1, 3)))
        case = ConvCase((N, C_in, H, W), (C_out, C_in // groups, *K), S, P, D, groups)
        try:
            case.out_size
        except ValueError:
            continue
        return case


def dilated_pool_case(i: int) -> PoolCase:
    """Random max pooling case ``i`` with dilation (1 to 3 by axis)."""
    rng = np.random.default_rng([POOL_SEED, 1, i])
    while True:
        N, C, H, W = int(rng.choice(BATCHES[:4])), int(rng.integers(1, 4)), int(rng.integers(1, 15)), int(rng.integers(1, 15))
        K, D = (int(rng.integers(1, 4)), int(rng.integers(1, 4))), (int(rng.integers(1, 4)), int(rng.integers(1, 4)))
        P = tuple(int(rng.integers(0, k // 2 + 1)) for k in K)
        S = (int(rng.integers(1, 4)), int(rng.integers(1, 4)))
        case = PoolCase((N, C, H, W), K, S, P, bool(rng.integers(0, 2)), True, D)
        try:
            out = case.out_size
        except ValueError:
            continue
        if all(_every_window_reads(*axis) for axis in zip(out, (H, W), K, S, P, D)):
            return case


def _every_window_reads(out, size, kernel, stride, padding, dilation):
    """Whether every window along an axis has a real cell (PyTorch's max pooling returns -inf for one that has
    none, and its gradient then lands on a cell the window never read: cases left out of the comparison)."""
    return all(any(0 <= o * stride - padding + k * dilation < size for k in range(kernel)) for o in range(out))


def params(cases, label="case"):
    """``pytest.param``s of ``cases`` (a list of ConvCase/PoolCase), each with its geometry as its id."""
    return [pytest.param(c, id=c.id(f"{label}{k:02d}")) for k, c in enumerate(cases)]


def random_params(make, n=RANDOM_CASES):
    """The first ``n`` random cases of ``make`` (``conv_case`` or ``pool_case``), ids ``r00-…``."""
    return [pytest.param(make(i), id=make(i).id(f"r{i:02d}")) for i in range(n)]


#: Hand-picked convolutions: the pyramids' layers and the shapes that once broke a kernel.
CONV_CASES = [
    ConvCase((2, 1, 28, 28), (6, 1, 5, 5), (1, 1), (2, 2)),       # LeNet's first layer
    ConvCase((2, 6, 14, 14), (16, 6, 5, 5), (2, 2), (0, 0)),      # the strided pyramid's second layer
    ConvCase((1, 3, 7, 9), (4, 3, 3, 2), (2, 1), (1, 1)),         # non-square kernel, stride not dividing, batch 1
    ConvCase((3, 2, 5, 5), (1, 2, 5, 5), (1, 1), (0, 0)),         # kernel = input: a 1 × 1 output
    ConvCase((2, 2, 8, 6), (3, 2, 3, 3), (3, 2), (1, 0)),         # overlapping in one axis only
    ConvCase((23, 6, 14, 14), (16, 6, 5, 5), (2, 2), (0, 0)),     # several blocks of images, the last partial
    ConvCase((19, 2, 6, 6), (3, 2, 3, 3), (1, 1), (1, 1)),        # stride 1, padding: the same
    ConvCase((5, 2, 13, 30), (3, 2, 3, 5), (1, 2), (1, 2)),       # runs of 14: the spread copies split rows
]

#: Hand-picked poolings: the classic 2 × 2 and every way a window can stick out or overlap.
POOL_CASES = [
    PoolCase((2, 3, 8, 8), (2, 2), (2, 2), (0, 0), False),        # the classic 2 × 2
    PoolCase((2, 2, 9, 7), (3, 3), (2, 2), (1, 1), False),        # overlapping windows with padding
    PoolCase((1, 1, 7, 7), (2, 2), (3, 3), (0, 0), True),         # ceil_mode: a clipped last window
    PoolCase((2, 2, 5, 5), (2, 2), (2, 2), (1, 1), True),         # ceil_mode + padding: the 4th window is dropped
    PoolCase((1, 2, 6, 11), (3, 2), (1, 3), (1, 0), True, False),  # non-square everything
    PoolCase((2, 3, 9, 7), (2, 2), (2, 2), (0, 0), False),        # the 2 × 2 fast path with an odd size (floor)
    PoolCase((2, 3, 9, 7), (2, 2), (2, 2), (0, 0), True),         # ... and in ceil_mode: partial windows
    PoolCase((2, 2, 6, 9), (2, 2), (2, 3), (0, 0), False),        # 2 × 2 windows, strides (2, 3): not the fast path
    PoolCase((2, 2, 9, 6), (2, 2), (3, 2), (0, 0), False),        # ... nor (3, 2)
    PoolCase((2, 2, 6, 6), (3, 3), (2, 2), (1, 1), True),         # ceil_mode: the last window runs past the padding
    PoolCase((2, 2, 6, 7), (3, 3), (2, 2), (1, 1), True, False),  # ... divided by its real cells
    PoolCase((16, 3, 8, 8), (3, 3), (2, 2), (1, 1), False),       # overlapping windows over a batch of 16
]
