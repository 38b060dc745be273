"""PyTorch's habits work here as there: Tensor methods, in-place updates, comparisons and masks, reductions with
``dim``, losses with their options. Values and gradients against PyTorch when it is installed, and gradient
checks in float64 for every new differentiable op."""
import numpy as np
import pytest

import minicnn as mc
import minicnn.functional as F
from minicnn import nn
from minicnn.testing import assert_close, gradcheck

from conftest import distinct, t64, torch_or_skip


# ----- habits from the issue, each as PyTorch does it ---------------------------------------------------------
def test_no_grad_parameter_update_in_place_changes_the_weights():
    lin = nn.Linear(3, 2)
    F.linear(mc.Tensor(np.ones((4, 3))), lin.weight, lin.bias).sum().backward()
    before = lin.weight.numpy().copy()
    with mc.no_grad():
        for p in lin.parameters():
            p -= 0.1 * p.grad
    assert_close(lin.weight.numpy(), before - 0.1 * lin.weight.grad, rtol=1e-6, name="updated weight")
    assert isinstance(lin.weight, nn.Parameter) and lin.weight in list(lin.parameters())


def test_in_place_on_a_leaf_that_requires_grad_is_refused_outside_no_grad():
    lin = nn.Linear(3, 2)
    with pytest.raises(RuntimeError, match="leaf tensor that requires grad is used in an in-place operation.*no_grad"):
        lin.weight += 1
    with mc.no_grad():
        lin.weight += 1                                         # allowed, and the Parameter stays the Parameter
    assert isinstance(lin.weight, nn.Parameter) and list(lin.parameters())[0] is lin.weight


def test_a_value_changed_in_place_after_the_forward_stops_the_backward():
    w = mc.Tensor([1.0, 2.0], requires_grad=True)
    y = (w * w).sum()
    with mc.no_grad():
        w.mul_(3)
    with pytest.raises(RuntimeError, match="changed in place after the forward pass"):
        y.backward()


def test_in_place_operators_zero_copy_and_fill():
    t = mc.Tensor([1.0, 2.0, 3.0])
    same = t
    t += 1
    t *= 2
    t -= mc.Tensor([1.0, 1.0, 1.0])
    t /= 2
    assert t is same and t.tolist() == [1.5, 2.5, 3.5]
    t.copy_([4.0, 5.0, 6.0])
    assert t.tolist() == [4, 5, 6] and t.zero_().tolist() == [0, 0, 0] and t.fill_(7).tolist() == [7, 7, 7]


def test_comparisons_give_boolean_tensors_and_masks_index():
    t = mc.Tensor([1.0, 2.0, 3.0, 4.0], requires_grad=True)
    mask = t > 2
    assert mask.dtype == np.bool_ and mask.tolist() == [False, False, True, True]
    assert (t == 2).tolist() == [False, True, False, False] and (t != 2).tolist() == [True, False, True, True]
    assert (t <= 2).tolist() == [True, True, False, False] and (t >= 4).tolist() == [False, False, False, True]
    picked = t[t > 2]
    assert picked.tolist() == [3, 4]
    picked.sum().backward()
    assert t.grad.tolist() == [0, 0, 1, 1]
    assert bool(mc.Tensor([1.0]) == 1) and not bool(mc.Tensor(0.0))
    with pytest.raises(RuntimeError, match="ambiguous"):
        bool(t > 0)


