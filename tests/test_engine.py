"""The engine contract: every engine provides it, the chosen one runs, and the plain engine takes over where the
fast one cannot run (``minicnn/engine.py``)."""
import inspect
import json
import os
import re
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest

import minicnn as mc
import minicnn.functional as F
from minicnn import engine, models, nn, plain

from conftest import fast_engine_or_skip

ROOT = Path(__file__).resolve().parents[1]


def test_every_engine_provides_the_contract_with_one_signature():
    fast = fast_engine_or_skip()
    for name in engine.CONTRACT:
        assert callable(getattr(plain, name, None)), f"the plain engine lacks {name}"
        if name in engine.SHARED:                      # run from the plain engine by both: no second version
            assert not hasattr(fast, name), f"the fast engine has {name}, which engine.SHARED gives to plain"
            assert getattr(engine, name) is getattr(plain, name)
            continue
        assert callable(getattr(fast, name, None)), f"the fast engine lacks {name}"
        assert inspect.signature(getattr(fast, name)) == inspect.signature(getattr(plain, name)), name


def test_use_engine_chooses_and_refuses_unknown_names():
    before = mc.engine_name()
    try:
        mc.use_engine("plain")
        assert mc.engine_name() == "plain"
        with pytest.raises(ValueError, match=r"use_engine: expected one of fast, plain, got 'quick'"):
            mc.use_engine("quick")
        assert mc.engine_name() == "plain"
    finally:
        mc.use_engine(before)


def one_step(name="maxpool", seed=0, dilated=False):
    """Loss and parameter gradients of one training step of a fused pyramid on fixed data."""
    mc.manual_seed(seed)
    model = nn.fuse(models.build(name))
    if dilated:
        model = nn.Sequential(nn.Conv2d(1, 4, 3, dilation=2, groups=1), nn.ReLU(), nn.MaxPool2d(2, dilation=2),
                              nn.Flatten(), nn.Linear(4 * 11 * 11, 10))
    x = np.random.default_rng(seed).random((9, 1, 28, 28)).astype(np.float32)
    loss = F.cross_entropy(model(mc.Tensor(x)), np.arange(9))
    loss.backward()
    return loss.item(), [p.grad.copy() for p in model.parameters()]


@pytest.mark.parametrize("name", ["maxpool", "strided", "gap", "blurpool"])
def test_both_engines_train_the_pyramids_to_the_same_numbers(name):
    fast_engine_or_skip()
    results = {}
    for which in ("plain", "fast"):
        with_engine(which)
        results[which] = one_step(name)
    with_engine("fast")
    assert results["plain"][0] == pytest.approx(results["fast"][0], rel=1e-5)
    for a, b in zip(results["plain"][1], results["fast"][1]):
        np.testing.assert_allclose(a, b, rtol=1e-3, atol=1e-5)


def with_engine(name):
    mc.use_engine(name)


def test_a_configuration_the_fast_engine_lacks_runs_on_plain_with_one_warning(monkeypatch):
    fast_engine_or_skip()
    monkeypatch.setattr(engine, "_warned", set())
    with_engine("plain")
    expected = one_step(dilated=True)
    with_engine("fast")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        got = one_step(dilated=True)
        one_step(dilated=True)
    messages = [str(w.message) for w in caught]
    assert any("conv2d_forward: the fast engine does not handle dilation or groups other than 1" in m
               for m in messages), messages
    assert any("max_pool2d_forward: the fast engine does not handle dilation other than 1" in m for m in messages)
    assert len(messages) == len(set(messages)), "a reason was warned twice"
    assert got[0] == expected[0]
    for a, b in zip(got[1], expected[1]):
        np.testing.assert_array_equal(a, b)


def test_a_fast_kernel_that_fails_hands_its_op_to_plain_for_good(monkeypatch):
    fast = fast_engine_or_skip()
    monkeypatch.setattr(engine, "_warned", set())
    monkeypatch.setattr(engine, "_broken", {})
    calls = []

    def broken(*args, **kwargs):
        calls.append(1)
        raise RuntimeError("simulated: this Numba cannot compile the kernel")

    monkeypatch.setattr(fast, "max_pool2d_forward", broken)
    with_engine("fast")
    x = mc.Tensor(np.random.default_rng(0).random((2, 3, 8, 8)))
    with pytest.warns(RuntimeWarning, match="max_pool2d_forward: the fast engine failed .*simulated"):
        y = F.max_pool2d(x, 2)
    F.max_pool2d(x, 2)
    assert calls == [1], "the broken op was tried again"
    np.testing.assert_array_equal(y.numpy(), x.numpy().reshape(2, 3, 4, 2, 4, 2).max(axis=(3, 5)))


