"""The layer ops, on each engine: gradient checks over the geometries that break kernels, worked examples, PyTorch
parity on hand-picked and random cases (``cases.py``)."""
import numpy as np
import pytest

import minicnn as mc
import minicnn.functional as F
from minicnn import nn
from minicnn.shapes import output_size
from minicnn.testing import assert_close, gradcheck

from cases import (CONV_CASES, POOL_CASES, conv_case, dilated_conv_case, dilated_pool_case, params, pool_case,
                   random_params)
from conftest import distinct, t64, torch_or_skip

pytestmark = pytest.mark.usefixtures("engine")          # every test here runs on the plain and the fast engine

CONV_GEOMETRY = [
    # x shape, (C_out, KH, KW), stride, padding
    ((2, 3, 7, 7), (4, 3, 3), 1, 0),
    ((2, 2, 9, 8), (3, 3, 3), 2, 1),            # overlapping windows, stride not dividing
    ((1, 1, 6, 5), (2, 2, 3), (2, 1), (0, 1)),  # non-square kernel, stride and padding, batch 1, channel 1
    ((2, 2, 5, 5), (1, 5, 5), 1, 2),            # padding = half the kernel
    ((1, 3, 4, 6), (2, 1, 1), 3, 0),            # 1 × 1 kernel, stride 3
]


@pytest.mark.parametrize("x_shape, w_spec, stride, padding", CONV_GEOMETRY)
def test_gradcheck_conv2d(x_shape, w_spec, stride, padding, rng):
    C_out, KH, KW = w_spec
    x = t64(rng.standard_normal(x_shape))
    w = t64(rng.standard_normal((C_out, x_shape[1], KH, KW)))
    b = t64(rng.standard_normal(C_out))
    gradcheck(lambda x, w, b: F.conv2d(x, w, b, stride, padding), x, w, b)
    gradcheck(lambda x, w, b: F.conv2d_relu(x, w, b, stride, padding), x, w, b)


def assert_fused_equals_unfused(unfused, fused, arrays):
    """``fused`` and ``unfused`` (ops of the same tensors) give the same output and the same gradients, to the
    bit: the fused op applies max(·, 0) to the very sums the unfused one computes, and its backward is ReLU's
    then the layer's."""
    results = []
    for op in (unfused, fused):
        tensors = [mc.Tensor(a.astype(np.float32), requires_grad=True) for a in arrays]
        y = op(*tensors)
        y.backward(np.cos(np.arange(y.numel(), dtype=np.float32)).reshape(y.shape))
        results.append([y.numpy()] + [t.grad for t in tensors])
    assert np.mean(results[0][0] == 0) > 0.2                                 # the ReLU did cut
    for name, a, b in zip(["y", "dx", "dw", "db"], *results):
        assert_close(b, a, rtol=0, atol=0, name=name)


@pytest.mark.parametrize("x_shape, w_spec, stride, padding", CONV_GEOMETRY)
def test_conv2d_relu_is_relu_after_conv2d_to_the_bit(x_shape, w_spec, stride, padding, rng):
    C_out, KH, KW = w_spec
    arrays = (rng.standard_normal(x_shape), rng.standard_normal((C_out, x_shape[1], KH, KW)),
              rng.standard_normal(C_out))
    assert_fused_equals_unfused(lambda x, w, b: F.relu(F.conv2d(x, w, b, stride, padding)),
                                lambda x, w, b: F.conv2d_relu(x, w, b, stride, padding), arrays)


def test_linear_relu_is_relu_after_linear_to_the_bit(rng):
    arrays = (rng.standard_normal((33, 40)), rng.standard_normal((12, 40)), rng.standard_normal(12))
    assert_fused_equals_unfused(lambda x, w, b: F.relu(F.linear(x, w, b)), F.linear_relu, arrays)


