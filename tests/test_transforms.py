"""Image transforms on hand-made images: exact pixels moved, zero fill, determinism by seed."""
import numpy as np
import pytest

from minicnn.data import DataLoader
from minicnn.data.transforms import random_shift_flip, shift


def test_shift_moves_pixels_and_fills_with_zeros():
    x = np.arange(1, 17, dtype=np.uint8).reshape(1, 4, 4)
    right_down = shift(x, dx=1, dy=2)[0]
    assert right_down.tolist() == [[0, 0, 0, 0], [0, 0, 0, 0], [0, 1, 2, 3], [0, 5, 6, 7]]
    left_up = shift(x, dx=-2, dy=-1)[0]
    assert left_up.tolist() == [[7, 8, 0, 0], [11, 12, 0, 0], [15, 16, 0, 0], [0, 0, 0, 0]]
    assert shift(x, 0, 0).tolist() == x.tolist()
    assert shift(x, 4, 0).sum() == 0                            # moved out entirely
    assert shift(x[:, None], 1, 0).shape == (1, 1, 4, 4)          # (N, 1, H, W) keeps its layout
    assert shift(x.astype(np.float32), 1, 1).dtype == np.float32


def test_shift_refuses_bad_shapes():
    with pytest.raises(ValueError, match=r"expected images of shape \(N, H, W\) or \(N, 1, H, W\), got shape \(4, 4\)"):
        shift(np.zeros((4, 4)), 1, 0)


def test_random_shift_flip_is_a_shift_or_flipped_shift_and_seeded():
    rng = np.random.default_rng(0)
    x = rng.integers(1, 256, (50, 8, 8)).astype(np.uint8)
    out = random_shift_flip(x, np.random.default_rng(5), max_shift=2)
    for image, moved in zip(x, out):
        candidates = [shift(image[None], dx, dy)[0] for dx in range(-2, 3) for dy in range(-2, 3)]
        candidates += [c[:, ::-1] for c in candidates]
        assert any(np.array_equal(moved, c) for c in candidates)
    np.testing.assert_array_equal(out, random_shift_flip(x, np.random.default_rng(5), max_shift=2))
    assert not np.array_equal(out, random_shift_flip(x, np.random.default_rng(6), max_shift=2))


def test_augmented_batches_depend_on_seed_epoch_and_batch_only():
    x = np.random.default_rng(0).integers(0, 256, (20, 28, 28)).astype(np.uint8)
    y = np.arange(20)
    loader = DataLoader(x, y, 8, shuffle=True, seed=1, augment=random_shift_flip)
    first = [b.copy() for b, _ in loader.batches(2)]
    again = [b for b, _ in loader.batches(2)]
    for a, b in zip(first, again):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(first[1], next(loader.batches(2, start=1))[0])     # resuming mid-epoch
    plain = DataLoader(x, y, 8, shuffle=True, seed=1)
    assert not np.array_equal(first[0], next(plain.batches(2))[0])
