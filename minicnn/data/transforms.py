"""Image transforms on uint8 or float batches: plain, vectorised NumPy, seeded where random.

    shift(x, dx, dy)                 translate every image by whole pixels, filling with zeros
    random_shift_flip(x, rng, ...)   training augmentation: a random shift in [−s, s]² and a random
                                     left-right flip per image

Arrays are (N, H, W) or (N, 1, H, W); the result has the input's shape and dtype.
"""
from __future__ import annotations

import numpy as np

__all__ = ["shift", "random_shift_flip"]


def _as_stack(x: np.ndarray):
    """(N, 1, H, W) or (N, H, W) → (N, H, W), and a function giving the original layout back."""
    x = np.asarray(x)
    if x.ndim == 4 and x.shape[1] == 1:
        return x[:, 0], lambda y: y[:, None]
    if x.ndim == 3:
        return x, lambda y: y
    raise ValueError(f"expected images of shape (N, H, W) or (N, 1, H, W), got shape {x.shape}")


def _shift_each(images: np.ndarray, dx: np.ndarray, dy: np.ndarray) -> np.ndarray:
    """Image i moved right by dx[i] and down by dy[i] pixels (negative: left, up); vacated pixels are 0."""
    N, H, W = images.shape
    rows = np.arange(H)[None, :] - dy[:, None]                      # output row r reads input row r − dy
    cols = np.arange(W)[None, :] - dx[:, None]
    inside = ((rows >= 0) & (rows < H))[:, :, None] & ((cols >= 0) & (cols < W))[:, None, :]
    gathered = images[np.arange(N)[:, None, None], np.clip(rows, 0, H - 1)[:, :, None], np.clip(cols, 0, W - 1)[:, None, :]]
    return np.where(inside, gathered, np.zeros((), dtype=images.dtype))


def shift(x: np.ndarray, dx: int, dy: int) -> np.ndarray:
    """Translate every image right by ``dx`` and down by ``dy`` whole pixels (negative: left, up), zero fill.

    >>> shift(np.arange(1, 10).reshape(1, 3, 3), dx=1, dy=0)[0].tolist()
    [[0, 1, 2], [0, 4, 5], [0, 7, 8]]
    """
    images, restore = _as_stack(x)
    n = len(images)
    return restore(_shift_each(images, np.full(n, int(dx)), np.full(n, int(dy))))


def random_shift_flip(x: np.ndarray, rng: np.random.Generator, max_shift: int = 2, flip: bool = True) -> np.ndarray:
    """Training augmentation: each image is flipped left-right with probability 1/2 (clothes stay clothes) and
    shifted by a random (dx, dy) in [−max_shift, max_shift]², zero fill."""
    images, restore = _as_stack(x)
    n = len(images)
    dx = rng.integers(-max_shift, max_shift + 1, n)
    dy = rng.integers(-max_shift, max_shift + 1, n)
    out = _shift_each(images, dx, dy)
    if flip:
        flipped = rng.random(n) < 0.5
        out[flipped] = out[flipped, :, ::-1]
    return restore(out)