BROKEN_FAST = """
import importlib.abc, json, sys, warnings
class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.startswith("minicnn.fast"):
            raise ImportError("simulated: numba.core.caching has no _CacheLocator")
sys.meta_path.insert(0, Block())
warnings.simplefilter("always")
import numpy as np, minicnn as mc, minicnn.functional as F
from minicnn import models, nn, optim
mc.manual_seed(0)
model = nn.fuse(models.maxpool())
opt = optim.SGD(model.parameters(), lr=0.1)
x = mc.Tensor(np.random.default_rng(0).random((8, 1, 28, 28)).astype(np.float32))
with warnings.catch_warnings(record=True) as caught:
    losses = []
    for _ in range(3):
        loss = F.cross_entropy(model(x), np.arange(8))
        opt.zero_grad(); loss.backward(); opt.step()
        losses.append(loss.item())
print(json.dumps({"engine": mc.engine_name(), "losses": losses, "warnings": [str(w.message) for w in caught],
                  "fast_loaded": "minicnn.fast" in sys.modules}))
"""


@pytest.mark.slow
def test_with_the_fast_engine_unimportable_minicnn_still_trains():
    env = {k: v for k, v in os.environ.items() if k != "MINICNN_ENGINE"}
    done = subprocess.run([sys.executable, "-c", BROKEN_FAST], capture_output=True, text=True, cwd=ROOT, env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    out = json.loads(done.stdout.splitlines()[-1])
    assert out["engine"] == "fast" and not out["fast_loaded"]
    assert len(out["warnings"]) == 1 and "the fast engine cannot be imported" in out["warnings"][0], out
    assert "simulated" in out["warnings"][0]
    assert out["losses"][2] < out["losses"][0]              # it learns
    with_engine("plain")
    try:
        mc.manual_seed(0)
        model = nn.fuse(models.maxpool())
        opt = mc.optim.SGD(model.parameters(), lr=0.1)
        x = mc.Tensor(np.random.default_rng(0).random((8, 1, 28, 28)).astype(np.float32))
        losses = []
        for _ in range(3):
            loss = F.cross_entropy(model(x), np.arange(8))
            opt.zero_grad(); loss.backward(); opt.step()           # noqa: E702
            losses.append(loss.item())
    finally:
        with_engine("fast")
    assert out["losses"] == pytest.approx(losses, rel=1e-6)        # the plain engine's numbers


IMPORT_ONLY = """
import ctypes, json, sys
calls = []
real = ctypes.CDLL
class Spy(real):
    def __getattr__(self, name):
        calls.append(name)
        return real.__getattr__(self, name)
    def __getitem__(self, name):
        calls.append(name)
        return real.__getitem__(self, name)
ctypes.CDLL = Spy
import numba
layer = numba.config.THREADING_LAYER
import minicnn
print(json.dumps({"calls": calls, "layer_before": layer, "layer_after": numba.config.THREADING_LAYER,
                  "fast": sorted(m for m in sys.modules if m.startswith("minicnn.fast"))}))
"""


@pytest.mark.slow
def test_import_minicnn_changes_nothing_process_wide():
    """``import minicnn`` calls no C function (glibc's ``mallopt`` above all), leaves Numba's threading layer
    as it found it, and does not import the fast engine."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("NUMBA_THREADING")}
    done = subprocess.run([sys.executable, "-c", IMPORT_ONLY], capture_output=True, text=True, cwd=ROOT, env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    out = json.loads(done.stdout.splitlines()[-1])
    assert "mallopt" not in out["calls"], out
    assert out["layer_after"] == out["layer_before"]
    assert out["fast"] == []


def test_no_private_numba_name_outside_the_fast_engine():
    """Only ``minicnn/fast/`` may import Numba's, llvmlite's or ctypes' internals (listed in its docstring)."""
    private = re.compile(r"numba\.(core|_|np|cpython|typed|misc|extending)|llvmlite|ctypes")
    offenders = [f"{path.relative_to(ROOT)}: {imports(path)}" for path in (ROOT / "minicnn").rglob("*.py")
                 if "fast" not in path.relative_to(ROOT / "minicnn").parts and private.search(imports(path))]
    assert not offenders, "\n".join(offenders)


def imports(path):
    """The import statements of a file, as one text."""
    return "\n".join(line for line in path.read_text().splitlines() if re.match(r"\s*(from|import) ", line))


def test_floors_nn_imports_no_engine_and_no_engine_imports_the_other():
    for path in (ROOT / "minicnn" / "nn").glob("*.py"):
        assert not re.search(r"plain|fast|engine", imports(path)), path
    for path in (ROOT / "minicnn" / "plain").glob("*.py"):
        assert not re.search(r"fast|engine|tensor|autograd|nn\b", imports(path)), path
    for path in (ROOT / "minicnn" / "fast").glob("*.py"):
        assert not re.search(r"plain|engine|tensor|autograd|nn\b", imports(path)), path
