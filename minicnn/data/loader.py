"""Batches for training: shuffle, cut into batches, convert to float32 NCHW, normalise.

The dataset stays as uint8 (47 MB for the training images, instead of 188 MB as float32); each batch is
converted when it is drawn::

    x_batch = (images / 255 − mean) / std        mean = 0.2860, std = 0.3530 (Fashion-MNIST's training set)

Shuffling is reproducible: epoch e's order is a permutation drawn from a generator seeded with (seed, e), so
it depends only on the seed and the epoch, never on what ran before; an optional augmentation draws from a
generator seeded with (seed, e, batch number). That is what lets an interrupted run resume mid-epoch with
exactly the batches it would have seen.
"""
from __future__ import annotations

import math
import numbers

import numpy as np

__all__ = ["FASHION_MNIST_MEAN", "FASHION_MNIST_STD", "normalize", "DataLoader"]

FASHION_MNIST_MEAN = 0.2860
FASHION_MNIST_STD = 0.3530


def normalize(images: np.ndarray, mean: float = FASHION_MNIST_MEAN, std: float = FASHION_MNIST_STD) -> np.ndarray:
    """uint8 images (N, H, W) or (N, 1, H, W) → float32 (N, 1, H, W), scaled to [0, 1] then standardised."""
    x = images.astype(np.float32)
    if x.ndim == 3:
        x = x[:, None]
    x *= np.float32(1.0 / (255.0 * std))
    x -= np.float32(mean / std)
    return x


class DataLoader:
    """Iterate over (images, labels) in batches.

    Args:
        x: images, uint8 (N, H, W) or (N, 1, H, W) (or float already in [0, 1]).
        y: labels (N,), integers.
        batch_size: images per batch.
        shuffle: draw a new order each epoch (from ``seed`` and the epoch number).
        seed: the shuffling seed.
        drop_last: drop the last, smaller batch.
        augment: optional function (uint8 images (B, H, W), numpy Generator) → images, applied to each batch
            before normalisation (e.g. ``transforms.random_shift_flip``).

    Each ``for`` loop over the loader is one epoch and advances ``loader.epoch``; ``set_epoch(e)`` jumps to
    epoch e, and ``batches(e, start)`` gives epoch e's batches from number ``start`` on (for resuming).

    >>> loader = DataLoader(np.zeros((10, 28, 28), np.uint8), np.arange(10), batch_size=4, shuffle=True, seed=0)
    >>> [xb.shape for xb, yb in loader]
    [(4, 1, 28, 28), (4, 1, 28, 28), (2, 1, 28, 28)]
    """

    def __init__(self, x, y, batch_size: int, shuffle: bool = False, seed: int = 0, drop_last: bool = False,
                 augment=None):
        x, y = np.asarray(x), np.asarray(y)
        if len(x) != len(y):
            raise ValueError(f"DataLoader: x and y must have the same length, got {len(x)} images and {len(y)} labels")
        if not isinstance(batch_size, numbers.Integral) or isinstance(batch_size, bool) or batch_size <= 0:
            raise ValueError(f"DataLoader: batch_size must be a positive int, got {batch_size!r}")
        if y.dtype.kind == "f" and not np.all(np.mod(y, 1) == 0):
            raise ValueError("DataLoader: y must hold whole-number class labels; got fractional values such as "
                             f"{y[np.mod(y, 1) != 0][0]}")
        if y.dtype.kind not in "iuf":
            raise TypeError(f"DataLoader: y must hold integer class labels, got dtype {y.dtype}")
        self.x, self.y = x, y.astype(np.int64)
        batch_size = int(batch_size)
        self.batch_size, self.shuffle, self.seed, self.drop_last = batch_size, shuffle, seed, drop_last
        self.augment = augment
        self.epoch = 0

    def __len__(self) -> int:
        """Batches per epoch."""
        n = len(self.x) / self.batch_size
        return math.floor(n) if self.drop_last else math.ceil(n)

    def order(self, epoch: int) -> np.ndarray:
        """The sample order of ``epoch``: a permutation seeded by (seed, epoch), or 0..N−1 without shuffling."""
        if not self.shuffle:
            return np.arange(len(self.x))
        return np.random.default_rng([self.seed, epoch]).permutation(len(self.x))

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def batches(self, epoch: int, start: int = 0):
        """Yield epoch ``epoch``'s batches, from batch number ``start`` on."""
        order = self.order(epoch)
        for b in range(start, len(self)):
            index = order[b * self.batch_size:(b + 1) * self.batch_size]
            images = self.x[index]
            if self.augment is not None:
                images = self.augment(images, np.random.default_rng([self.seed, epoch, b]))
            images = normalize(images) if images.dtype == np.uint8 else images.astype(np.float32)
            yield images, self.y[index]

    def __iter__(self):
        epoch = self.epoch
        self.epoch += 1
        return self.batches(epoch)