def test_tensor_methods_people_type():
    x = mc.Tensor(np.arange(24, dtype=np.float32).reshape(2, 3, 4))
    assert x.view(6, 4).shape == (6, 4) and x.view(-1).shape == (24,)
    assert x.size() == (2, 3, 4) and x.size(0) == 2 and x.size(-1) == 4 and x.dim() == 3 and x.numel() == 24
    assert x.unsqueeze(0).shape == (1, 2, 3, 4) and x.unsqueeze(-1).shape == (2, 3, 4, 1)
    assert x[:1].squeeze().shape == (3, 4) and x[:1].squeeze(0).shape == (3, 4) and x.squeeze(1).shape == (2, 3, 4)
    m = mc.Tensor([[1.0, 5.0], [7.0, 3.0]])
    assert m.t().tolist() == [[1, 7], [5, 3]]
    assert m.argmax().item() == 2 and m.argmax(dim=1).tolist() == [1, 0] and m.argmin(1).tolist() == [0, 1]
    values, indices = m.max(dim=1)
    assert values.tolist() == [5, 7] and indices.tolist() == [1, 0]
    assert m.max(dim=0, keepdim=True).values.shape == (1, 2) and m.min().item() == 1
    assert m.sum(dim=0).tolist() == [8, 8] and m.mean(dim=1, keepdim=True).shape == (2, 1)
    assert m.sum(dim=(0, 1)).item() == 16 and m.sum(axis=1).tolist() == [6, 10]
    assert float(m.sum()) == 16.0 and int(m[0, 1]) == 5
    assert m.clone().tolist() == m.tolist() and m.clone() is not m and m.detach().requires_grad is False
    assert m.float().dtype == np.float32 and m.double().dtype == np.float64 and m.to(np.float64).dtype == np.float64
    assert m.to("cpu") is m and m.cpu() is m
    assert mc.Tensor([4.0, 9.0]).sqrt().tolist() == [2, 3] and mc.Tensor([-2.0, 3.0]).abs().tolist() == [2, 3]
    assert mc.Tensor([-2.0, 0.5, 3.0]).clamp(-1, 1).tolist() == [-1, 0.5, 1]
    assert mc.Tensor([1.0]).requires_grad_().requires_grad


def test_factories():
    assert mc.tensor([1, 2, 3]).dtype == np.int64 and mc.tensor([1.0, 2.0]).dtype == np.float32
    assert mc.tensor([[1.0]], requires_grad=True).requires_grad and mc.tensor(3.0).shape == ()
    assert mc.zeros(2, 3).tolist() == [[0, 0, 0], [0, 0, 0]] and mc.ones((2,)).tolist() == [1, 1]
    assert mc.arange(5).tolist() == [0, 1, 2, 3, 4] and mc.arange(1, 2, 0.5).tolist() == [1, 1.5]
    mc.manual_seed(0)
    a = mc.randn(3, 4)
    mc.manual_seed(0)
    assert a.tolist() == mc.randn(3, 4).tolist() and a.dtype == np.float32
    r = mc.rand(1000)
    assert 0 <= r.numpy().min() and r.numpy().max() < 1
    array = np.ones(3, np.float32)
    shared = mc.from_numpy(array)
    array[0] = 5
    assert shared.tolist() == [5, 1, 1]                       # the same memory, as torch.from_numpy
    assert mc.cat([mc.ones(2, 3), mc.zeros(1, 3)]).shape == (3, 3) and mc.stack([mc.ones(2), mc.zeros(2)], 1).shape == (2, 2)
    with pytest.raises(RuntimeError, match="floating-point"):
        mc.tensor([1, 2], requires_grad=True)


def test_zero_grad_set_to_none_and_nn_functional_alias():
    import minicnn.nn.functional as NF
    assert all(getattr(NF, name) is getattr(F, name) for name in F.__all__)
    lin = nn.Linear(2, 1)
    opt = mc.optim.SGD(lin.parameters(), lr=0.1)
    F.linear(mc.Tensor(np.ones((1, 2))), lin.weight, lin.bias).sum().backward()
    opt.zero_grad(set_to_none=False)
    assert lin.weight.grad.tolist() == [[0, 0]]
    opt.zero_grad()
    assert lin.weight.grad is None
    F.linear(mc.Tensor(np.ones((1, 2))), lin.weight, lin.bias).sum().backward()
    lin.zero_grad(set_to_none=False)
    assert lin.weight.grad.tolist() == [[0, 0]]


