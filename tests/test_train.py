"""fit/evaluate, checkpoints and resuming, and the main example end to end on the real Fashion-MNIST."""
import importlib.util
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import minicnn as mc
from minicnn import models, nn, optim
from minicnn.data import DataLoader
from minicnn.data import fashion_mnist as fm
from minicnn.train import cosine_schedule, evaluate, fit

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "train_fashion.py"


def synthetic(n=96, seed=0):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 10, n)
    x = rng.integers(0, 30, (n, 28, 28)).astype(np.uint8)
    for i, label in enumerate(y):                          # a learnable mark: a bright 4 × 4 block per class
        row, col = 4 + 8 * (label // 4), 2 + 6 * (label % 4)
        x[i, row:row + 4, col:col + 4] = 255
    return x, y


def make_run(seed=0, dropout=False):
    mc.manual_seed(seed)
    model = models.strided()
    if dropout:                      # a model that draws random numbers at every step: its masks must resume too
        model = nn.Sequential(*list(model)[:-1], nn.Dropout(0.3), list(model)[-1])
    return model, optim.SGD(model.parameters(), lr=0.05, momentum=0.9)


def test_fit_learns_and_evaluate_measures():
    x, y = synthetic()
    model, opt = make_run()
    result = fit(model, opt, DataLoader(x, y, 16, shuffle=True, seed=1), DataLoader(x, y, 50), epochs=8, progress=False)
    assert [h["epoch"] for h in result.history] == list(range(1, 9)) and not result.interrupted
    loss, accuracy = evaluate(model, DataLoader(x, y, 50))
    assert accuracy == result.history[-1]["test_accuracy"] and accuracy > 0.5
    assert result.history[-1]["train_loss"] < result.history[0]["train_loss"]


@pytest.mark.parametrize("dropout", [False, True], ids=["deterministic", "dropout"])
def test_an_interrupted_fit_resumes_to_the_same_numbers(tmp_path, dropout):
    x, y = synthetic()
    train, test = DataLoader(x, y, 16, shuffle=True, seed=1), DataLoader(x, y, 50)
    model, opt = make_run(dropout=dropout)
    straight = fit(model, opt, train, test, epochs=3, progress=False)

    model2, opt2 = make_run(dropout=dropout)
    calls = iter(range(10_000))
    stopped = fit(model2, opt2, train, test, epochs=3, checkpoint=tmp_path / "ckpt.npz", progress=False,
                  should_stop=lambda: next(calls) == 8)          # stop after the 9th batch: mid-epoch 2
    assert stopped.interrupted and len(stopped.history) == 1
    state = mc.load(tmp_path / "ckpt.npz")
    assert (state["epoch"], state["batch"], state["finished"]) == (1, 3, False)

    model3, opt3 = make_run(seed=99, dropout=dropout)         # a different start: everything must come from disk
    resumed = fit(model3, opt3, train, test, epochs=3, resume=tmp_path / "ckpt.npz", progress=False)
    for a, b in zip(straight.history, resumed.history):
        for key in ("train_loss", "train_accuracy", "test_loss", "test_accuracy"):
            assert a[key] == b[key], key
    for (name, p), q in zip(model.named_parameters(), model3.parameters()):
        np.testing.assert_array_equal(p.numpy(), q.numpy(), err_msg=name)


def test_evaluate_and_fit_leave_the_model_in_the_mode_they_found_it():
    x, y = synthetic(32)
    model, opt = make_run(dropout=True)
    evaluate(model, DataLoader(x, y, 16))
    assert model.training and all(m.training for m in model.modules())
    model.eval()
    evaluate(model, DataLoader(x, y, 16))
    assert not model.training and not any(m.training for m in model.modules())
    seen = []
    model.train()
    fit(model, opt, DataLoader(x, y, 16), DataLoader(x, y, 16), epochs=2, progress=False,
        should_stop=lambda: seen.append(model.training) and False)
    assert seen == [True] * 4, "epoch 2 trained with the model in evaluation mode"


def test_cosine_schedule_values_and_how_fit_applies_it():
    """Epoch e's rate is lr·(1 + cos(π·e/epochs))/2: the full rate in epoch 0 (PyTorch's CosineAnnealingLR with
    T_max = epochs, stepped once an epoch)."""
    schedule = cosine_schedule(0.1, 4)
    assert [schedule(e) for e in range(4)] == pytest.approx([0.1, 0.0853553390593, 0.05, 0.0146446609407])
    x, y = synthetic(32)
    model, opt = make_run()
    rates = []
    fit(model, opt, DataLoader(x, y, 16), epochs=4, lr_schedule=schedule, progress=False,
        should_stop=lambda: rates.append(opt.lr) and False)
    assert rates[::2] == pytest.approx([schedule(e) for e in range(4)])


def test_cosine_schedule_matches_pytorch():
    torch = pytest.importorskip("torch")
    w = torch.zeros(1, requires_grad=True)
    opt = torch.optim.SGD([w], lr=0.3)
    annealing = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=7)
    theirs = []
    for _ in range(7):
        theirs.append(opt.param_groups[0]["lr"])
        opt.step()
        annealing.step()
    assert [cosine_schedule(0.3, 7)(e) for e in range(7)] == pytest.approx(theirs, rel=1e-12)


