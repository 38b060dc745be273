"""Bad arguments get clear errors, odd inputs behave as in PyTorch, and nothing a run writes is lost or
silently replaced."""
import importlib.util
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import minicnn as mc
import minicnn.functional as F
from minicnn import models, nn, optim
from minicnn.data import DataLoader
from minicnn.serialization import atomic_write, remove_stale_temporaries
from minicnn.train import fit

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "train_fashion.py"


@pytest.mark.parametrize("make", [lambda p, v: optim.SGD(p, lr=v), lambda p, v: optim.Adam(p, lr=v),
                                  lambda p, v: optim.SGD(p, lr=0.1, momentum=v)], ids=["sgd", "adam", "momentum"])
@pytest.mark.parametrize("value", [float("nan"), float("inf"), -0.1])
def test_nan_infinite_or_negative_hyperparameters_are_refused(make, value):
    with pytest.raises(ValueError, match="must be a finite, non-negative number"):
        make(nn.Linear(2, 1).parameters(), value)


def test_numpy_numbers_are_accepted_where_python_numbers_are():
    conv = nn.Conv2d(np.int64(1), np.int64(2), np.int64(3), stride=np.int32(1))
    assert conv.in_channels == 1 and type(conv.in_channels) is int
    opt = optim.SGD(conv.parameters(), lr=np.float32(0.1), momentum=np.float64(0.9))
    assert type(opt.lr) is float and opt.lr == pytest.approx(0.1)
    loader = DataLoader(np.zeros((5, 28, 28), np.uint8), np.arange(5), batch_size=np.int64(2))
    assert len(loader) == 3 and [len(y) for _, y in loader] == [2, 2, 1]


def test_fractional_labels_are_refused():
    with pytest.raises(ValueError, match="whole-number class labels.*0.5"):
        DataLoader(np.zeros((3, 28, 28), np.uint8), np.array([0.0, 0.5, 1.0]), batch_size=2)


@pytest.mark.parametrize("engine_name", ["plain", "fast"])
def test_empty_batches_flow_through_forward_and_backward(engine_name):
    from conftest import fast_engine_or_skip
    if engine_name == "fast":
        fast_engine_or_skip()
    before = mc.engine_name()
    mc.use_engine(engine_name)
    try:
        for name in ("maxpool", "strided", "gap", "blurpool"):
            model = nn.fuse(models.build(name))
            x = mc.Tensor(np.zeros((0, 1, 28, 28), np.float32), requires_grad=True)
            y = model(x)
            assert y.shape == (0, 10)
            F.cross_entropy(y, np.zeros(0, np.int64), reduction="sum").backward()
            assert x.grad.shape == (0, 1, 28, 28)
            assert all(p.grad is not None and not p.grad.any() for p in model.parameters())
    finally:
        mc.use_engine(before)


def test_a_huge_stride_costs_no_more_memory_than_its_output(rng):
    x = mc.Tensor(rng.standard_normal((2, 3, 5, 5)), requires_grad=True)
    conv = nn.Conv2d(3, 2, 3, stride=10 ** 9)
    y = conv(x)
    y.sum().backward()
    expected = F.conv2d(x.detach(), conv.weight.detach(), conv.bias.detach(), 10)
    assert y.shape == (2, 2, 1, 1)
    np.testing.assert_allclose(y.numpy(), expected.numpy(), rtol=1e-6)


# ----- files: permissions, stale temporaries, what mc.load says ---------------------------------------------------
def test_saved_files_honour_the_umask(tmp_path):
    old = os.umask(0o027)
    try:
        mc.save({"a": np.ones(2)}, tmp_path / "x.npz")
        with atomic_write(tmp_path / "y.txt", "w") as f:
            f.write("hello")
    finally:
        os.umask(old)
    assert (tmp_path / "x.npz").stat().st_mode & 0o777 == 0o640
    assert (tmp_path / "y.txt").stat().st_mode & 0o777 == 0o640


def test_stale_temporaries_are_removed(tmp_path):
    (tmp_path / ".maxpool.npz.abc123.tmp").write_bytes(b"half a checkpoint")
    (tmp_path / "maxpool.npz").write_bytes(b"kept")
    assert remove_stale_temporaries(tmp_path) == [".maxpool.npz.abc123.tmp"]
    assert os.listdir(tmp_path) == ["maxpool.npz"]


