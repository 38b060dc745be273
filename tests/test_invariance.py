"""The invariance metrics on cases whose answers are known by hand, and a smoke run of examples/invariance.py."""
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from minicnn import models
from minicnn.data import fashion_mnist as fm
from minicnn.metrics import cosine_similarity, feature_maps, predict, shift_consistency

ROOT = Path(__file__).resolve().parents[1]


def test_cosine_similarity_by_hand():
    a = np.array([[1.0, 0.0], [0.0, 2.0], [1.0, 1.0], [0.0, 0.0], [3.0, 4.0]])
    b = np.array([[5.0, 0.0], [0.0, -1.0], [1.0, 0.0], [0.0, 0.0], [0.0, 0.0]])
    # same direction 1, opposite −1, 45° cos = 1/√2, both zero 1, zero against non-zero 0
    assert cosine_similarity(a, b) == pytest.approx((1 - 1 + 2 ** -0.5 + 1 + 0) / 5)
    x = np.random.default_rng(0).random((3, 2, 4, 4))
    assert cosine_similarity(x, 7 * x) == pytest.approx(1.0)                 # scale does not matter
    with pytest.raises(ValueError, match="the two batches must have the same shape"):
        cosine_similarity(np.zeros((2, 3)), np.zeros((2, 4)))


def test_shift_consistency_by_hand():
    images = np.zeros((50, 9, 9), np.uint8)
    images[:, 4, 4] = 255                                                    # one bright pixel in the middle
    where = lambda x: x.reshape(len(x), -1).argmax(axis=1)                   # noqa: E731  (its position)
    assert shift_consistency(lambda x: np.zeros(len(x)), images, 3) == 1.0
    assert shift_consistency(where, images, 0) == 1.0                        # no shift: always the same
    # two independent shifts in [−1, 1]² coincide with probability 1/9
    assert 0.0 < shift_consistency(where, np.repeat(images, 20, axis=0), 1, seed=1) < 0.25


def test_predict_and_feature_maps():
    model = models.maxpool()
    images = np.random.default_rng(0).integers(0, 256, (7, 28, 28)).astype(np.uint8)
    assert predict(model, images, batch_size=3).shape == (7,)
    maps = feature_maps(model, np.zeros((2, 1, 28, 28), np.float32))
    assert [name for name, _ in maps][:3] == ["0:Conv2d", "1:ReLU", "2:MaxPool2d"]
    assert maps[2][1].shape == (2, 6, 14, 14) and maps[-1][1].shape == (2, 10)
    assert model.training                                                    # its mode is given back


@pytest.mark.slow
def test_invariance_example_smoke_run(tmp_path):
    if fm.locate(fm.FASHION_MNIST) is None:
        if os.environ.get("CI"):
            pytest.fail("CI must install Debian's dataset-fashion-mnist (see .ci/run)")
        pytest.skip("Fashion-MNIST is not installed (apt-get install dataset-fashion-mnist)")
    out = tmp_path / "inv"
    done = subprocess.run([sys.executable, str(ROOT / "examples" / "invariance.py"), "--limit", "500",
                           "--models", "maxpool,nopool,blurpool", "--out", str(out)],
                          capture_output=True, text=True, cwd=ROOT, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    results = json.loads((out / "invariance.json").read_text())
    assert results["settings"]["test_images"] == 500
    single = results["single_layer"]
    assert {r["corruption"] for r in single} == {"random pixels", "vertical lines", "horizontal lines", "grid"}
    for row in single:                                  # a 2×2 averaging convolution is average pooling
        assert row["avg pool 2×2"] == pytest.approx(row["avg conv 2×2 s2"], abs=1e-6)
    assert len(results["shift_accuracy"]) == 5 and len(results["shift_consistency"]) == 3
    assert set(results["clean_accuracy"]) == {"maxpool", "nopool", "blurpool"}
    report = (out / "invariance.md").read_text()
    assert "## 1. One pooling layer" in report and "## 3. Shifts" in report and "Shift consistency" in report
    assert {"maxpool.npz", "nopool.npz", "blurpool.npz"} <= set(os.listdir(out / "checkpoints"))
