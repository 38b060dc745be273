"""The fast engine equals the plain one, op by op, on hand-picked and randomised geometries (``cases.py``);
and each of the fast engine's inner pieces equals its plain twin (``fast_twins.py``).

The geometry tables include what breaks kernels: overlapping windows (kernel 3, stride 2), strides that do
not divide the input or differ by axis, padding up to half the kernel, ceil_mode, kernels of 1 and of the whole
padded input, odd and non-square sizes, batch 1, channel 1, and batches of several blocks per thread.
Skipped where the fast engine cannot be imported.
"""
import numpy as np
import pytest

pytest.importorskip("minicnn.fast.contract", reason="the fast engine cannot be imported here", exc_type=ImportError)

import minicnn.fast  # noqa: E402
from minicnn import plain  # noqa: E402
from minicnn.fast import blas as K_blas, conv as K_conv, contract as fast  # noqa: E402
from minicnn.fast import matmul as K_mm, pool as K_pool  # noqa: E402
from minicnn.fast.vectors import copy_runs  # noqa: E402
from minicnn.shapes import conv2d_geometry, pool2d_geometry  # noqa: E402
from minicnn.testing import assert_close  # noqa: E402

import fast_twins as twins  # noqa: E402
from cases import CONV_CASES, POOL_CASES, conv_case, params, pool_case, random_params  # noqa: E402

DTYPES = [np.float32, np.float64]


@pytest.fixture(params=["serial", "parallel"])
def threads(request, monkeypatch):
    """Run a test with the serial kernels, then again with the parallel ones forced on its small inputs."""
    if request.param == "parallel":
        monkeypatch.setattr(minicnn.fast, "PARALLEL_MIN_ELEMENTS", 0)
    return request.param


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", params(CONV_CASES) + random_params(conv_case))
def test_fast_conv_equals_plain(case, dtype, rng):
    x = rng.standard_normal(case.x_shape).astype(dtype)
    w = rng.standard_normal(case.w_shape).astype(dtype)
    b = rng.standard_normal(case.w_shape[0]).astype(dtype)
    settings = (case.stride, case.padding, (1, 1), 1)
    tol = dict(rtol=1e-4, atol=1e-4) if dtype == np.float32 else dict(rtol=1e-10, atol=1e-10)
    g = rng.standard_normal(case.x_shape[:1] + case.w_shape[:1] + case.out_size).astype(dtype)
    for relu in (False, True):
        y, saved = fast.conv2d_forward(x, w, b, *settings, case.out_size, relu=relu, keep_input=True)
        y_plain, saved_plain = plain.conv2d_forward(x, w, b, *settings, case.out_size, relu=relu, keep_input=True)
        assert y.dtype == dtype and y.flags.c_contiguous
        assert_close(y, y_plain, **tol, name=f"conv2d_forward relu={relu}")
        for need in [(True, True, True), (True, False, False), (False, True, True)]:
            got = fast.conv2d_backward(g, w, saved, case.x_shape, *settings, *need)
            expected = plain.conv2d_backward(g, w, saved_plain, case.x_shape, *settings, *need)
            for name, a, e in zip(["grad_x", "grad_w", "grad_b"], got, expected):
                assert (a is None) == (e is None), name
                if a is not None:
                    assert_close(a, e, **tol, name=f"{name} (relu={relu}, need={need})")
        # The plain engine finishes a backward whose forward the fast one ran (the fallback's promise).
        for a, e in zip(plain.conv2d_backward(g, w, saved, case.x_shape, *settings, True, True, True),
                        plain.conv2d_backward(g, w, saved_plain, case.x_shape, *settings, True, True, True)):
            assert_close(a, e, rtol=0, atol=0, name="plain backward of a fast forward")
    y_relu = fast.conv2d_forward(x, w, b, *settings, case.out_size, relu=True)[0]
    assert_close(y_relu, np.maximum(fast.conv2d_forward(x, w, b, *settings, case.out_size)[0], 0), rtol=0, atol=0,
                 name="fused ReLU = ReLU after")                                 # the same sums
    # the fast engine's inner pieces
    KH, KW = case.w_shape[2:]
    args = (*case.stride, *case.padding, *case.out_size)
    cols = K_conv.im2col(x, KH, KW, *args)
    assert_close(cols, twins.im2col(x, KH, KW, *args), rtol=0, atol=0, name="im2col")
    assert_close(K_conv.col2im(cols, case.x_shape[1], *case.x_shape[2:], KH, KW, *args),
                 twins.col2im(cols, case.x_shape[1], *case.x_shape[2:], KH, KW, *args), **tol, name="col2im")