def test_zero_dimensional_tensors_through_relu_and_reductions():
    x = mc.Tensor(-2.0, requires_grad=True)
    y = x.relu().sum().relu()
    assert y.shape == () and x.relu().shape == ()
    (x * 3).relu().sum().backward()
    assert x.grad.shape == () and x.grad == 0
    z = mc.Tensor(2.0, requires_grad=True)
    (z * z).mean().backward()
    assert z.grad == 4


# ----- gradient checks of the new ops -------------------------------------------------------------------------
@pytest.mark.parametrize("name, op", [
    ("abs", lambda t: t.abs()), ("clamp", lambda t: t.clamp(-0.2, 0.3)), ("clamp_min", lambda t: t.clamp(min=0.1)),
    ("sqrt", lambda t: (t * t + 1).sqrt()), ("cast", lambda t: F.cast(t, np.float64) * t),
    ("max_dim", lambda t: t.max(dim=1).values), ("min_dim_keep", lambda t: t.min(1, keepdim=True).values),
    ("softmax", lambda t: F.softmax(t, dim=1)), ("log_softmax", lambda t: t.log_softmax(0)),
    ("cat", lambda t: F.cat([t, t * 2], dim=1)), ("stack", lambda t: F.stack([t, t.exp()], dim=0)),
    ("unsqueeze_squeeze", lambda t: t.unsqueeze(1).squeeze(1) * t), ("view", lambda t: t.view(-1) * 2),
    ("clone", lambda t: t.clone() * t),
])
def test_gradcheck_new_ops(name, op, rng):
    gradcheck(op, t64(distinct(rng, (3, 4))))


# ----- losses: every option, against PyTorch -------------------------------------------------------------------
LOSS_CASES = [
    dict(),
    dict(reduction="sum"), dict(reduction="none"),
    dict(weight=True), dict(weight=True, reduction="none"),
    dict(ignore_index=2), dict(ignore_index=2, weight=True),
    dict(label_smoothing=0.1), dict(label_smoothing=0.2, weight=True, ignore_index=1),
    dict(label_smoothing=0.3, reduction="sum"), dict(label_smoothing=0.1, reduction="none", ignore_index=0),
]


@pytest.mark.parametrize("shape", [(6, 4), (3, 4, 5), (2, 4, 3, 2), (4,)])
@pytest.mark.parametrize("options", LOSS_CASES, ids=lambda o: ",".join(f"{k}={v}" for k, v in o.items()) or "default")
def test_cross_entropy_and_nll_match_pytorch(shape, options, rng):
    torch = torch_or_skip()
    C = shape[0] if len(shape) == 1 else shape[1]
    x = rng.standard_normal(shape)
    target = rng.integers(0, C, () if len(shape) == 1 else shape[:1] + shape[2:])
    kwargs = dict(options)
    if kwargs.pop("weight", False):
        kwargs["weight"] = rng.uniform(0.5, 2.0, C)
    ours, theirs = t64(x), torch.tensor(x, requires_grad=True)
    t_kwargs = {k: torch.tensor(v) if k == "weight" else v for k, v in kwargs.items()}
    loss = F.cross_entropy(ours, target, **kwargs)
    expected = torch.nn.functional.cross_entropy(theirs, torch.tensor(target), **t_kwargs)
    assert loss.shape == tuple(expected.shape)
    assert_close(loss, expected.detach().numpy(), rtol=1e-10, atol=1e-12, name="cross_entropy")
    g = rng.standard_normal(loss.shape)
    loss.backward(g)
    expected.backward(torch.tensor(g))
    assert_close(ours.grad, theirs.grad.numpy(), rtol=1e-10, atol=1e-12, name="cross_entropy gradient")
    if "label_smoothing" not in kwargs:
        logp = F.log_softmax(t64(x, requires_grad=False), dim=0 if len(shape) == 1 else 1)
        t_logp = torch.log_softmax(torch.tensor(x), dim=0 if len(shape) == 1 else 1)
        assert_close(F.nll_loss(logp, target, **kwargs),
                     torch.nn.functional.nll_loss(t_logp, torch.tensor(target), **t_kwargs).numpy(),
                     rtol=1e-10, atol=1e-12, name="nll_loss")