def load_example():
    spec = importlib.util.spec_from_file_location("train_fashion", EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
def test_example_offline_says_how_to_get_the_data(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MINICNN_DATA", raising=False)
    monkeypatch.setattr(fm, "DEBIAN_DIR", str(tmp_path / "nowhere"))
    monkeypatch.setattr(fm, "DOWNLOAD_URL", (tmp_path / "offline").as_uri() + "/")
    assert load_example().main(["--out", str(tmp_path / "run"), "--quiet"]) == 1
    err = capsys.readouterr().err
    assert "apt-get install dataset-fashion-mnist" in err and "--data-dir" in err and "Traceback" not in err


def real_data_or_skip():
    if fm.locate(fm.FASHION_MNIST) is None:
        if os.environ.get("CI"):
            pytest.fail("CI must install Debian's dataset-fashion-mnist (see .ci/run)")
        pytest.skip("Fashion-MNIST is not installed (apt-get install dataset-fashion-mnist)")


def run_example(*args, **kwargs):
    return subprocess.run([sys.executable, str(EXAMPLE), *args], capture_output=True, text=True, cwd=ROOT, **kwargs)


@pytest.mark.slow
def test_example_end_to_end_on_real_data(tmp_path):
    real_data_or_skip()
    out = tmp_path / "run"
    done = run_example("--limit", "2000", "--epochs", "1", "--batch-size", "16", "--models", "maxpool,strided",
                       "--out", str(out), timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    results = json.loads((out / "results.json").read_text())
    assert [r["model"] for r in results["summary"]] == ["maxpool", "strided"]
    for row in results["summary"]:
        assert row["final_test_accuracy"] > 0.4, row                 # chance is 0.1
        assert row["params"] == 61_706
    assert (out / "results.csv").read_text().startswith("model,epoch,train_loss")
    assert {"maxpool.npz", "strided.npz", "config.json"} <= set(os.listdir(out))
    assert "| maxpool" in done.stdout and "final test acc" in done.stdout
    model = models.maxpool()
    model.load_state_dict(mc.load(out / "maxpool.npz")["model"])
    if importlib.util.find_spec("onnxruntime") and importlib.util.find_spec("safetensors"):
        exported = subprocess.run([sys.executable, str(ROOT / "examples" / "export.py"), str(out)],
                                  capture_output=True, text=True, cwd=ROOT, timeout=600)
        assert exported.returncode == 0, exported.stderr[-2000:]
        for row in results["summary"]:                       # ONNX Runtime's accuracy is minicnn's
            line = next(l for l in exported.stdout.splitlines() if l.startswith(f"| {row['model']} "))
            ours, theirs = line.split("|")[2:4]
            assert ours.strip() == theirs.strip() == f"{row['final_test_accuracy']:.2%}", line
        assert (out / "maxpool.onnx").exists() and (out / "strided.safetensors").exists()


@pytest.mark.slow
def test_example_ctrl_c_saves_and_resume_finishes_the_same(tmp_path):
    real_data_or_skip()
    settings = ["--limit", "3000", "--epochs", "4", "--models", "strided", "--seed", "3"]
    straight = run_example(*settings, "--out", str(tmp_path / "straight"), timeout=600)
    assert straight.returncode == 0, straight.stderr[-2000:]

    out = tmp_path / "stopped"
    process = subprocess.Popen([sys.executable, str(EXAMPLE), *settings, "--out", str(out)], cwd=ROOT,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    for line in process.stdout:                                      # wait until epoch 1 is done, then Ctrl-C
        if "epoch 1/4" in line:
            process.send_signal(signal.SIGINT)
            break
    stdout, stderr = process.communicate(timeout=300)
    assert process.returncode == 130, stderr[-2000:]
    assert "Interrupted" in stdout and "--resume" in stdout and "Traceback" not in stderr
    assert mc.load(out / "strided.npz")["finished"] is False

    resumed = run_example("--resume", str(out), "--quiet", timeout=600)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    a = json.loads((tmp_path / "straight" / "results.json").read_text())["epochs"]
    b = json.loads((out / "results.json").read_text())["epochs"]
    keys = ("epoch", "train_loss", "train_accuracy", "test_loss", "test_accuracy")
    assert [[r[k] for k in keys] for r in a] == [[r[k] for k in keys] for r in b]
