"""Every fast kernel equals its plain reference, on hand-picked and randomised geometries (``cases.py``).

The geometry tables include what breaks kernels: overlapping windows (kernel 3, stride 2), strides that do
not divide the input or differ by axis, padding up to half the kernel, ceil_mode, kernels of 1 and of the whole
padded input, odd and non-square sizes, batch 1, channel 1, and batches of several blocks per thread.
"""
import numpy as np
import pytest

import minicnn.kernels
from minicnn.kernels import activation as K_act, blas as K_blas, conv as K_conv, matmul as K_mm, pool as K_pool
from minicnn.kernels.shapes import conv2d_geometry, pool2d_geometry
from minicnn.kernels.vectors import copy_runs
from minicnn.reference import activation as R_act, blas as R_blas, conv as R_conv, matmul as R_mm, pool as R_pool
from minicnn.testing import assert_close

from cases import CONV_CASES, POOL_CASES, conv_case, params, pool_case, random_params

DTYPES = [np.float32, np.float64]


@pytest.fixture(params=["serial", "parallel"])
def threads(request, monkeypatch):
    """Run a test with the serial kernels, then again with the parallel ones forced on its small inputs."""
    if request.param == "parallel":
        monkeypatch.setattr(minicnn.kernels, "PARALLEL_MIN_ELEMENTS", 0)
    return request.param


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", params(CONV_CASES) + random_params(conv_case))
def test_conv_kernels_equal_reference(case, dtype, rng):
    x_shape, w_shape, S, P = case.x_shape, case.w_shape, case.stride, case.padding
    x = rng.standard_normal(x_shape).astype(dtype)
    w = rng.standard_normal(w_shape).astype(dtype)
    b = rng.standard_normal(w_shape[0]).astype(dtype)
    _, _, (OH, OW) = conv2d_geometry(x_shape, w_shape, S, P)
    args = (*S, *P, OH, OW)
    tol = dict(rtol=1e-4, atol=1e-4) if dtype == np.float32 else dict(rtol=1e-10, atol=1e-10)
    y = K_conv.conv2d_forward(x, w, b, *args)
    assert y.dtype == dtype and y.flags.c_contiguous
    assert_close(y, R_conv.conv2d_forward(x, w, b, *args), **tol, name="conv2d_forward")
    y_relu = K_conv.conv2d_forward(x, w, b, *args, relu=True)
    assert_close(y_relu, R_conv.conv2d_forward(x, w, b, *args, relu=True), **tol, name="conv2d_forward relu")
    assert_close(y_relu, np.maximum(y, 0), rtol=0, atol=0, name="fused ReLU = ReLU after")   # the same sums

    g = rng.standard_normal(y.shape).astype(dtype)
    H, W, KH, KW = x_shape[2], x_shape[3], w_shape[2], w_shape[3]
    assert_close(K_conv.conv2d_backward_input(g, w, H, W, *S, *P),
                 R_conv.conv2d_backward_input(g, w, H, W, *S, *P), **tol, name="conv2d_backward_input")
    assert_close(K_conv.conv2d_backward_weight(g, x, KH, KW, *S, *P),
                 R_conv.conv2d_backward_weight(g, x, KH, KW, *S, *P), **tol, name="conv2d_backward_weight")

    y_kept, kept = K_conv.conv2d_forward_keep(x, w, b, *args)
    assert_close(y_kept, y, rtol=0, atol=0, name="conv2d_forward_keep y")
    assert_close(K_conv.conv2d_forward_keep(x, w, b, *args, relu=True)[0], y_relu, rtol=0, atol=0,
                 name="conv2d_forward_keep relu")
    assert_close(K_conv.conv2d_backward_weight_kept(g, kept, x_shape, KH, KW, *S, *P),
                 R_conv.conv2d_backward_weight(g, x, KH, KW, *S, *P), **tol, name="conv2d_backward_weight_kept")
    grad_x, grad_w = K_conv.conv2d_backward(g, w, kept, x_shape, *S, *P)           # both in one pass
    assert_close(grad_x, R_conv.conv2d_backward_input(g, w, H, W, *S, *P), **tol, name="conv2d_backward x")
    assert_close(grad_w, R_conv.conv2d_backward_weight(g, x, KH, KW, *S, *P), **tol, name="conv2d_backward w")
    assert K_conv.conv2d_backward(g, w, None, x_shape, *S, *P, need_w=False)[1] is None
    cols = K_conv.im2col(x, KH, KW, *args)
    assert_close(cols, R_conv.im2col(x, KH, KW, *args), rtol=0, atol=0, name="im2col")
    assert_close(K_conv.col2im(cols, x_shape[1], H, W, KH, KW, *args),
                 R_conv.col2im(cols, x_shape[1], H, W, KH, KW, *args), **tol, name="col2im")


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
    _, _, (OH, OW) = conv2d_geometry((N, C_in, H, W), (1, C_in, KH, KW), (S_h, S_w), (P_h, P_w))
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
        R_mm.matmul_nt_add(c, source, window, expected)
        assert_close(out, expected, **tol, name="matmul_nt_add")
        initial = rng.standard_normal(M).astype(dtype)
        target_window = rng.integers(0, L - Q + 1, M).astype(np.uint64)         # overlapping rows add up
        out, expected = source.copy(), source.copy()
        K_mm.matmul_scatter_add(a, source, window, out, target_window, Q, initial, K_mm.ADD)
        R_mm.matmul_scatter_add(a, source, window, expected, target_window, Q, initial, K_mm.ADD)
        assert_close(out, expected, **tol, name="matmul_scatter_add (accumulate)")
        target_window = (np.arange(M) * (Q + 2) + 1).astype(np.uint64)           # storing: rows apart, gaps kept
        for mode in (K_mm.STORE, K_mm.STORE_RELU):
            out = rng.standard_normal((B, M * (Q + 2) + 1)).astype(dtype)
            expected = out.copy()
            K_mm.matmul_scatter_add(a, source, window, out, target_window, Q, initial, mode)
            R_mm.matmul_scatter_add(a, source, window, expected, target_window, Q, initial, mode)
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
            expected = R_blas.gemm(a, b, trans_a, trans_b, bias, relu=relu)
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
    assert_close(got, R_blas.gemm(a, b, False, True, bias), rtol=1e-5, atol=1e-5, name="gemm fallback")
    assert_close(K_blas.gemm(a, b, trans_b=True, bias=bias, relu=True), R_blas.gemm(a, b, False, True, bias, relu=True),
                 rtol=1e-5, atol=1e-5, name="gemm fallback, relu")