POOL_GEOMETRY = [
    # x shape, kernel, stride, padding, ceil_mode
    ((2, 2, 6, 6), 2, None, 0, False),
    ((2, 2, 7, 7), 3, 2, 1, False),             # overlapping windows with padding: gradients accumulate
    ((1, 1, 7, 7), 2, 3, 0, True),              # ceil_mode with a clipped last window
    ((2, 1, 5, 5), 2, 2, 1, True),              # ceil_mode + padding
    ((1, 2, 5, 8), (3, 2), (1, 3), (1, 1), False),
]


@pytest.mark.parametrize("x_shape, k, s, p, ceil_mode", POOL_GEOMETRY)
def test_gradcheck_max_pool2d(x_shape, k, s, p, ceil_mode, rng):
    x = t64(distinct(rng, x_shape))             # no ties: the derivative exists
    gradcheck(lambda x: F.max_pool2d(x, k, s, p, ceil_mode=ceil_mode), x)


@pytest.mark.parametrize("count_include_pad", [True, False])
@pytest.mark.parametrize("x_shape, k, s, p, ceil_mode", POOL_GEOMETRY)
def test_gradcheck_avg_pool2d(x_shape, k, s, p, ceil_mode, count_include_pad, rng):
    x = t64(rng.standard_normal(x_shape))
    gradcheck(lambda x: F.avg_pool2d(x, k, s, p, ceil_mode, count_include_pad), x)


def test_gradcheck_global_avg_pool_relu_linear_dropout(rng):
    gradcheck(F.global_avg_pool2d, t64(rng.standard_normal((2, 3, 4, 5))))
    gradcheck(F.relu, t64(distinct(rng, (3, 4))))
    x, w, b = t64(rng.standard_normal((3, 4))), t64(rng.standard_normal((5, 4))), t64(rng.standard_normal(5))
    gradcheck(F.linear, x, w, b)
    gradcheck(lambda x, w: F.linear(x, w), x, w)
    gradcheck(F.linear, t64(rng.standard_normal((2, 3, 4))), w, b)        # extra leading axes
    gradcheck(F.linear_relu, x, w, b)
    gradcheck(F.linear_relu, t64(rng.standard_normal((2, 3, 4))), w, b)

    def dropped(x):
        mc.manual_seed(7)                       # the same mask at every call of the check
        return F.dropout(x, 0.3, training=True)
    gradcheck(dropped, t64(rng.standard_normal((4, 5))))


@pytest.mark.parametrize("shape, stride", [((2, 2, 7, 6), 2), ((1, 1, 2, 3), 2), ((1, 2, 5, 5), 1), ((1, 1, 8, 9), 3)])
def test_gradcheck_blur_pool2d(shape, stride, rng):
    gradcheck(lambda x: F.blur_pool2d(x, stride), t64(rng.standard_normal(shape)))


def test_blur_pool_blurs_then_subsamples():
    impulse = np.zeros((1, 1, 5, 5))
    impulse[0, 0, 2, 2] = 16.0
    assert F.blur_pool2d(mc.Tensor(impulse), stride=1).numpy()[0, 0, 1:4, 1:4].tolist() == [[1, 2, 1], [2, 4, 2], [1, 2, 1]]
    assert F.blur_pool2d(mc.Tensor(np.zeros((2, 3, 28, 28)))).shape == (2, 3, 14, 14)
    assert F.blur_pool2d(mc.Tensor(np.zeros((3, 27, 27)))).shape == (3, 14, 14)
    assert repr(nn.BlurPool2d(6)) == "BlurPool2d(channels=6, stride=2)" and list(nn.BlurPool2d(6).parameters()) == []


def test_gradcheck_losses(rng):
    logits = t64(rng.standard_normal((5, 4)))
    target = np.array([0, 3, 1, 1, 2])
    gradcheck(lambda z: F.cross_entropy(z, target), logits)
    gradcheck(lambda z: F.nll_loss(F.log_softmax(z, axis=1), target), logits)
    gradcheck(lambda a, b: F.mse_loss(a, b), t64(rng.standard_normal((3, 2))), t64(rng.standard_normal((3, 2))))


