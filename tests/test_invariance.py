"""The invariance metrics on cases whose answers are known by hand, and a smoke run of examples/invariance.py."""
import importlib.util
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


def _lab():
    """examples/invariance.py as a module (its report functions are tested on numbers chosen here)."""
    spec = importlib.util.spec_from_file_location("invariance_lab", ROOT / "examples" / "invariance.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _accuracy_results(lab, drop_max, drop_avg, spread):
    """Results of two models over three seeds: clean 0.9, every zero corruption lowering maxpool by ``drop_max``
    and avgpool by ``drop_avg``, the seeds ``spread`` apart."""
    seeds = [-spread, 0.0, spread]
    rows = []
    for kind, (_, strengths) in lab.CORRUPTIONS.items():
        for fill in lab.FILLS:
            for strength in strengths:
                rows.append({"corruption": kind, "fill": fill, "strength": strength,
                             "maxpool": [0.9 - drop_max + e for e in seeds], "avgpool": [0.9 - drop_avg + e for e in seeds]})
    return {"clean_accuracy": {"maxpool": [0.9] * 3, "avgpool": [0.9] * 3}, "corrupted_accuracy": rows}


def test_the_lab_says_what_its_numbers_show_about_max_pooling_and_masks():
    lab = _lab()
    names, seeds = ["maxpool", "avgpool"], [0, 1, 2]
    text = lab.report_accuracy(_accuracy_results(lab, 0.20, 0.10, 0.01), names, seeds)
    assert "loses 10.0 points more" in text and "beyond the seeds' spread" in text and "the opposite of what section 1" in text
    text = lab.report_accuracy(_accuracy_results(lab, 0.10, 0.20, 0.01), names, seeds)
    assert "loses 10.0 points less" in text and "as section 1 and the pooling texts suggest" in text
    text = lab.report_accuracy(_accuracy_results(lab, 0.12, 0.10, 0.05), names, seeds)
    assert "lose the same within the seeds' spread" in text
    assert "avgpool 10.0 ± 5.0, maxpool 12.0 ± 5.0 points" in text           # each fall with its spread, least first
    assert "smaller* number is a *stronger* corruption" in text               # what "amount" means
    assert "every 2nd column" in text and "30% of pixels" in text


def test_the_lab_says_whether_pooling_stops_a_corruption_from_propagating():
    lab = _lab()
    seeds = [0, 1, 2]

    def results(last):                      # model → the last map's similarity per seed
        stages = lambda v: [[("0:Conv2d", 0.5), ("2:MaxPool2d", 0.6), ("5:MaxPool2d", v)]]   # noqa: E731
        rows = [{"corruption": "grid", "fill": "zero", "strength": 3, "model": n,
                 "stages": [stages(v)[0] for v in values]} for n, values in last.items()]
        return {"layerwise_similarity": rows}
    text = lab.report_layers(results({"maxpool": [0.9, 0.91, 0.92], "strided": [0.6, 0.61, 0.62]}), ["maxpool", "strided"], seeds)
    assert "the claim that pooling stops a corruption from propagating holds" in text
    text = lab.report_layers(results({"maxpool": [0.6, 0.61, 0.62], "strided": [0.9, 0.91, 0.92]}), ["maxpool", "strided"], seeds)
    assert "does not hold here: strided, with no pooling, keeps 0.910 ± 0.010, more than maxpool" in text
    text = lab.report_layers(results({"maxpool": [0.7, 0.8, 0.9], "strided": [0.65, 0.75, 0.85]}), ["maxpool", "strided"], seeds)
    assert "within the seeds' spread" in text and "is not shown here" in text


def test_the_lab_says_how_far_shift_invariance_goes():
    lab = _lab()
    names, seeds = ["maxpool", "strided"], [0, 1, 2]
    lost = {0: 0.0, 1: 0.03, 2: 0.08, 3: 0.2, 4: 0.4}                       # accuracy lost at each shift
    results = {"shift_accuracy": [{"shift": k, "maxpool": [0.9 - v] * 3, "strided": [0.88 - v] * 3} for k, v in lost.items()],
               "shift_consistency": [{"max_shift": s, "maxpool": [0.8, 0.81, 0.82], "strided": [0.6, 0.61, 0.62]}
                                     for s in lab.CONSISTENCY_SHIFTS]}
    text = lab.report_shifts(results, names, seeds)
    assert "A shift of one pixel costs 3.0–3.0 points of accuracy, 4 pixels 40.0–40.0" in text
    assert "within 5 points of its clean accuracy up to 1 pixel," in text
    assert "Every network with pooling is more consistent than every network without" in text


def test_the_lab_reuses_only_runs_trained_with_its_recipe(tmp_path, capsys):
    lab = _lab()
    same, other = tmp_path / "same", tmp_path / "other"
    for folder, epochs, seed in ((same, 5, 2), (other, 20, 0)):
        folder.mkdir()
        (folder / "config.json").write_text(json.dumps({**lab.RECIPE, "epochs": epochs, "seed": seed, "limit": None}))
    assert lab.reusable_runs([str(same), str(other)], None) == {2: str(same)}
    assert "not the recipe of this lab (epochs differ)" in capsys.readouterr().out
    with pytest.raises(SystemExit, match="cannot read its settings"):
        lab.reusable_runs([str(tmp_path / "missing")], None)


@pytest.mark.slow
def test_invariance_example_smoke_run(tmp_path):
    if fm.locate(fm.FASHION_MNIST) is None:
        if os.environ.get("CI"):
            pytest.fail("CI must install Debian's dataset-fashion-mnist (see .ci/run)")
        pytest.skip("Fashion-MNIST is not installed (apt-get install dataset-fashion-mnist)")
    out = tmp_path / "inv"
    done = subprocess.run([sys.executable, str(ROOT / "examples" / "invariance.py"), "--limit", "500",
                           "--seeds", "0,1", "--models", "maxpool,nopool,blurpool", "--out", str(out)],
                          capture_output=True, text=True, cwd=ROOT, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    results = json.loads((out / "invariance.json").read_text())
    assert results["settings"]["test_images"] == 500 and results["settings"]["seeds"] == [0, 1]
    single = results["single_layer"]
    assert {r["corruption"] for r in single} == {"random pixels", "vertical lines", "horizontal lines", "grid"}
    for row in single:                                  # a 2×2 averaging convolution is average pooling
        assert row["avg pool 2×2"] == pytest.approx(row["avg conv 2×2 s2"], abs=1e-6)
    assert len(results["shift_accuracy"]) == 5 and len(results["shift_consistency"]) == 3
    assert {n: len(v) for n, v in results["clean_accuracy"].items()} == {"maxpool": 2, "nopool": 2, "blurpool": 2}
    report = (out / "invariance.md").read_text()
    sections = ["## 1. One pooling layer", "## 2. Trained models", "## 2b. Layer by layer", "## 3. Shifts"]
    assert [report.index(s) for s in sections] == sorted(report.index(s) for s in sections)
    # the terminal shows the report's sections in the report's order, each as it is finished
    printed = [done.stdout.index(s) for s in sections]
    assert printed == sorted(printed)
    assert " ± " in report and "Shift consistency" in report
    for seed in (0, 1):
        assert {"maxpool.npz", "nopool.npz", "blurpool.npz"} <= set(os.listdir(out / "checkpoints" / "limit500" / f"seed{seed}"))
