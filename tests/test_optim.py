"""Optimizers follow PyTorch's update rules, and learning works end to end."""
import numpy as np
import pytest

import minicnn as mc
import minicnn.functional as F
from minicnn import nn, optim
from minicnn.testing import assert_close

from conftest import torch_or_skip


def run_steps(make_opt, steps=4):
    w = mc.nn.Parameter(np.array([1.0, -2.0, 3.0]))
    opt = make_opt([w])
    for k in range(steps):
        opt.zero_grad()
        ((w * w).sum() * (k + 1)).backward()
        opt.step()
    return w.numpy()


def test_sgd_by_hand():
    # momentum 0.9, dampening 0.1, weight decay 0.01, loss (k+1)·Σw²: written out from the rule in optim.py
    w = np.array([1.0, -2.0, 3.0]); buf = None
    for k in range(4):
        g = 2 * w * (k + 1) + 0.01 * w
        buf = g.copy() if buf is None else 0.9 * buf + 0.9 * g
        w = w - 0.1 * buf
    got = run_steps(lambda p: optim.SGD(p, lr=0.1, momentum=0.9, dampening=0.1, weight_decay=0.01))
    assert_close(got, w, rtol=1e-5)


def sgd_in_numpy(p, grads, lr, momentum=0.0, dampening=0.0, weight_decay=0.0, nesterov=False):
    """The SGD rule as numpy lines, each rounded in p's dtype: what ``sgd_step``'s one loop must equal."""
    p, buf = p.copy(), None
    for g in grads:
        if weight_decay:
            g = g + weight_decay * p
        if momentum:
            if buf is None:
                buf = np.array(g)
            else:
                buf *= momentum
                buf += (1.0 - dampening) * g if dampening else g
            g = g + momentum * buf if nesterov else buf
        p -= np.multiply(g, lr, dtype=p.dtype)
    return p


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("settings", [dict(), dict(momentum=0.9), dict(momentum=0.9, nesterov=True),
                                      dict(momentum=0.5, dampening=0.3, weight_decay=0.1),
                                      dict(weight_decay=0.01), dict(momentum=0.9, weight_decay=1e-4, nesterov=True)])
def test_sgd_in_one_pass_equals_the_rule_line_by_line_to_the_bit(dtype, settings):
    rng = np.random.default_rng(3)
    start = rng.standard_normal((5, 7)).astype(dtype)
    grads = [rng.standard_normal((5, 7)).astype(dtype) for _ in range(4)]
    expected = sgd_in_numpy(start, grads, 0.03, **settings)
    for layout in ("C", "transposed"):              # a parameter that is a transposed view is updated in place too
        w = mc.nn.Parameter(start.copy(), dtype=dtype)
        if layout == "transposed":
            w.data = np.ascontiguousarray(start.T).T
        data = w.data
        opt = optim.SGD([w], lr=0.03, **settings)
        for g in grads:
            w.grad = g.copy()
            opt.step()
        assert w.data is data and w.dtype == dtype
        np.testing.assert_array_equal(w.numpy(), expected)


@pytest.mark.parametrize("name, kwargs", [
    ("SGD", dict(lr=0.1)), ("SGD", dict(lr=0.1, momentum=0.9)), ("SGD", dict(lr=0.05, momentum=0.9, nesterov=True)),
    ("SGD", dict(lr=0.1, momentum=0.5, dampening=0.3, weight_decay=0.1)),
    ("Adam", dict(lr=0.001)), ("Adam", dict(lr=0.1, betas=(0.8, 0.99), eps=1e-6, weight_decay=0.1))])
def test_optimizers_match_pytorch(name, kwargs):
    torch = torch_or_skip()
    ours = run_steps(lambda p: getattr(optim, name)(p, **kwargs))
    w = torch.tensor([1.0, -2.0, 3.0], requires_grad=True)
    opt = getattr(torch.optim, name)([w], **kwargs)
    for k in range(4):
        opt.zero_grad(); ((w * w).sum() * (k + 1)).backward(); opt.step()
    assert_close(ours, w.detach().numpy(), rtol=1e-5)