SPREAD_CASES = [
    # N, C_in, H, W, (KH, KW), (S_h, S_w), (P_h, P_w), images per block
    (7, 1, 28, 28, (5, 5), (2, 2), (2, 2), 3),            # the strided first layer, a partial last block
    (5, 2, 9, 11, (3, 3), (2, 2), (1, 1), 2),             # runs of 6, odd sizes
    (3, 3, 10, 7, (5, 5), (1, 1), (2, 2), 2),             # stride 1, padding on both sides of every row
    (4, 2, 12, 12, (3, 3), (1, 1), (0, 0), 3),
    (2, 1, 40, 40, (5, 5), (2, 2), (3, 3), 1),            # rows of 46 padded numbers: several vectors a row
    (3, 2, 35, 36, (3, 2), (1, 2), (1, 0), 2),            # runs of 35 and 18: several vectors a run
    (2, 2, 9, 10, (3, 2), (2, 1), (1, 0), 2),             # strides and kernels differing by axis
]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", SPREAD_CASES)
def test_spread_from_split_rows_equals_spread_by_reads(case, dtype, rng):
    """The spread's two ways (``_spread_split``: runs out of rows split into phases, with LLVM vectors;
    ``_spread_read``: one number at a time through the lanes table) give the same block, zeros included, for
    every block of the batch; the plan picks one by stride, so both are forced here."""
    N, C_in, H, W, (KH, KW), (S_h, S_w), (P_h, P_w), B = case
    *_, (OH, OW) = conv2d_geometry((N, C_in, H, W), (1, C_in, KH, KW), (S_h, S_w), (P_h, P_w))
    plan = K_conv.Plan(C_in, H, W, KH, KW, S_h, S_w, P_h, P_w, OH, OW, images=B)
    x = rng.standard_normal((N, C_in, H, W)).astype(dtype)
    split = np.empty((1, B * C_in * H * S_w * K_conv.split_width(W, P_w, S_w)), dtype)    # thread 0's
    for k in range(plan.blocks(N)):
        n0, n1 = k * B, min(k * B + B, N)
        by_runs = np.full(plan.block_size, np.nan, dtype)
        by_reads = np.full(plan.block_size, np.nan, dtype)
        K_conv._spread_block(x, n0, n1, by_runs, split, 0, plan.tables, B, plan.geometry)
        K_conv._spread_block(x, n0, n1, by_reads, None, 0, plan.tables, B, plan.geometry)
        assert not np.isnan(by_reads).any() and not np.isnan(by_runs).any(), "a place of the block left unwritten"
        assert_close(by_runs, by_reads, rtol=0, atol=0, name=f"spread of block {k}")


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("M, K, Q", [(1, 1, 1), (4, 4, 16), (6, 25, 784), (16, 150, 100), (5, 7, 3), (3, 2, 9),
                                     (150, 16, 100), (9, 1, 5)])
def test_small_matmuls_equal_reference(M, K, Q, dtype, rng):
    """The register-blocked products, on sizes that are and are not multiples of their 4 × 4 blocks, with rows
    read from a flat source at arbitrary, overlapping offsets (as the stride-1 convolution reads them)."""
    tol = dict(rtol=1e-4, atol=1e-4) if dtype == np.float32 else dict(rtol=1e-10, atol=1e-10)
    for B in (1, 3):
        L = Q + 2 * K + 3
        source = rng.standard_normal((B, L)).astype(dtype)
        window = rng.integers(0, L - Q + 1, K).astype(np.uint64)
        a = rng.standard_normal((M, K)).astype(dtype)
        c = rng.standard_normal((B, M, Q)).astype(dtype)
        start = rng.standard_normal((M, K)).astype(dtype)
        out, expected = start.copy(), start.copy()
        K_mm.matmul_nt_add(c, source, window, out)
        twins.matmul_nt_add(c, source, window, expected)
        assert_close(out, expected, **tol, name="matmul_nt_add")
        initial = rng.standard_normal(M).astype(dtype)
        target_window = rng.integers(0, L - Q + 1, M).astype(np.uint64)         # overlapping rows add up
        out, expected = source.copy(), source.copy()
        K_mm.matmul_scatter_add(a, source, window, out, target_window, Q, initial, K_mm.ADD)
        twins.matmul_scatter_add(a, source, window, expected, target_window, Q, initial, K_mm.ADD)
        assert_close(out, expected, **tol, name="matmul_scatter_add (accumulate)")
        target_window = (np.arange(M) * (Q + 2) + 1).astype(np.uint64)           # storing: rows apart, gaps kept
        for mode in (K_mm.STORE, K_mm.STORE_RELU):
            out = rng.standard_normal((B, M * (Q + 2) + 1)).astype(dtype)
            expected = out.copy()
            K_mm.matmul_scatter_add(a, source, window, out, target_window, Q, initial, mode)
            twins.matmul_scatter_add(a, source, window, expected, target_window, Q, initial, mode)
            assert_close(out, expected, **tol, name=f"matmul_scatter_add (mode {mode})")