def test_gemm_rejects_mismatched_inner_dimensions(rng):
    with pytest.raises(ValueError, match="inner dimensions"):
        K_blas.gemm(np.zeros((3, 4), np.float32), np.zeros((5, 2), np.float32))
    with pytest.raises(ValueError, match="bias of shape"):
        K_blas.gemm(np.zeros((3, 4), np.float32), np.zeros((4, 2), np.float32), bias=np.zeros(3, np.float32))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", params(POOL_CASES) + random_params(pool_case))
def test_pool_kernels_equal_reference(case, dtype, rng, threads):
    x_shape, K, S, P, ceil_mode = case.x_shape, case.kernel, case.stride, case.padding, case.ceil_mode
    x = rng.standard_normal(x_shape).astype(dtype)
    x.flat[rng.integers(0, x.size, size=3)] = x.flat[0]          # some ties: the first maximum must win
    _, _, _, (OH, OW) = pool2d_geometry(x_shape, K, S, P, ceil_mode, "test")
    args = (*K, *S, *P, OH, OW)
    H, W = x_shape[2:]

    y, argmax = K_pool.max_pool2d_forward(x, *args)
    y_ref, argmax_ref = R_pool.max_pool2d_forward(x, *args)
    assert_close(y, y_ref, rtol=0, atol=0, name="max_pool2d_forward")
    np.testing.assert_array_equal(argmax, argmax_ref)
    g = rng.standard_normal(y.shape).astype(dtype)
    assert_close(K_pool.max_pool2d_backward(g, argmax, H, W), R_pool.max_pool2d_backward(g, argmax, H, W),
                 rtol=1e-6, atol=1e-6, name="max_pool2d_backward")

    for count_include_pad in (True, False):
        assert_close(K_pool.avg_pool2d_forward(x, *args, count_include_pad),
                     R_pool.avg_pool2d_forward(x, *args, count_include_pad), rtol=1e-5, atol=1e-6,
                     name=f"avg_pool2d_forward(count_include_pad={count_include_pad})")
        assert_close(K_pool.avg_pool2d_backward(g, H, W, *K, *S, *P, count_include_pad),
                     R_pool.avg_pool2d_backward(g, H, W, *K, *S, *P, count_include_pad), rtol=1e-5, atol=1e-6,
                     name="avg_pool2d_backward")

    assert_close(K_pool.global_avg_pool2d_forward(x), R_pool.global_avg_pool2d_forward(x), rtol=1e-5, atol=1e-6)
    g1 = rng.standard_normal(x_shape[:2] + (1, 1)).astype(dtype)
    assert_close(K_pool.global_avg_pool2d_backward(g1, H, W), R_pool.global_avg_pool2d_backward(g1, H, W),
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
    for module in (K_pool, R_pool):
        y, argmax = module.max_pool2d_forward(x, 2, 2, 2, 2, 0, 0, 1, 1)
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
        _, _, _, (OH, OW) = pool2d_geometry(x.shape, K, S, P, False, "test")
        args = (*K, *S, *P, OH, OW)
        y_ref, argmax_ref = R_pool.max_pool2d_forward(x, *args)
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
    y = K_act.relu_forward(x)
    assert_close(y, R_act.relu_forward(x), rtol=0, atol=0)
    assert np.isnan(y.flat[0])
    g = rng.standard_normal(shape).astype(dtype)
    assert_close(K_act.relu_backward(g, y), R_act.relu_backward(g, y), rtol=0, atol=0)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape, stride", [((2, 3, 9, 7), 2), ((1, 2, 2, 2), 2), ((2, 2, 6, 5), 1), ((1, 1, 10, 11), 3),
                                           ((3, 1, 28, 28), 2)])
def test_blur_pool_kernels_equal_reference(shape, stride, dtype, rng, threads):
    x = rng.standard_normal(shape).astype(dtype)
    out_h, out_w = (shape[2] - 1) // stride + 1, (shape[3] - 1) // stride + 1
    y = K_pool.blur_pool2d_forward(x, stride, out_h, out_w)
    assert_close(y, R_pool.blur_pool2d_forward(x, stride, out_h, out_w), rtol=1e-5, atol=1e-6)
    g = rng.standard_normal(y.shape).astype(dtype)
    assert_close(K_pool.blur_pool2d_backward(g, *shape[2:], stride),
                 R_pool.blur_pool2d_backward(g, *shape[2:], stride), rtol=1e-5, atol=1e-6)


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


@minicnn.kernels.kernel
def _copy_runs(dst, src, dst_outer, dst_inner, src_outer, src_inner, outer, inner, length):
    """``vectors.copy_runs`` on two flat arrays (it is an intrinsic: only compiled code can call it)."""
    copy_runs(dst[0], dst.ctypes.data, dst_outer, dst_inner, src.ctypes.data, src_outer, src_inner, outer, inner,
              length)