def test_adam_first_step_moves_by_lr():
    # after one step m̂ = g and v̂ = g², so every weight moves by lr·g/(|g| + eps) ≈ lr·sign(g)
    got = run_steps(lambda p: optim.Adam(p, lr=0.01), steps=1)
    assert_close(got, [0.99, -1.99, 2.99], rtol=1e-6)


def test_optimizer_state_round_trip():
    w1, w2 = mc.nn.Parameter(np.ones(3)), mc.nn.Parameter(np.ones(3))
    opt1, opt2 = optim.Adam([w1]), optim.Adam([w2])
    for _ in range(2):
        opt1.zero_grad(); (w1 * w1).sum().backward(); opt1.step()
    w2.data = w1.data.copy()
    opt2.load_state_dict(opt1.state_dict())
    for w, opt in ((w1, opt1), (w2, opt2)):
        opt.zero_grad(); (w * w).sum().backward(); opt.step()
    np.testing.assert_array_equal(w1.numpy(), w2.numpy())


def fixed_batch():
    rng = np.random.default_rng(0)
    x = rng.random((32, 1, 12, 12)).astype(np.float32)
    y = np.arange(32) % 10
    return mc.Tensor(x), y


@pytest.mark.parametrize("make_opt", [lambda p: optim.SGD(p, lr=0.05, momentum=0.9), lambda p: optim.Adam(p, lr=0.01)],
                         ids=["sgd", "adam"])
def test_a_small_cnn_overfits_a_fixed_batch(make_opt):
    mc.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                          nn.Conv2d(8, 16, 3), nn.ReLU(), nn.AvgPool2d(2),
                          nn.Flatten(), nn.Linear(16 * 2 * 2, 32), nn.ReLU(), nn.Linear(32, 10))
    opt = make_opt(model.parameters())
    x, y = fixed_batch()
    for step in range(400):
        loss = F.cross_entropy(model(x), y)
        opt.zero_grad(); loss.backward(); opt.step()
        with mc.no_grad():
            accuracy = np.mean(model(x).numpy().argmax(1) == y)
        if accuracy == 1.0:
            break
    assert accuracy == 1.0, f"training accuracy {accuracy:.2f} after {step + 1} steps, loss {loss.item():.3f}"


def test_adam_counts_steps_per_parameter():
    """A parameter that gets its first gradient at the optimizer's third step takes Adam's *first* step then:
    bias correction uses its own count, so it moves by lr·sign(g), as PyTorch's Adam does."""
    a, b = mc.nn.Parameter(np.array([1.0, -2.0])), mc.nn.Parameter(np.array([3.0, -4.0]))
    opt = optim.Adam([a, b], lr=0.01)
    for step in range(3):
        opt.zero_grad()
        loss = (a * a).sum() if step < 2 else (a * a).sum() + (b * b).sum()     # b joins at step 3
        loss.backward()
        opt.step()
    assert_close(b.numpy(), [2.99, -3.99], rtol=1e-6, name="b after its first step")
    assert opt.state[1]["step"] == 1 and opt.state[0]["step"] == 3


def test_adam_with_parameters_joining_late_matches_pytorch():
    torch = torch_or_skip()
    start = [np.array([1.0, -2.0]), np.array([3.0, -4.0, 0.5])]
    ours = [mc.nn.Parameter(v.copy()) for v in start]
    theirs = [torch.tensor(v.copy(), requires_grad=True) for v in start]
    opt_ours, opt_theirs = optim.Adam(ours, lr=0.05), torch.optim.Adam(theirs, lr=0.05)
    for step in range(5):
        for params, opt in ((ours, opt_ours), (theirs, opt_theirs)):
            opt.zero_grad()
            used = params[:1] if step in (0, 1, 3) else params               # the second sits out steps 1, 2, 4
            sum((p * p).sum() * (k + 2) for k, p in enumerate(used)).backward()
            opt.step()
    for o, t in zip(ours, theirs):
        assert_close(o.numpy(), t.detach().numpy(), rtol=1e-10)