def test_cross_entropy_in_one_op_equals_log_softmax_then_nll_loss(rng):
    """The common case runs as one op (``CrossEntropy``); it must give what the general path gives, value and
    gradient, and leave to the general path any batch where ignore_index, within the classes, is a label."""
    from minicnn.functional.loss import CrossEntropy
    logits = rng.standard_normal((9, 4)) * 3
    for target, ignore_index in (([0, 3, 1, 1, 2, 0, 3, 3, 1], -100), ([0, 3, 1, 1, 0, 0, 3, 3, 1], 2),
                                 ([0, 3, 1, 1, 2, 0, 3, 3, 1], 2)):
        results = []
        for fused in (True, False):
            z = t64(logits)
            loss = (F.cross_entropy(z, target, ignore_index=ignore_index) if fused else
                    F.nll_loss(F.log_softmax(z, dim=1), target, ignore_index=ignore_index))
            loss.backward(mc.Tensor(np.array(1.7)))
            results.append((loss.item(), z.grad, loss._node.function))
        (a, ga, used), (b, gb, _) = results
        assert a == pytest.approx(b, rel=1e-12) and np.allclose(ga, gb, rtol=1e-12, atol=1e-15)
        assert (used is CrossEntropy) == (2 not in target or ignore_index != 2)


def test_cross_entropy_is_stable_and_correct():
    logits = np.array([[1000.0, 0.0, -1000.0], [1.0, 2.0, 3.0]], dtype=np.float32)
    loss = F.cross_entropy(mc.Tensor(logits), [0, 2]).item()
    expected = (0.0 + (np.log(np.exp(1) + np.exp(2) + np.exp(3)) - 3)) / 2
    assert np.isfinite(loss) and loss == pytest.approx(expected, rel=1e-5)


# ----- output sizes and the pooling texts' worked examples ----------------------------------------------------
@pytest.mark.parametrize("size, k, s, p, ceil_mode, expected", [
    (7, 2, 2, 0, False, 3), (7, 2, 2, 0, True, 4),
    (5, 2, 2, 1, True, 3),           # not 4: a 4th window would start in the right padding
    (6, 2, 3, 0, True, 2),           # not 3: a 3rd window would start past the input
    (28, 5, 1, 2, False, 28), (14, 5, 1, 0, False, 10), (28, 5, 2, 2, False, 14), (14, 5, 2, 0, False, 5),
])
def test_output_size_formula(size, k, s, p, ceil_mode, expected):
    assert output_size(size, k, s, p, ceil_mode) == expected
    x = mc.Tensor(np.zeros((1, 1, size, size)))
    assert F.max_pool2d(x, k, s, p, ceil_mode=ceil_mode).shape[-1] == expected
    assert F.avg_pool2d(x, k, s, p, ceil_mode).shape[-1] == expected