@pytest.mark.parametrize("options", [dict(), dict(reduction="sum"), dict(reduction="none"), dict(weight=True),
                                     dict(label_smoothing=0.2)], ids=str)
@pytest.mark.parametrize("shape", [(5, 3), (2, 3, 4)])
def test_cross_entropy_with_class_probabilities_matches_pytorch(shape, options, rng):
    torch = torch_or_skip()
    x = rng.standard_normal(shape)
    p = rng.random(shape)
    p /= p.sum(axis=1, keepdims=True)
    kwargs = dict(options)
    if kwargs.pop("weight", False):
        kwargs["weight"] = rng.uniform(0.5, 2.0, shape[1])
    t_kwargs = {k: torch.tensor(v) if k == "weight" else v for k, v in kwargs.items()}
    ours, theirs = t64(x), torch.tensor(x, requires_grad=True)
    loss = F.cross_entropy(ours, p, **kwargs)
    expected = torch.nn.functional.cross_entropy(theirs, torch.tensor(p), **t_kwargs)
    assert_close(loss, expected.detach().numpy(), rtol=1e-10, atol=1e-12, name="cross_entropy(probabilities)")
    g = rng.standard_normal(loss.shape)
    loss.backward(g)
    expected.backward(torch.tensor(g))
    assert_close(ours.grad, theirs.grad.numpy(), rtol=1e-10, atol=1e-12, name="gradient")


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_mse_loss_and_loss_modules_match_pytorch(reduction, rng):
    torch = torch_or_skip()
    a, b = rng.standard_normal((4, 3)), rng.standard_normal((4, 3))
    assert_close(F.mse_loss(t64(a), t64(b), reduction=reduction),
                 torch.nn.functional.mse_loss(torch.tensor(a), torch.tensor(b), reduction=reduction).numpy(),
                 rtol=1e-12, name="mse_loss")
    target = rng.integers(0, 3, 4)
    assert_close(nn.CrossEntropyLoss(reduction=reduction, label_smoothing=0.1)(t64(a), target),
                 torch.nn.CrossEntropyLoss(reduction=reduction, label_smoothing=0.1)(torch.tensor(a),
                                                                                     torch.tensor(target)).numpy(),
                 rtol=1e-10, name="CrossEntropyLoss")
    logp = F.log_softmax(t64(a), dim=1)
    assert_close(nn.NLLLoss(reduction=reduction)(logp, target),
                 torch.nn.NLLLoss(reduction=reduction)(torch.log_softmax(torch.tensor(a), 1),
                                                       torch.tensor(target)).numpy(), rtol=1e-10, name="NLLLoss")
    assert_close(nn.MSELoss(reduction=reduction)(t64(a), t64(b)),
                 torch.nn.MSELoss(reduction=reduction)(torch.tensor(a), torch.tensor(b)).numpy(), rtol=1e-12)


def test_loss_options_gradchecks(rng):
    x = t64(rng.standard_normal((4, 3, 2)))
    target = np.array([[0, 2], [1, 1], [2, 0], [1, 2]])
    weight = np.array([0.5, 2.0, 1.0])
    gradcheck(lambda x: F.cross_entropy(x, target, weight=weight, ignore_index=1, label_smoothing=0.2), x)
    gradcheck(lambda x: F.cross_entropy(x, target, reduction="none"), x)
    p = rng.random((4, 3, 2))
    gradcheck(lambda x: F.cross_entropy(x, p / p.sum(1, keepdims=True), label_smoothing=0.1), x)


