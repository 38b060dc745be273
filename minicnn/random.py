"""One seeded random generator for everything minicnn draws: initial weights, dropout masks, shuffles.

``mc.manual_seed(n)`` resets it, so the same seed gives the same numbers (PyTorch's ``torch.manual_seed``).
"""
import numpy as np

__all__ = ["manual_seed", "generator", "get_state", "set_state"]

_generator = np.random.default_rng(0)


def manual_seed(seed: int) -> np.random.Generator:
    """Reset minicnn's random generator to ``seed`` and return it."""
    global _generator
    if not isinstance(seed, (int, np.integer)) or isinstance(seed, bool) or seed < 0:
        raise ValueError(f"manual_seed: seed must be a non-negative int, got {seed!r}")
    _generator = np.random.default_rng(int(seed))
    return _generator


def generator() -> np.random.Generator:
    """The generator every random choice in minicnn draws from."""
    return _generator


def get_state() -> dict:
    """The generator's state (a dict), e.g. to save in a checkpoint."""
    return _generator.bit_generator.state


def set_state(state: dict) -> None:
    """Restore a state returned by ``get_state``."""
    _generator.bit_generator.state = state
