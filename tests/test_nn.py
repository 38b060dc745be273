"""Modules: parameters, printing, state dicts, initialisation, seeding, modes, float64 gradient checks."""
import math

import numpy as np
import pytest

import minicnn as mc
import minicnn.functional as F
from minicnn import nn
from minicnn.testing import gradcheck

from conftest import torch_or_skip


def small_cnn():
    return nn.Sequential(
        nn.Conv2d(1, 6, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(6, 16, 5), nn.ReLU(), nn.AvgPool2d(2),
        nn.Conv2d(16, 32, 3, stride=2, padding=1), nn.ReLU(),
        nn.GlobalAvgPool2d(), nn.Flatten(), nn.Linear(32, 10))


def test_the_issue_snippet_runs_and_prints_like_pytorch():
    mc.manual_seed(0)
    model = small_cnn()
    opt = mc.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    x = mc.Tensor(np.random.rand(8, 1, 28, 28).astype(np.float32))
    y = np.random.randint(0, 10, size=8)
    before = model[0].weight.numpy().copy()
    loss = F.cross_entropy(model(x), y)
    opt.zero_grad(); loss.backward(); opt.step()
    assert not np.array_equal(before, model[0].weight.numpy())
    text = repr(model)
    assert text.startswith("Sequential(\n  (0): Conv2d(1, 6, kernel_size=(5, 5), stride=(1, 1), padding=(2, 2))")
    assert "(2): MaxPool2d(kernel_size=2, stride=2, padding=0, dilation=1, ceil_mode=False)" in text
    assert "(5): AvgPool2d(kernel_size=2, stride=2, padding=0)" in text
    assert "(10): Linear(in_features=32, out_features=10, bias=True)" in text
    assert text.endswith("\n)")


def test_parameter_names_order_and_counts():
    model = small_cnn()
    names = [n for n, _ in model.named_parameters()]
    assert names == ["0.weight", "0.bias", "3.weight", "3.bias", "6.weight", "6.bias", "10.weight", "10.bias"]
    assert model[0].weight.shape == (6, 1, 5, 5) and model[0].bias.shape == (6,)
    assert model[10].weight.shape == (10, 32)
    assert sum(p.numel() for p in model.parameters()) == 156 + 2416 + 4640 + 330
    assert len(list(model.children())) == 11


def test_init_bounds_and_seeding():
    mc.manual_seed(3)
    a = nn.Conv2d(6, 16, 5)
    mc.manual_seed(3)
    b = nn.Conv2d(6, 16, 5)
    np.testing.assert_array_equal(a.weight.numpy(), b.weight.numpy())
    bound = 1 / math.sqrt(6 * 25)          # Kaiming uniform with a=√5 gives U(±1/√fan_in)
    w = a.weight.numpy()
    assert w.dtype == np.float32 and np.abs(w).max() <= bound and np.abs(w).max() > 0.9 * bound
    assert np.abs(a.bias.numpy()).max() <= bound
    assert abs(w.std() - bound / math.sqrt(3)) < 0.1 * bound        # the std of U(±b) is b/√3
    mc.manual_seed(4)
    assert not np.array_equal(nn.Conv2d(6, 16, 5).weight.numpy(), w)


def test_state_dict_round_trip_and_errors(tmp_path):
    model, other = small_cnn(), small_cnn()
    other.load_state_dict(model.state_dict())
    x = mc.Tensor(np.random.rand(2, 1, 28, 28))
    np.testing.assert_array_equal(model(x).numpy(), other(x).numpy())
    mc.save(model.state_dict(), tmp_path / "m.npz")
    third = small_cnn()
    third.load_state_dict(mc.load(tmp_path / "m.npz"))
    np.testing.assert_array_equal(model(x).numpy(), third(x).numpy())

    state = model.state_dict()
    del state["0.bias"]
    state["extra"] = np.zeros(1)
    with pytest.raises(KeyError, match=r"missing keys \['0.bias'\], unexpected keys \['extra'\]"):
        other.load_state_dict(state)
    state = model.state_dict()
    state["10.weight"] = np.zeros((3, 3))
    with pytest.raises(ValueError, match=r"10.weight expects shape \(10, 32\), got \(3, 3\)"):
        other.load_state_dict(state)


def test_train_eval_and_dropout():
    model = nn.Sequential(nn.Linear(4, 4), nn.Dropout(0.5))
    x = mc.Tensor(np.ones((100, 4)))
    model.eval()
    assert not model[1].training
    np.testing.assert_array_equal(model(x).numpy(), model(x).numpy())
    model.train()
    mc.manual_seed(0)
    y1 = model(x).numpy()
    mc.manual_seed(0)
    np.testing.assert_array_equal(y1, model(x).numpy())                 # the mask follows the seed
    assert 0.3 < np.mean(y1 == 0) < 0.7
    assert repr(model[1]) == "Dropout(p=0.5)"


def test_fuse_is_a_visible_step_with_the_same_numbers_and_keys(rng, engine):
    """``nn.fuse`` replaces each Conv2d or Linear followed by a ReLU with one module; ``print`` shows it, the
    state_dict keys stay the unfused model's, the Parameters are shared, and output and gradients equal the
    unfused model's to the bit. Subclasses (which may compute something else) and layers not followed by a
    ReLU are left alone."""
    class Doubled(nn.Conv2d):
        def forward(self, x):
            return super().forward(x) * 2.0

    class Halved(nn.Linear):
        def forward(self, x):
            return super().forward(x) * 0.5

    mc.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 4, 3, stride=2, padding=1), nn.ReLU(), Doubled(4, 4, 3), nn.ReLU(),
                          nn.Conv2d(4, 2, 1), nn.Flatten(), nn.Linear(50, 20), nn.ReLU(), Halved(20, 10), nn.ReLU(),
                          nn.Linear(10, 3))
    fused = nn.fuse(model)
    assert [type(m).__name__ for m in fused] == ["Conv2dReLU", "Doubled", "ReLU", "Conv2d", "Flatten", "LinearReLU",
                                                 "Halved", "ReLU", "Linear"]
    assert "(0): Conv2dReLU(1, 4, kernel_size=(3, 3), stride=(2, 2), padding=(1, 1))" in repr(fused)
    assert "(6): LinearReLU(in_features=50, out_features=20, bias=True)" in repr(fused)
    assert list(fused.state_dict()) == list(model.state_dict())
    assert all(a is b for a, b in zip(fused.parameters(), model.parameters()))
    x = rng.standard_normal((3, 1, 13, 13)).astype(np.float32)
    results = []
    for net in (fused, model):
        net.zero_grad()
        y = net(mc.Tensor(x))
        y.backward(np.cos(np.arange(y.numel(), dtype=np.float32)).reshape(y.shape))
        results.append([y.numpy()] + [p.grad.copy() for p in net.parameters()])
    for got, expected in zip(*results):
        np.testing.assert_array_equal(got, expected)