@pytest.mark.skipif(not K_blas.AVAILABLE, reason="numpy's BLAS is not the OpenBLAS minicnn calls from its kernels")
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("trans_a", [False, True])
@pytest.mark.parametrize("trans_b", [False, True])
def test_threaded_gemm_equals_reference(dtype, trans_a, trans_b, rng):
    """Rows split among 1, 2 or 3 bands (more bands than rows included), transposed operands read in place, with
    and without a bias, with and without the ReLU."""
    tol = dict(rtol=1e-4, atol=1e-4) if dtype == np.float32 else dict(rtol=1e-12, atol=1e-12)
    for M, K, N in [(1, 1, 1), (2, 7, 3), (13, 400, 120), (64, 120, 84), (5, 3, 17)]:
        a = rng.standard_normal((K, M) if trans_a else (M, K)).astype(dtype)
        b = rng.standard_normal((N, K) if trans_b else (K, N)).astype(dtype)
        bias = rng.standard_normal(N).astype(dtype) if M % 2 else None
        for relu in (False, True):
            expected = twins.gemm(a, b, trans_a, trans_b, bias, relu=relu)
            for threads in (1, 2, 3):
                got = K_blas.gemm(a, b, trans_a, trans_b, bias, threads=threads, relu=relu)
                assert got.dtype == dtype and got.flags.c_contiguous
                assert_close(got, expected, **tol, name=f"gemm {M}x{K}x{N} on {threads} threads, relu {relu}")


@pytest.mark.parametrize("dtype", DTYPES)
def test_gemm_without_the_threaded_blas_falls_back_to_numpy(dtype, rng, monkeypatch):
    """Another BLAS (AVAILABLE False): the same results through numpy's ``@``, bias included."""
    monkeypatch.setattr(K_blas, "AVAILABLE", False)
    a, b = rng.standard_normal((5, 7)).astype(dtype), rng.standard_normal((3, 7)).astype(dtype)
    bias = rng.standard_normal(3).astype(dtype)
    got = K_blas.gemm(a, b, trans_b=True, bias=bias)
    assert got.dtype == dtype and got.flags.c_contiguous
    assert_close(got, twins.gemm(a, b, False, True, bias), rtol=1e-5, atol=1e-5, name="gemm fallback")
    assert_close(K_blas.gemm(a, b, trans_b=True, bias=bias, relu=True), twins.gemm(a, b, False, True, bias, relu=True),
                 rtol=1e-5, atol=1e-5, name="gemm fallback, relu")


def test_gemm_rejects_mismatched_inner_dimensions(rng):
    with pytest.raises(ValueError, match="inner dimensions"):
        K_blas.gemm(np.zeros((3, 4), np.float32), np.zeros((5, 2), np.float32))
    with pytest.raises(ValueError, match="bias of shape"):
        K_blas.gemm(np.zeros((3, 4), np.float32), np.zeros((4, 2), np.float32), bias=np.zeros(3, np.float32))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", params(POOL_CASES) + random_params(pool_case))
