"""LeNet-style pyramids by name, for controlled comparisons of how a CNN downsamples.

Every builder returns an ``nn.Sequential`` for (N, 1, 28, 28) images and 10 classes. ``maxpool``, ``avgpool``
and ``strided`` share the same two convolutions' shapes and the same fully connected head, so they have the
same 61,706 parameters and differ only in *how* 28 × 28 maps shrink to 5 × 5:

    maxpool   conv 5×5 (pad 2) → ReLU → max 2×2 → conv 5×5 → ReLU → max 2×2      28 → 28 → 14 → 10 → 5
    avgpool   the same with average pooling
    strided   conv 5×5 stride 2 (pad 2) → ReLU → conv 5×5 stride 2 → ReLU         28 → 14 → 5 (learned downsampling)
    gap       three 3×3 convs with two max pools, then global average pooling and one linear layer
    nopool    ``maxpool`` with both pools removed: 28 → 28 → 24, and a 9,216-input head (the no-pooling baseline)
    blurpool  ``maxpool`` anti-aliased (Zhang 2019): each MaxPool2d(2) becomes MaxPool2d(2, stride=1) →
              BlurPool2d, 28 → 28 → 27 → 14 → 10 → 9 → 5; the same 61,706 parameters
"""
from . import nn

__all__ = ["MODELS", "build", "maxpool", "avgpool", "strided", "gap", "nopool", "blurpool"]


def _head(in_features: int) -> list:
    """The classifier every pyramid ends with: Flatten → 120 → 84 → 10, as LeNet-5."""
    return [nn.Flatten(), nn.Linear(in_features, 120), nn.ReLU(), nn.Linear(120, 84), nn.ReLU(), nn.Linear(84, 10)]


def maxpool() -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(1, 6, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Conv2d(6, 16, 5), nn.ReLU(), nn.MaxPool2d(2), *_head(16 * 5 * 5))


def avgpool() -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(1, 6, 5, padding=2), nn.ReLU(), nn.AvgPool2d(2),
                         nn.Conv2d(6, 16, 5), nn.ReLU(), nn.AvgPool2d(2), *_head(16 * 5 * 5))


def strided() -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(1, 6, 5, stride=2, padding=2), nn.ReLU(),
                         nn.Conv2d(6, 16, 5, stride=2), nn.ReLU(), *_head(16 * 5 * 5))


def gap() -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(1, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(),
                         nn.GlobalAvgPool2d(), nn.Flatten(), nn.Linear(64, 10))


def nopool() -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(1, 6, 5, padding=2), nn.ReLU(),
                         nn.Conv2d(6, 16, 5), nn.ReLU(), *_head(16 * 24 * 24))


def blurpool() -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(1, 6, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2, stride=1), nn.BlurPool2d(6),
                         nn.Conv2d(6, 16, 5), nn.ReLU(), nn.MaxPool2d(2, stride=1), nn.BlurPool2d(16),
                         *_head(16 * 5 * 5))


MODELS = {"maxpool": maxpool, "avgpool": avgpool, "strided": strided, "gap": gap, "nopool": nopool,
          "blurpool": blurpool}


def build(name: str) -> nn.Sequential:
    """The model called ``name`` (one of ``MODELS``), freshly initialised from minicnn's generator."""
    if name not in MODELS:
        raise ValueError(f"build: unknown model {name!r}; expected one of {', '.join(MODELS)}")
    return MODELS[name]()