def test_load_names_the_file_and_what_is_wrong(tmp_path):
    with pytest.raises(FileNotFoundError, match=f"mc.load: no file at {tmp_path / 'none.npz'}"):
        mc.load(tmp_path / "none.npz")
    (tmp_path / "empty.npz").write_bytes(b"")
    with pytest.raises(ValueError, match="empty.npz is empty"):
        mc.load(tmp_path / "empty.npz")
    (tmp_path / "text.npz").write_text("not a checkpoint at all\n")
    with pytest.raises(ValueError, match="text.npz is not an .npz file written by mc.save"):
        mc.load(tmp_path / "text.npz")
    mc.save({"w": np.arange(10000.0)}, tmp_path / "full.npz")
    raw = (tmp_path / "full.npz").read_bytes()
    (tmp_path / "cut.npz").write_bytes(raw[: len(raw) // 2])
    with pytest.raises(ValueError, match="cut.npz"):
        mc.load(tmp_path / "cut.npz")


def test_load_state_dict_names_a_value_of_the_wrong_kind():
    lin = nn.Linear(2, 1)
    state = lin.state_dict()
    state["bias"] = "zero"
    with pytest.raises(TypeError, match="load_state_dict: bias must be an array of numbers"):
        lin.load_state_dict(state)


# ----- runs: folders of their own, resume errors, interruptions -----------------------------------------------
def load_example():
    spec = importlib.util.spec_from_file_location("train_fashion", EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_runs_started_in_the_same_second_get_folders_of_their_own(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    example = load_example()
    monkeypatch.setattr(time, "strftime", lambda *_: "20261205-120000")
    folders = [example._new_run_folder(None) for _ in range(3)]
    assert [f.name for f in folders] == ["20261205-120000", "20261205-120000-2", "20261205-120000-3"]
    (folders[0] / "config.json").write_text("{}")
    with pytest.raises(FileExistsError, match="holds a run already; continue it with --resume"):
        example._new_run_folder(folders[0])


@pytest.mark.parametrize("content", [None, "{broken", '{"models": "maxpool"}'])
def test_resume_from_a_broken_or_missing_config_says_what_is_wrong(tmp_path, capsys, content):
    if content is not None:
        (tmp_path / "config.json").write_text(content)
    assert load_example().main(["--resume", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert f"--resume {tmp_path}: cannot read its settings from {tmp_path / 'config.json'}" in err


@pytest.mark.parametrize("argument, value", [("--limit", "0"), ("--limit", "-5"), ("--epochs", "0"),
                                             ("--max-shift", "-3"), ("--lr", "nan"), ("--lr", "0"),
                                             ("--batch-size", "two")])
def test_command_line_arguments_are_checked_in_one_line(argument, value, capsys):
    with pytest.raises(SystemExit) as stop:
        load_example().parse_args([argument, value])
    assert stop.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith(f"train_fashion.py: error: argument {argument}:") or f"argument {argument}" in err[-1]


def synthetic(n=64):
    rng = np.random.default_rng(0)
    return rng.integers(0, 255, (n, 28, 28)).astype(np.uint8), rng.integers(0, 10, n)


class InterruptingLoader(DataLoader):
    """A test loader that sends this process a signal (Ctrl-C's SIGINT, or SIGTERM) in the middle of an epoch."""

    def __init__(self, *args, signum, **kwargs):
        super().__init__(*args, **kwargs)
        self.signum = signum

    def batches(self, epoch, start=0):
        for k, batch in enumerate(super().batches(epoch, start)):
            if k == 1:
                os.kill(os.getpid(), self.signum)
            yield batch


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_an_interruption_during_evaluation_stops_the_run_and_saves(tmp_path, signum):
    x, y = synthetic()
    mc.manual_seed(0)
    model = models.strided()
    opt = optim.SGD(model.parameters(), lr=0.01)
    test = InterruptingLoader(x, y, 16, signum=signum)
    result = fit(model, opt, DataLoader(x, y, 16), test, epochs=3, checkpoint=tmp_path / "c.npz", progress=False)
    assert result.interrupted and result.history == []
    state = mc.load(tmp_path / "c.npz")
    assert state["epoch"] == 0 and state["batch"] == 4 and state["finished"] is False


def test_sigterm_while_training_saves_like_ctrl_c(tmp_path):
    x, y = synthetic()
    mc.manual_seed(0)
    model = models.strided()
    opt = optim.SGD(model.parameters(), lr=0.01)
    train = InterruptingLoader(x, y, 16, signum=signal.SIGTERM)
    result = fit(model, opt, train, epochs=2, checkpoint=tmp_path / "c.npz", progress=False)
    assert result.interrupted and mc.load(tmp_path / "c.npz")["batch"] == 2


@pytest.mark.slow
def test_a_read_only_install_without_any_cache_folder_still_trains():
    """Numba refuses ``cache=True`` when no folder is writable: the plain engine compiles uncached with one
    warning saying how to set NUMBA_CACHE_DIR, the fast engine stands aside, and training goes on."""
    code = """
import json, warnings
warnings.simplefilter("always")
from numba.core import caching
impl = getattr(caching, "CacheImpl", None) or caching._CacheImpl
impl._locator_classes = []                       # no folder anywhere can hold a cache
with warnings.catch_warnings(record=True) as caught:
    import numpy as np, minicnn as mc, minicnn.functional as F
    from minicnn import models, nn
    model = nn.fuse(models.strided())
    loss = F.cross_entropy(model(mc.Tensor(np.zeros((4, 1, 28, 28), np.float32))), [0, 1, 2, 3])
    loss.backward()
print(json.dumps([str(w.message) for w in caught]))
"""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert done.returncode == 0, done.stderr[-3000:]
    messages = json.loads(done.stdout.splitlines()[-1])
    assert any("NUMBA_CACHE_DIR" in m for m in messages), messages
    assert any("the fast engine cannot be imported" in m for m in messages), messages


@pytest.mark.slow
def test_the_first_compile_is_announced_once_and_a_warm_start_is_silent(tmp_path):
    from conftest import fast_engine_or_skip
    fast_engine_or_skip()
    code = """
import numpy as np, minicnn as mc, minicnn.functional as F
from minicnn import models, nn
model = nn.fuse(models.strided())
for _ in range(2):
    F.cross_entropy(model(mc.Tensor(np.zeros((4, 1, 28, 28), np.float32))), [0, 1, 2, 3]).backward()
"""
    env = {**os.environ, "NUMBA_CACHE_DIR": str(tmp_path), "MINICNN_COMPILE_AHEAD": "0"}
    env.pop("MINICNN_ENGINE", None)
    cold = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, env=env)
    warm = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, env=env)
    assert cold.returncode == 0 and warm.returncode == 0, cold.stderr[-2000:] + warm.stderr[-2000:]
    assert cold.stderr.count("compiling the fast engine's kernels for float32 (first run only") == 1
    assert "compiling" not in warm.stderr