def test_defaults_written_out_are_accepted_and_bad_options_named():
    x, t = mc.Tensor(np.zeros((2, 3))), [0, 1]
    v = mc.Tensor([-1.0, 2.0])
    assert nn.ReLU(inplace=True)(v).tolist() == [0, 2] and F.relu(v, inplace=True).tolist() == [0, 2]
    assert v.tolist() == [-1, 2] and repr(nn.ReLU(inplace=True)) == "ReLU(inplace=True)"
    nn.Dropout(0.5, inplace=False)
    F.dropout(v, 0.5, False, False)
    assert mc.optim.SGD(nn.Linear(2, 1).parameters()).lr == 1e-3
    with pytest.raises(NotImplementedError, match="amsgrad"):
        mc.optim.Adam(nn.Linear(2, 1).parameters(), amsgrad=True)
    F.cross_entropy(x, t, weight=None, ignore_index=-100, reduction="mean", label_smoothing=0.0)
    F.nll_loss(x, t, None, None, -100, None, "mean")
    with pytest.raises(ValueError, match="reduction must be one of 'mean', 'sum', 'none', got 'avg'"):
        F.cross_entropy(x, t, reduction="avg")
    with pytest.raises(ValueError, match="label_smoothing must be in"):
        F.cross_entropy(x, t, label_smoothing=2.0)
    with pytest.raises(NotImplementedError, match="size_average is deprecated"):
        F.cross_entropy(x, t, size_average=True)
    with pytest.raises(ValueError, match="weight must have one entry per class"):
        F.cross_entropy(x, t, weight=[1.0, 2.0])


# ----- padding='same'/'valid', F.pad, return_indices and unpooling, adaptive pooling --------------------------
def run_pair(torch, ours_fn, torch_fn, arrays, rng, name, tol=1e-10):
    ours = [t64(a) for a in arrays]
    theirs = [torch.tensor(a, requires_grad=True) for a in arrays]
    y, ty = ours_fn(*ours), torch_fn(*theirs)
    assert y.shape == tuple(ty.shape), f"{name}: {y.shape} != {tuple(ty.shape)}"
    assert_close(y, ty.detach().numpy(), rtol=tol, atol=tol, name=name)
    g = rng.standard_normal(y.shape)
    y.backward(g)
    ty.backward(torch.tensor(g))
    for k, (o, t) in enumerate(zip(ours, theirs)):
        assert_close(o.grad, t.grad.numpy(), rtol=tol, atol=tol, name=f"{name} gradient {k}")


@pytest.mark.parametrize("kernel, dilation, padding", [(3, 1, "same"), (4, 1, "same"), ((2, 5), (1, 2), "same"),
                                                        (2, 3, "same"), (3, 1, "valid"), ((1, 4), 2, "valid")])
def test_conv2d_string_padding_matches_pytorch(kernel, dilation, padding, rng):
    torch = torch_or_skip()
    k = kernel if isinstance(kernel, tuple) else (kernel, kernel)
    arrays = (rng.standard_normal((2, 3, 9, 8)), rng.standard_normal((4, 3) + k), rng.standard_normal(4))
    run_pair(torch, lambda x, w, b: F.conv2d(x, w, b, 1, padding, dilation),
             lambda x, w, b: torch.nn.functional.conv2d(x, w, b, 1, padding, dilation), arrays, rng, "conv2d")
    conv = nn.Conv2d(3, 4, kernel, padding=padding, dilation=dilation)
    assert conv(mc.Tensor(arrays[0])).shape == ((2, 4, 9, 8) if padding == "same" else conv(mc.Tensor(arrays[0])).shape)
    with pytest.raises(ValueError, match="padding='same' is not supported for strided convolutions"):
        nn.Conv2d(3, 4, 3, stride=2, padding="same")


@pytest.mark.parametrize("widths", [(1, 2), (0, 1, 2, 0), (2, 1, 1, 3, 1, 0), (-1, 2, 1, -2)])
def test_pad_matches_pytorch(widths, rng):
    torch = torch_or_skip()
    run_pair(torch, lambda x: F.pad(x, widths, value=0.5), lambda x: torch.nn.functional.pad(x, widths, value=0.5),
             [rng.standard_normal((2, 3, 5, 6))], rng, "pad")


