"""Image transforms on uint8 or float batches: plain, vectorised NumPy, seeded where random.

Corruptions (the pooling texts' experiments). Each sets some pixels of every image to a fill value: 0
(``fill="zero"``, masking), or the image's own maximum (``fill="max"``, the inverse: since zeros can never
win a max pooling window, the inverse corruption tests whether max pooling is robust or merely blind to zeros):

    random_mask(x, fraction, seed)            exactly round(fraction·H·W) random pixels of each image
    line_mask(x, orientation, spacing, width) every ``spacing``-th column (vertical) or row (horizontal),
                                              ``width`` pixels wide
    grid_mask(x, spacing, width)              both at once

Moves:

    shift(x, dx, dy)                 translate by whole pixels (one shift for all, or one per image), zero fill
    random_shift_flip(x, rng, ...)   training augmentation: a random shift in [−s, s]² and a random
                                     left-right flip per image

Arrays are (N, H, W) or (N, 1, H, W); the result has the input's shape and dtype, and the input is unchanged.
"""
from __future__ import annotations

import numpy as np

__all__ = ["random_mask", "line_mask", "grid_mask", "shift", "random_shift_flip"]

FILLS = ("zero", "max")


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


def shift(x: np.ndarray, dx, dy) -> np.ndarray:
    """Translate images right by ``dx`` and down by ``dy`` whole pixels (negative: left, up), zero fill.
    ``dx`` and ``dy`` are ints (the same shift for every image) or arrays of one shift per image.

    >>> shift(np.arange(1, 10).reshape(1, 3, 3), dx=1, dy=0)[0].tolist()
    [[0, 1, 2], [0, 4, 5], [0, 7, 8]]
    """
    images, restore = _as_stack(x)
    n = len(images)
    dx, dy = (np.broadcast_to(np.asarray(d, dtype=np.int64), (n,)) for d in (dx, dy))
    return restore(_shift_each(images, dx, dy))


def _fill(images: np.ndarray, mask: np.ndarray, fill: str) -> np.ndarray:
    """A copy of ``images`` (N, H, W) with the pixels where ``mask`` (N, H, W) or (H, W) is True set to the fill."""
    if fill not in FILLS:
        raise ValueError(f"fill must be one of {FILLS}, got {fill!r}")
    value = np.zeros((len(images), 1, 1), images.dtype) if fill == "zero" else images.max(axis=(1, 2), keepdims=True)
    return np.where(mask, value, images)


def random_mask(x: np.ndarray, fraction: float, seed: int = 0, fill: str = "zero") -> np.ndarray:
    """Set exactly round(fraction·H·W) randomly chosen pixels of each image to 0 (or to its maximum).

    The pixels are drawn independently per image from a generator seeded with ``seed``: the same seed picks
    the same pixels, so ``fill="zero"`` and ``fill="max"`` corrupt the very same places.
    """
    if not 0.0 <= fraction <= 1.0:
        raise ValueError(f"random_mask: fraction must be in [0, 1], got {fraction!r}")
    images, restore = _as_stack(x)
    N, H, W = images.shape
    k = int(round(fraction * H * W))
    ranks = np.random.default_rng(seed).random((N, H * W)).argsort(axis=1)   # a random order of each image's pixels
    mask = (ranks < k).reshape(N, H, W)                                      # the pixels whose rank is among the first k
    return restore(_fill(images, mask, fill))


def _lines(size: int, spacing: int, width: int, name: str) -> np.ndarray:
    if not (isinstance(spacing, (int, np.integer)) and isinstance(width, (int, np.integer)) and 0 < width <= spacing):
        raise ValueError(f"{name}: expected 0 < width <= spacing (ints), got spacing={spacing!r}, width={width!r}")
    return np.arange(size) % spacing < width                                  # lines start at 0, spacing apart


def line_mask(x: np.ndarray, orientation: str = "vertical", spacing: int = 4, width: int = 1,
              fill: str = "zero") -> np.ndarray:
    """Lines of 0 (or of each image's maximum): every column (``"vertical"``) or row (``"horizontal"``) whose
    index modulo ``spacing`` is below ``width``. A fraction width/spacing of the pixels is changed.

    >>> line_mask(np.ones((1, 3, 4), np.uint8), "vertical", spacing=2)[0].tolist()
    [[0, 1, 0, 1], [0, 1, 0, 1], [0, 1, 0, 1]]
    """
    images, restore = _as_stack(x)
    _, H, W = images.shape
    if orientation == "vertical":
        mask = np.broadcast_to(_lines(W, spacing, width, "line_mask")[None, :], (H, W))
    elif orientation == "horizontal":
        mask = np.broadcast_to(_lines(H, spacing, width, "line_mask")[:, None], (H, W))
    else:
        raise ValueError(f"line_mask: orientation must be 'vertical' or 'horizontal', got {orientation!r}")
    return restore(_fill(images, mask, fill))


def grid_mask(x: np.ndarray, spacing: int = 4, width: int = 1, fill: str = "zero") -> np.ndarray:
    """Vertical and horizontal lines at once (the pooling article's patterned masking)."""
    images, restore = _as_stack(x)
    _, H, W = images.shape
    mask = _lines(H, spacing, width, "grid_mask")[:, None] | _lines(W, spacing, width, "grid_mask")[None, :]
    return restore(_fill(images, mask, fill))


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