def test_fast_pools_equal_plain(case, dtype, rng, threads):
    x = rng.standard_normal(case.x_shape).astype(dtype)
    x.flat[rng.integers(0, x.size, size=3)] = x.flat[0]          # some ties: the first maximum must win
    K, S, P, out, in_size = case.kernel, case.stride, case.padding, case.out_size, case.x_shape[2:]

    y, argmax = fast.max_pool2d_forward(x, K, S, P, (1, 1), out)
    y_plain, argmax_plain = plain.max_pool2d_forward(x, K, S, P, (1, 1), out)
    assert_close(y, y_plain, rtol=0, atol=0, name="max_pool2d_forward")
    np.testing.assert_array_equal(argmax, argmax_plain)
    g = rng.standard_normal(y.shape).astype(dtype)
    assert_close(fast.max_pool2d_backward(g, argmax, in_size), plain.max_pool2d_backward(g, argmax, in_size),
                 rtol=1e-6, atol=1e-6, name="max_pool2d_backward")

    for count_include_pad in (True, False):
        assert_close(fast.avg_pool2d_forward(x, K, S, P, out, count_include_pad, None),
                     plain.avg_pool2d_forward(x, K, S, P, out, count_include_pad, None), rtol=1e-5, atol=1e-6,
                     name=f"avg_pool2d_forward(count_include_pad={count_include_pad})")
        assert_close(fast.avg_pool2d_backward(g, in_size, K, S, P, count_include_pad, None),
                     plain.avg_pool2d_backward(g, in_size, K, S, P, count_include_pad, None), rtol=1e-5, atol=1e-6,
                     name="avg_pool2d_backward")

    assert_close(fast.global_avg_pool2d_forward(x), plain.global_avg_pool2d_forward(x), rtol=1e-5, atol=1e-6)
    g1 = rng.standard_normal(case.x_shape[:2] + (1, 1)).astype(dtype)
    assert_close(fast.global_avg_pool2d_backward(g1, in_size), plain.global_avg_pool2d_backward(g1, in_size),
                 rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("shape", [(2, 3, 8, 8), (1, 2, 9, 7)])
def test_2x2_fast_paths_equal_the_general_path_bit_for_bit(shape, rng, threads):
    x = rng.standard_normal(shape).astype(np.float32)
    x[0, 0, 0, :2] = x[0, 0, 1, 0]                                   # ties
    x[0, 1, 2, 3] = np.nan
    OH, OW = shape[2] // 2, shape[3] // 2
    y, argmax = K_pool._max_pool2d_2x2(x, OH, OW)
    y_general, argmax_general = K_pool._max_pool2d_general(x, 2, 2, 2, 2, 0, 0, OH, OW)
    np.testing.assert_array_equal(y, y_general)
    np.testing.assert_array_equal(argmax, argmax_general)
    np.testing.assert_array_equal(K_pool._avg_pool2d_2x2(x, OH, OW),
                                  K_pool._avg_pool2d_general(x, 2, 2, 2, 2, 0, 0, OH, OW, True))
    g = rng.standard_normal((shape[0], shape[1], OH, OW)).astype(np.float32)
    np.testing.assert_array_equal(K_pool._avg_pool2d_2x2_backward(g, *shape[2:]),
                                  K_pool._avg_pool2d_general_backward(g, *shape[2:], 2, 2, 2, 2, 0, 0, True))


def test_max_pool_nan_wins_like_pytorch():
    x = np.array([[[[1.0, np.nan], [np.nan, 5.0]]]], dtype=np.float32)
    for engine in (fast, plain):
        y, argmax = engine.max_pool2d_forward(x, (2, 2), (2, 2), (0, 0), (1, 1), (1, 1))
        assert np.isnan(y[0, 0, 0, 0])
        assert argmax[0, 0, 0, 0] == 2          # PyTorch's scan `v > best or isnan(v)` keeps the last NaN


@pytest.mark.parametrize("dtype", DTYPES)
def test_general_max_pool_on_nans_infinities_zeros_and_ties_equals_reference(dtype, rng, threads):
    """The general path finds each window's maximum first and then where it is (its first cell equal to the
    maximum; the last NaN when there is one), so that no branch depends on the data while the maximum is found.
    Checked, both versions, against the reference's running maximum on windows full of NaNs, ±∞, ±0 and ties,
    overlapping and padded."""
    values = np.array([np.nan, np.inf, -np.inf, 0.0, -0.0, 1.0, -1.0, 1.0])
    x = rng.choice(values, size=(2, 3, 9, 8)).astype(dtype)
    for K, S, P in [((3, 3), (2, 2), (1, 1)), ((2, 3), (1, 2), (1, 0)), ((3, 3), (1, 1), (0, 0))]:
        _, _, _, _, (OH, OW) = pool2d_geometry(x.shape, K, S, P, False, "test")
        args = (*K, *S, *P, OH, OW)
        y_ref, argmax_ref = plain.max_pool2d_forward(x, K, S, P, (1, 1), (OH, OW))
        for version in (K_pool._max_pool2d_general.serial, K_pool._max_pool2d_general.parallel):
            y, argmax = version(x, *args)
            np.testing.assert_array_equal(y, y_ref)                   # NaN where NaN
            np.testing.assert_array_equal(np.signbit(y), np.signbit(y_ref))
            np.testing.assert_array_equal(argmax, argmax_ref)


def test_max_pool_all_minus_infinity_picks_the_first_cell():
    x = np.full((1, 1, 2, 2), -np.inf, dtype=np.float32)
    y, argmax = K_pool.max_pool2d_forward(x, 2, 2, 2, 2, 0, 0, 1, 1)
    assert y[0, 0, 0, 0] == -np.inf and argmax[0, 0, 0, 0] == 0


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(1,), (7,), (2, 3, 5, 4), (64, 6, 28, 28)])
def test_relu_kernels_equal_reference(shape, dtype, rng, threads):
    x = rng.standard_normal(shape).astype(dtype)
    x.flat[0] = np.nan
    y = fast.relu_forward(x)
    assert_close(y, plain.relu_forward(x), rtol=0, atol=0)
    assert np.isnan(y.flat[0])
    g = rng.standard_normal(shape).astype(dtype)
    assert_close(fast.relu_backward(g, y), plain.relu_backward(g, y), rtol=0, atol=0)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape, stride", [((2, 3, 9, 7), 2), ((1, 2, 2, 2), 2), ((2, 2, 6, 5), 1), ((1, 1, 10, 11), 3),
                                           ((3, 1, 28, 28), 2)])
