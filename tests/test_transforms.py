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


# ----- corruptions -------------------------------------------------------------------------------------------
from minicnn.data.transforms import grid_mask, line_mask, random_mask  # noqa: E402


def test_random_mask_changes_exactly_round_fraction_of_pixels_per_image():
    x = np.random.default_rng(0).integers(1, 256, (20, 28, 28)).astype(np.uint8)     # no zeros to start with
    for fraction in (0.1, 0.25, 0.5):
        masked = random_mask(x, fraction, seed=3)
        assert masked.shape == x.shape and masked.dtype == x.dtype
        changed = (masked != x).sum(axis=(1, 2))
        assert (changed == round(fraction * 784)).all()
        assert (masked[masked != x] == 0).all()
    np.testing.assert_array_equal(random_mask(x, 0.3, seed=3), random_mask(x, 0.3, seed=3))
    assert not np.array_equal(random_mask(x, 0.3, seed=3), random_mask(x, 0.3, seed=4))
    assert np.array_equal(random_mask(x, 0.0, seed=3), x) and (random_mask(x, 1.0, seed=3) == 0).all()


def test_inverse_masks_the_same_pixels_with_each_images_maximum():
    x = np.random.default_rng(1).integers(1, 200, (5, 28, 28)).astype(np.uint8)
    zero, top = random_mask(x, 0.2, seed=7), random_mask(x, 0.2, seed=7, fill="max")
    where = zero == 0                                    # x has no zeros: these are exactly the masked pixels
    assert (top[where] == np.broadcast_to(x.max(axis=(1, 2), keepdims=True), x.shape)[where]).all()
    assert (top[~where] == x[~where]).all()


def test_line_and_grid_masks_by_hand():
    x = np.full((1, 4, 6), 9, dtype=np.uint8)
    x[0, 1, 1] = 50                                                              # the image's maximum
    vertical = line_mask(x, "vertical", spacing=3, width=1)[0]
    assert (vertical[:, [0, 3]] == 0).all() and (vertical[:, [1, 2, 4, 5]] != 0).all()
    horizontal = line_mask(x, "horizontal", spacing=2, width=1, fill="max")[0]
    assert horizontal.tolist() == [[50] * 6, [9, 50, 9, 9, 9, 9], [50] * 6, [9] * 6]
    grid = grid_mask(x, spacing=3, width=1)[0]
    assert (grid[0] == 0).all() and (grid[3] == 0).all() and (grid[:, 0] == 0).all() and (grid[:, 3] == 0).all()
    assert (grid == 0).sum() == 2 * 6 + 2 * 4 - 4
    assert line_mask(x[:, None], "vertical").shape == (1, 1, 4, 6)


@pytest.mark.parametrize("call, message", [
    (lambda x: random_mask(x, 1.5), r"random_mask: fraction must be in \[0, 1\], got 1.5"),
    (lambda x: line_mask(x, "diagonal"), r"orientation must be 'vertical' or 'horizontal', got 'diagonal'"),
    (lambda x: line_mask(x, "vertical", spacing=2, width=3), r"expected 0 < width <= spacing"),
    (lambda x: grid_mask(x, fill="mean"), r"fill must be one of \('zero', 'max'\), got 'mean'"),
])
def test_corruptions_refuse_bad_arguments(call, message):
    with pytest.raises(ValueError, match=message):
        call(np.ones((2, 8, 8), np.uint8))


def test_shift_with_one_shift_per_image():
    x = np.arange(1, 10, dtype=np.uint8).reshape(1, 3, 3).repeat(2, axis=0)
    out = shift(x, dx=np.array([1, 0]), dy=np.array([0, -1]))
    assert out[0].tolist() == [[0, 1, 2], [0, 4, 5], [0, 7, 8]]
    assert out[1].tolist() == [[4, 5, 6], [7, 8, 9], [0, 0, 0]]
