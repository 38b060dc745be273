"""Measuring invariance: how much a representation or a prediction changes when the input is corrupted or moved.

    cosine_similarity(a, b)      per-sample cos(a_n, b_n) = <a_n, b_n> / (|a_n| |b_n|), averaged over the batch:
                                 1 means "the same direction", whatever the scale
    predict(model, images)       class predictions of a trained model for uint8 images, batch by batch
    feature_maps(model, x)       the output of every layer of an ``nn.Sequential``, in order
    shift_consistency(...)       Zhang (2019): the fraction of images whose predicted class is the same for two
                                 random shifts (dx, dy) drawn uniformly from [−s, s]²
"""
from __future__ import annotations

import numpy as np

from .autograd import no_grad
from .data.loader import normalize
from .data.transforms import shift
from .tensor import Tensor

__all__ = ["cosine_similarity", "predict", "feature_maps", "shift_consistency"]


def cosine_similarity(a, b) -> float:
    """Mean over the batch of the cosine similarity between a[n] and b[n], each flattened.

    A sample whose two vectors are both all zero counts as identical (1.0); one zero vector against a non-zero
    one counts as 0.0 (nothing in common).

    >>> cosine_similarity(np.array([[1.0, 0.0], [1.0, 1.0]]), np.array([[2.0, 0.0], [1.0, -1.0]]))
    0.5
    """
    a = np.asarray(a.data if isinstance(a, Tensor) else a, dtype=np.float64).reshape(len(a), -1)
    b = np.asarray(b.data if isinstance(b, Tensor) else b, dtype=np.float64).reshape(len(b), -1)
    if a.shape != b.shape:
        raise ValueError(f"cosine_similarity: the two batches must have the same shape, got {a.shape} and {b.shape}")
    norms = np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1)
    dots = np.sum(a * b, axis=1)
    both_zero = (np.linalg.norm(a, axis=1) == 0) & (np.linalg.norm(b, axis=1) == 0)
    cos = np.where(norms > 0, dots / np.where(norms > 0, norms, 1.0), np.where(both_zero, 1.0, 0.0))
    return float(np.mean(cos))


def predict(model, images: np.ndarray, batch_size: int = 1000) -> np.ndarray:
    """Predicted classes (N,) of ``model`` for uint8 images (N, H, W) or (N, 1, H, W), normalised as in training."""
    was_training = model.training
    model.eval()
    out = []
    try:
        with no_grad():
            for start in range(0, len(images), batch_size):
                logits = model(Tensor(normalize(images[start:start + batch_size])))
                out.append(logits.data.argmax(axis=1))
    finally:
        model.train(was_training)
    return np.concatenate(out) if out else np.zeros(0, dtype=np.int64)


def feature_maps(model, x) -> list:
    """[(name, output array)] for every layer of the ``nn.Sequential`` ``model`` applied to x, in eval mode."""
    was_training = model.training
    model.eval()
    maps = []
    try:
        with no_grad():
            t = x if isinstance(x, Tensor) else Tensor(x)
            for index, layer in enumerate(model):
                t = layer(t)
                maps.append((f"{index}:{type(layer).__name__}", t.data))
    finally:
        model.train(was_training)
    return maps


def shift_consistency(predict_fn, images: np.ndarray, max_shift: int, seed: int = 0) -> float:
    """Zhang's consistency: draw two shifts (dx, dy) in [−max_shift, max_shift]² per image (zero fill), and return
    the fraction of images for which ``predict_fn`` gives the same class both times.

    >>> shift_consistency(lambda x: np.zeros(len(x)), np.zeros((4, 8, 8), np.uint8), 2)   # a constant predictor
    1.0
    """
    rng = np.random.default_rng(seed)
    n = len(images)
    first = shift(images, rng.integers(-max_shift, max_shift + 1, n), rng.integers(-max_shift, max_shift + 1, n))
    second = shift(images, rng.integers(-max_shift, max_shift + 1, n), rng.integers(-max_shift, max_shift + 1, n))
    return float(np.mean(predict_fn(first) == predict_fn(second)))