def test_blur_pool_kernels_equal_reference(shape, stride, dtype, rng, threads):
    x = rng.standard_normal(shape).astype(dtype)
    out_h, out_w = (shape[2] - 1) // stride + 1, (shape[3] - 1) // stride + 1
    y = fast.blur_pool2d_forward(x, stride, (out_h, out_w))
    assert_close(y, plain.blur_pool2d_forward(x, stride, (out_h, out_w)), rtol=1e-5, atol=1e-6)
    g = rng.standard_normal(y.shape).astype(dtype)
    assert_close(fast.blur_pool2d_backward(g, shape[2:], stride), plain.blur_pool2d_backward(g, shape[2:], stride),
                 rtol=1e-5, atol=1e-6)


@pytest.mark.skipif(not K_conv.VECTOR_CODE, reason="LLVM vector code does not run under NUMBA_DISABLE_JIT")
@pytest.mark.parametrize("outer, inner, length", [(1, 1, 1), (2, 2, 3), (3, 4, 5), (2, 3, 20), (1, 1, 16),
                                                  (5, 1, 2), (1, 7, 9), (2, 2, 33)])
def test_copy_runs_copies_and_writes_nothing_past_its_runs(outer, inner, length):
    """``vectors.copy_runs`` stores whole vectors past a run's end only where later runs write again: the
    runs land where they belong, and a guard of sentinels after the last one is untouched, for runs shorter,
    as long as and longer than a vector."""
    src = np.arange(2000, dtype=np.float32)
    n = outer * inner * length
    dst = np.full(n + 64, -1, np.float32)
    _copy_runs(dst, src, inner * length, length, 3 * inner * length + 11, length + 2, outer, inner, length)
    expected = [src[a * (3 * inner * length + 11) + i * (length + 2) + c]
                for a in range(outer) for i in range(inner) for c in range(length)]
    np.testing.assert_array_equal(dst[:n], expected)
    np.testing.assert_array_equal(dst[n:], -1)


@minicnn.fast.kernel
def _copy_runs(dst, src, dst_outer, dst_inner, src_outer, src_inner, outer, inner, length):
    """``vectors.copy_runs`` on two flat arrays (it is an intrinsic: only compiled code can call it)."""
    copy_runs(dst[0], dst.ctypes.data, dst_outer, dst_inner, src.ctypes.data, src_outer, src_inner, outer, inner,
              length)