@pytest.mark.parametrize("shape, k, s, p", [((2, 3, 8, 8), 2, 2, 0), ((1, 2, 9, 7), 3, 2, 1), ((2, 1, 6, 5), 2, 1, 0)])
def test_return_indices_and_max_unpool2d_match_pytorch(shape, k, s, p, rng):
    torch = torch_or_skip()
    x = distinct(rng, shape)
    y, idx = F.max_pool2d(t64(x), k, s, p, return_indices=True)
    ty, tidx = torch.nn.functional.max_pool2d(torch.tensor(x), k, s, p, return_indices=True)
    np.testing.assert_array_equal(idx.numpy(), tidx.numpy())
    assert_close(y, ty.numpy(), rtol=0, atol=0)
    run_pair(torch, lambda v: F.max_unpool2d(v, idx, k, s, p, output_size=shape[-2:]),
             lambda v: torch.nn.functional.max_unpool2d(v, tidx, k, s, p, output_size=shape[-2:]),
             [y.numpy()], rng, "max_unpool2d")
    pool, unpool = nn.MaxPool2d(k, s, p, return_indices=True), nn.MaxUnpool2d(k, s, p)
    pooled, indices = pool(mc.Tensor(x))
    assert unpool(pooled, indices, output_size=shape).shape == shape


@pytest.mark.parametrize("shape, out", [((2, 3, 7, 9), (3, 4)), ((1, 2, 5, 5), 2), ((2, 1, 8, 6), (8, 6)),
                                        ((1, 2, 10, 7), (None, 3)), ((3, 2, 6, 6), 1), ((1, 1, 4, 9), (5, 2))])
def test_adaptive_pools_match_pytorch(shape, out, rng):
    torch = torch_or_skip()
    x = distinct(rng, shape)
    run_pair(torch, lambda v: F.adaptive_avg_pool2d(v, out), lambda v: torch.nn.functional.adaptive_avg_pool2d(v, out),
             [x], rng, "adaptive_avg_pool2d")
    run_pair(torch, lambda v: F.adaptive_max_pool2d(v, out), lambda v: torch.nn.functional.adaptive_max_pool2d(v, out),
             [x], rng, "adaptive_max_pool2d")
    _, idx = F.adaptive_max_pool2d(t64(x), out, return_indices=True)
    _, tidx = torch.nn.functional.adaptive_max_pool2d(torch.tensor(x), out, return_indices=True)
    np.testing.assert_array_equal(idx.numpy(), tidx.numpy())


def test_gradcheck_pad_unpool_adaptive(rng):
    x = t64(distinct(rng, (2, 2, 7, 5)))
    gradcheck(lambda v: F.pad(v, (1, -1, 2, 0)), x)
    gradcheck(lambda v: F.adaptive_avg_pool2d(v, (3, 2)), x)
    gradcheck(lambda v: F.adaptive_max_pool2d(v, (3, 4)), x)
    y, idx = F.max_pool2d(x, 2, return_indices=True)
    gradcheck(lambda v: F.max_unpool2d(v, idx, 2, output_size=(7, 5)), t64(y.numpy()))
    assert_close(F.adaptive_avg_pool2d(x, 1), F.global_avg_pool2d(x), rtol=1e-12, name="global = adaptive(1)")


def test_zero_channels_and_empty_planes_are_refused_by_name():
    for op in (lambda x: F.max_pool2d(x, 2), lambda x: F.avg_pool2d(x, 2), lambda x: F.global_avg_pool2d(x),
               lambda x: F.adaptive_avg_pool2d(x, 1)):
        with pytest.raises(ValueError, match="C = 0"):
            op(mc.Tensor(np.zeros((2, 0, 4, 4))))
        with pytest.raises(ValueError, match="H = 0"):
            op(mc.Tensor(np.zeros((2, 3, 0, 4))))