def test_output_size_is_floor_of_the_formula_over_a_grid():
    for H in range(1, 12):
        for k in range(1, 5):
            for s in range(1, 4):
                for p in range(0, k // 2 + 1):
                    if H + 2 * p >= k:
                        assert output_size(H, k, s, p) == (H + 2 * p - k) // s + 1


def test_avg_pool_ceil_mode_example():
    x = mc.Tensor(np.arange(49, dtype=np.float32).reshape(1, 1, 7, 7))
    y = nn.AvgPool2d(2, stride=3, ceil_mode=True)(x)
    assert y.numpy()[0, 0].tolist() == [[4, 7, 9.5], [25, 28, 30.5], [42.5, 45.5, 48]]


def test_worked_examples_of_the_pooling_texts():
    x = mc.Tensor(np.arange(1, 17, dtype=np.float32).reshape(1, 1, 4, 4))
    assert nn.MaxPool2d(2)(x).numpy()[0, 0].tolist() == [[6, 8], [14, 16]]
    assert nn.AvgPool2d(2)(x).numpy()[0, 0].tolist() == [[3.5, 5.5], [11.5, 13.5]]
    x2 = mc.Tensor(np.array([[1, 3, 2, 4], [5, 6, 8, 7], [2, 1, 4, 3], [5, 2, 9, 6]], dtype=np.float32))
    assert F.max_pool2d(x2.reshape(1, 1, 4, 4), 2, 2).numpy()[0, 0].tolist() == [[6, 8], [5, 9]]
    big = mc.Tensor(np.zeros((16, 32, 64, 64), dtype=np.float32))
    assert nn.MaxPool2d(2, 2)(big).shape == (16, 32, 32, 32)
    for layer in (nn.MaxPool2d(2), nn.AvgPool2d(3, 2, 1), nn.GlobalAvgPool2d()):
        assert list(layer.parameters()) == []


def test_max_pool_gradient_goes_to_the_first_maximum_and_accumulates_on_overlap():
    x = mc.Tensor(np.array([[[[1, 5, 5], [5, 2, 0], [0, 0, 0]]]], dtype=np.float32), requires_grad=True)
    F.max_pool2d(x, 2, stride=1).sum().backward()
    # windows: [1 5;5 2] → first 5 at (0,1); [5 5;2 0] → (0,1) again; [5 2;0 0] → (1,0); [2 0;0 0] → (1,1)
    assert x.grad[0, 0].tolist() == [[0, 2, 0], [1, 1, 0], [0, 0, 0]]


def test_max_pool_padding_never_wins():
    x = mc.Tensor(-np.ones((1, 1, 3, 3), dtype=np.float32))
    assert F.max_pool2d(x, 3, 1, 1).numpy().max() == -1.0       # padded zeros would have won


def test_nan_propagates_through_max_pool_and_relu():
    x = np.zeros((1, 1, 4, 4), dtype=np.float32)
    x[0, 0, 0, 0] = np.nan
    y = F.max_pool2d(mc.Tensor(x), 2).numpy()
    assert np.isnan(y[0, 0, 0, 0]) and not np.isnan(y[0, 0, 1, 1])
    assert np.isnan(F.relu(mc.Tensor([np.nan])).numpy()[0])


def test_unbatched_input(rng):
    x = rng.standard_normal((3, 8, 8)).astype(np.float32)
    conv = nn.Conv2d(3, 2, 3, padding=1)
    assert_close(conv(mc.Tensor(x)), conv(mc.Tensor(x[None])).numpy()[0])
    assert F.max_pool2d(mc.Tensor(x), 2).shape == (3, 4, 4)
    assert F.global_avg_pool2d(mc.Tensor(x)).shape == (3, 1, 1)
    t = mc.Tensor(x, requires_grad=True)
    F.avg_pool2d(t, 2).sum().backward()
    assert t.grad.shape == (3, 8, 8)


# ----- parity with PyTorch (runs when torch is installed) -------------------------------------------------------
@pytest.mark.parametrize("x_shape, w_spec, stride, padding", CONV_GEOMETRY)
def test_conv2d_matches_pytorch(x_shape, w_spec, stride, padding, rng):
    torch = torch_or_skip()
    C_out, KH, KW = w_spec
    x = rng.standard_normal(x_shape)
    w = rng.standard_normal((C_out, x_shape[1], KH, KW))
    b = rng.standard_normal(C_out)
    g = rng.standard_normal(F.conv2d(mc.Tensor(x), mc.Tensor(w), None, stride, padding).shape)
    ours = [t64(a) for a in (x, w, b)]
    F.conv2d(*ours, stride, padding).backward(g)
    theirs = [torch.tensor(a, requires_grad=True) for a in (x, w, b)]
    y = torch.nn.functional.conv2d(*theirs, stride=stride, padding=padding)
    y.backward(torch.tensor(g))
    assert_close(F.conv2d(*ours, stride, padding), y.detach().numpy(), rtol=1e-9, atol=1e-9)
    for o, t in zip(ours, theirs):
        assert_close(o.grad, t.grad.numpy(), rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("count_include_pad", [True, False])
@pytest.mark.parametrize("x_shape, k, s, p, ceil_mode", POOL_GEOMETRY + [((2, 3, 9, 9), 3, 2, 1, True)])
def test_pools_match_pytorch(x_shape, k, s, p, ceil_mode, count_include_pad, rng):
    torch = torch_or_skip()
    x = rng.standard_normal(x_shape)
    x.flat[::5] = x.flat[0]                         # ties: both must pick the first maximum
    for ours_fn, torch_fn in [
        (lambda t: F.max_pool2d(t, k, s, p, ceil_mode=ceil_mode),
         lambda t: torch.nn.functional.max_pool2d(t, k, s, p, ceil_mode=ceil_mode)),
        (lambda t: F.avg_pool2d(t, k, s, p, ceil_mode, count_include_pad),
         lambda t: torch.nn.functional.avg_pool2d(t, k, s, p, ceil_mode, count_include_pad)),
    ]:
        ours, theirs = t64(x), torch.tensor(x, requires_grad=True)
        y_ours, y_theirs = ours_fn(ours), torch_fn(theirs)
        assert y_ours.shape == tuple(y_theirs.shape)
        g = rng.standard_normal(y_ours.shape)
        y_ours.backward(g)
        y_theirs.backward(torch.tensor(g))
        assert_close(y_ours, y_theirs.detach().numpy(), rtol=1e-12, atol=1e-12)
        assert_close(ours.grad, theirs.grad.numpy(), rtol=1e-12, atol=1e-12)


def test_losses_match_pytorch(rng):
    torch = torch_or_skip()
    z = rng.standard_normal((6, 5))
    target = rng.integers(0, 5, 6)
    ours, theirs = t64(z), torch.tensor(z, requires_grad=True)
    F.cross_entropy(ours, target).backward()
    loss = torch.nn.functional.cross_entropy(theirs, torch.tensor(target))
    loss.backward()
    assert F.cross_entropy(t64(z), target).item() == pytest.approx(loss.item(), rel=1e-12)
    assert_close(ours.grad, theirs.grad.numpy(), rtol=1e-10, atol=1e-12)


def run_both(torch, ours_fn, torch_fn, arrays, rng, name):
    """Forward and backward (a random upstream gradient) of the same op here and in PyTorch, float64: the outputs
    and every input's gradient agree."""
    ours = [t64(a) for a in arrays]
    theirs = [torch.tensor(a, requires_grad=True) for a in arrays]
    y_ours, y_theirs = ours_fn(*ours), torch_fn(*theirs)
    assert y_ours.shape == tuple(y_theirs.shape), f"{name}: shape {y_ours.shape} != PyTorch's {tuple(y_theirs.shape)}"
    g = rng.standard_normal(y_ours.shape)
    y_ours.backward(g)
    y_theirs.backward(torch.tensor(g))
    assert_close(y_ours, y_theirs.detach().numpy(), rtol=1e-10, atol=1e-10, name=f"{name} forward")
    for k, (o, t) in enumerate(zip(ours, theirs)):
        assert_close(o.grad, t.grad.numpy(), rtol=1e-10, atol=1e-10, name=f"{name} gradient of input {k}")


@pytest.mark.parametrize("case", params(CONV_CASES) + random_params(conv_case))
def test_conv2d_matches_pytorch_on_random_cases(case, rng):
    torch = torch_or_skip()
    arrays = (rng.standard_normal(case.x_shape), rng.standard_normal(case.w_shape),
              rng.standard_normal(case.w_shape[0]))
    S, P = case.stride, case.padding
    run_both(torch, lambda x, w, b: F.conv2d(x, w, b, S, P),
             lambda x, w, b: torch.nn.functional.conv2d(x, w, b, stride=S, padding=P), arrays, rng, "conv2d")
    run_both(torch, lambda x, w, b: F.conv2d_relu(x, w, b, S, P),
             lambda x, w, b: torch.relu(torch.nn.functional.conv2d(x, w, b, stride=S, padding=P)), arrays, rng,
             "conv2d_relu")


@pytest.mark.parametrize("case", params(POOL_CASES) + random_params(pool_case))
def test_pools_match_pytorch_on_random_cases(case, rng):
    torch = torch_or_skip()
    x = rng.standard_normal(case.x_shape)
    x.flat[::5] = x.flat[0]                         # ties: both must pick the first maximum
    K, S, P, ceil, pad = case.kernel, case.stride, case.padding, case.ceil_mode, case.count_include_pad
    run_both(torch, lambda t: F.max_pool2d(t, K, S, P, ceil_mode=ceil),
             lambda t: torch.nn.functional.max_pool2d(t, K, S, P, ceil_mode=ceil), [x], rng, "max_pool2d")
    run_both(torch, lambda t: F.avg_pool2d(t, K, S, P, ceil, pad),
             lambda t: torch.nn.functional.avg_pool2d(t, K, S, P, ceil, pad), [x], rng, "avg_pool2d")


# ----- cases that let real bugs through before -------------------------------------------------------------------
def test_avg_pool_ceil_mode_window_past_the_padding_divides_by_what_it_covers():
    """PyTorch's divisor with count_include_pad: the window clipped to the padded input (H + P on the far side,
    not H + 2P), so ceil_mode's last window, which runs past the padding, counts only padding and real cells."""
    x = mc.Tensor(np.arange(36, dtype=np.float64).reshape(1, 1, 6, 6))
    y = F.avg_pool2d(x, 3, 2, 1, ceil_mode=True, count_include_pad=True).numpy()[0, 0]
    assert y.shape == (4, 4)                       # windows start at rows −1, 1, 3, 5; the last ends at 8 > H + P = 7
    assert y[0, 0] == pytest.approx((0 + 1 + 6 + 7) / 9)          # 3 × 3 window, 5 of its cells padding
    assert y[0, 3] == pytest.approx((5 + 11) / 6)                 # rows −1..1, columns 5..6: 3 × 2 counted
    assert y[3, 3] == pytest.approx(35 / 4)                       # rows 5..6, columns 5..6: 2 × 2 counted
    y = F.avg_pool2d(x, 3, 2, 1, ceil_mode=True, count_include_pad=False).numpy()[0, 0]
    assert y[0, 0] == pytest.approx(14 / 4) and y[0, 3] == pytest.approx(16 / 2) and y[3, 3] == 35


@pytest.mark.parametrize("stride", [(2, 3), (3, 2)])
def test_2x2_pooling_with_unequal_strides(stride):
    """2 × 2 windows moving 2 along one axis and 3 along the other: each output is its own window's, by hand."""
    x = np.arange(81, dtype=np.float32).reshape(1, 1, 9, 9)
    rows, cols = [s * np.arange((9 - 2) // s + 1) for s in stride]       # the windows' top-left corners
    top_left = x[0, 0][np.ix_(rows, cols)]
    got_max = F.max_pool2d(mc.Tensor(x), 2, stride).numpy()[0, 0]
    got_avg = F.avg_pool2d(mc.Tensor(x), 2, stride).numpy()[0, 0]
    np.testing.assert_array_equal(got_max, top_left + 10)               # bottom-right cell: 9 + 1 further
    np.testing.assert_array_equal(got_avg, top_left + 5)                # mean of c, c + 1, c + 9, c + 10


def test_dropout_scales_what_it_keeps_by_one_over_keep_probability(rng):
    """Inverted dropout: each kept value is x / (1 − p), exactly, and the mean is kept on average. (A gradient
    check cannot see a wrong scale that forward and backward share, so this is checked on the values.)"""
    x = t64(rng.uniform(1, 2, (200, 50)))
    y = F.dropout(x, 0.25, training=True)
    kept = y.numpy() != 0
    assert 0.70 < kept.mean() < 0.80
    assert_close(y.numpy()[kept], x.numpy()[kept] / 0.75, rtol=1e-12, atol=0, name="kept values")
    assert y.numpy().mean() == pytest.approx(x.numpy().mean(), rel=0.02)
    y.backward(np.ones(y.shape))
    assert_close(x.grad, kept / 0.75, rtol=1e-12, atol=0, name="dropout gradient")
    np.testing.assert_array_equal(F.dropout(x, 0.25, training=False).numpy(), x.numpy())


def test_gradcheck_across_blocks_of_images(rng):
    """Batches of 13 and 16: the kernels cut them into several blocks per thread, the last one partial."""
    x = t64(rng.standard_normal((13, 2, 6, 6)))
    w, b = t64(rng.standard_normal((3, 2, 3, 3))), t64(rng.standard_normal(3))
    gradcheck(lambda x, w, b: F.conv2d(x, w, b, 1, 1), x, w, b)
    gradcheck(lambda x, w, b: F.conv2d_relu(x, w, b, 2, 0), x, w, b)
    x = t64(distinct(rng, (16, 3, 5, 5)))
    gradcheck(lambda x: F.max_pool2d(x, 3, 2, 1), x)
    gradcheck(lambda x: F.avg_pool2d(x, 3, 2, 1, True, False), x)


@pytest.mark.parametrize("case", random_params(dilated_conv_case))
def test_dilated_and_grouped_conv2d_matches_pytorch(case, rng):
    torch = torch_or_skip()
    arrays = (rng.standard_normal(case.x_shape), rng.standard_normal(case.w_shape),
              rng.standard_normal(case.w_shape[0]))
    S, P, D, G = case.stride, case.padding, case.dilation, case.groups
    run_both(torch, lambda x, w, b: F.conv2d(x, w, b, S, P, D, G),
             lambda x, w, b: torch.nn.functional.conv2d(x, w, b, S, P, D, G), arrays, rng, "conv2d")


@pytest.mark.parametrize("case", random_params(dilated_pool_case))
def test_dilated_max_pool2d_matches_pytorch(case, rng):
    torch = torch_or_skip()
    x = rng.standard_normal(case.x_shape)
    x.flat[::4] = x.flat[0]
    K, S, P, D, ceil = case.kernel, case.stride, case.padding, case.dilation, case.ceil_mode
    run_both(torch, lambda t: F.max_pool2d(t, K, S, P, D, ceil),
             lambda t: torch.nn.functional.max_pool2d(t, K, S, P, D, ceil_mode=ceil), [x], rng, "max_pool2d")


def test_gradcheck_dilated_grouped_conv_and_dilated_max_pool(rng):
    x = t64(rng.standard_normal((2, 4, 7, 8)))
    w, b = t64(rng.standard_normal((6, 2, 3, 2))), t64(rng.standard_normal(6))
    gradcheck(lambda x, w, b: F.conv2d(x, w, b, (2, 1), 1, (2, 3), 2), x, w, b)
    gradcheck(lambda x, w, b: F.conv2d_relu(x, w, b, 1, (2, 0), 2, 2), x, w, b)
    depthwise = t64(rng.standard_normal((4, 1, 3, 3)))
    gradcheck(lambda x, w: F.conv2d(x, w, None, 1, 1, 1, 4), x, depthwise)
    gradcheck(lambda x: F.max_pool2d(x, 3, 2, 1, dilation=2, ceil_mode=True), t64(distinct(rng, (2, 3, 9, 8))))
    gradcheck(lambda x: F.avg_pool2d(x, 3, 2, 1, True, True, divisor_override=5), x)


def test_the_three_positional_calls_that_used_to_mean_something_else(rng):
    """PyTorch's positional order: Conv2d's sixth argument is dilation, MaxPool2d's and max_pool2d's fourth is
    dilation (it was ``bias`` and ``ceil_mode`` here once: a silent wrong answer)."""
    conv = nn.Conv2d(3, 4, 3, 1, 0, 2)
    assert conv.dilation == (2, 2) and conv.bias is not None
    assert conv(mc.Tensor(np.zeros((1, 3, 9, 9), np.float32))).shape == (1, 4, 5, 5)
    x = mc.Tensor(rng.standard_normal((1, 1, 9, 9)))
    assert nn.MaxPool2d(2, 1, 0, 2)(x).shape == (1, 1, 7, 7)
    assert F.max_pool2d(x, 2, 1, 0, 2).shape == (1, 1, 7, 7)
    nn.Conv2d(1, 2, 3, dilation=1, groups=1, bias=True, padding_mode="zeros")      # defaults written out
    nn.MaxPool2d(2, return_indices=False)
    nn.AvgPool2d(2, divisor_override=None)