def test_sequential_runs_exactly_its_modules():
    """No hidden fusion: a breakpoint in Conv2d.forward fires inside an unfused Sequential."""
    calls = []

    class Spy(nn.Conv2d):
        def forward(self, x):
            calls.append(1)
            return super().forward(x)

    model = nn.Sequential(Spy(1, 2, 3), nn.ReLU())
    model(mc.Tensor(np.zeros((1, 1, 5, 5), np.float32)))
    assert calls == [1]


def test_frozen_parameters_get_no_gradient():
    model = nn.Sequential(nn.Conv2d(1, 2, 3), nn.Flatten(), nn.Linear(2 * 4 * 4, 3))
    model[0].requires_grad_(False)
    F.cross_entropy(model(mc.Tensor(np.random.rand(2, 1, 6, 6))), [0, 1]).backward()
    assert model[0].weight.grad is None and model[2].weight.grad is not None


def test_a_whole_cnn_passes_gradcheck_in_float64(rng):
    mc.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 2, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                          nn.Conv2d(2, 3, 3, stride=2, padding=1), nn.ReLU(), nn.AvgPool2d(2, ceil_mode=True),
                          nn.GlobalAvgPool2d(), nn.Flatten(), nn.Linear(3, 4)).to(np.float64)
    x = mc.Tensor(rng.standard_normal((2, 1, 8, 8)), dtype=np.float64)
    params = list(model.parameters())
    gradcheck(lambda *ps: F.cross_entropy(model(x), [1, 3]), *params)


def test_module_layer_settings_match_pytorch_printing():
    torch = torch_or_skip()
    pairs = [(nn.Conv2d(3, 8, 3, stride=2, padding=1, bias=False), torch.nn.Conv2d(3, 8, 3, stride=2, padding=1, bias=False)),
             (nn.Conv2d(1, 6, 5), torch.nn.Conv2d(1, 6, 5)),
             (nn.Linear(400, 120), torch.nn.Linear(400, 120)),
             (nn.AvgPool2d(2), torch.nn.AvgPool2d(2)),
             (nn.Flatten(), torch.nn.Flatten()), (nn.ReLU(), torch.nn.ReLU())]
    for ours, theirs in pairs:
        assert repr(ours) == repr(theirs)
