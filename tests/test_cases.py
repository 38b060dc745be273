"""The random geometries of ``cases.py`` are many, different, and cover what breaks kernels."""
import pytest


from cases import RANDOM_CASES, conv_case, pool_case


def test_each_random_case_is_its_own_geometry_and_the_same_on_every_call():
    for make in (conv_case, pool_case):
        cases = [make(i) for i in range(RANDOM_CASES)]
        assert len(set(cases)) >= 20, f"{make.__name__}: only {len(set(cases))} distinct geometries"
        assert cases == [make(i) for i in range(RANDOM_CASES)], "a case changed between two calls"


def test_random_conv_cases_cover_what_breaks_kernels():
    images_per_block = pytest.importorskip("minicnn.fast.conv", exc_type=ImportError).images_per_block
    cases = [conv_case(i) for i in range(RANDOM_CASES)]
    kernels = [c.w_shape[2:] for c in cases]
    padded = [(c.x_shape[2] + 2 * c.padding[0], c.x_shape[3] + 2 * c.padding[1]) for c in cases]
    assert (1, 1) in kernels
    assert any(k == p for k, p in zip(kernels, padded)), "no kernel covers the whole padded input"
    assert any(c.stride[0] != c.stride[1] for c in cases) and any(min(c.stride) > 1 for c in cases)
    assert any(c.padding != (0, 0) for c in cases) and any(c.x_shape[0] == 1 for c in cases)
    blocks = [-(-c.x_shape[0] // images_per_block(c.out_size[0] * c.out_size[1], c.x_shape[0], 2)) for c in cases]
    assert sum(b >= 4 for b in blocks) >= 5, f"too few batches of several blocks per thread: {blocks}"


def test_random_pool_cases_cover_what_breaks_kernels():
    cases = [pool_case(i) for i in range(RANDOM_CASES)]
    assert {c.ceil_mode for c in cases} == {True, False}
    assert {c.count_include_pad for c in cases} == {True, False}
    assert any(c.kernel == (1, 1) for c in cases)
    assert any(c.kernel == (c.x_shape[2] + 2 * c.padding[0], c.x_shape[3] + 2 * c.padding[1]) for c in cases)
    assert any(c.stride[0] < c.kernel[0] for c in cases), "no overlapping windows"
    assert any(c.padding != (0, 0) for c in cases) and any(c.x_shape[0] >= 13 for c in cases)
