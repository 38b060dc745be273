"""The named pyramids and the summary table, checked against numbers computed by hand."""
import numpy as np
import pytest

import minicnn as mc
from minicnn import models
from minicnn.summary import layer_table, summary

PARAMS = {"maxpool": 61_706, "avgpool": 61_706, "strided": 61_706, "blurpool": 61_706,
          "gap": 160 + 4_640 + 18_496 + 650,
          "nopool": 156 + 2_416 + (16 * 24 * 24 * 120 + 120) + 10_164 + 850}


@pytest.mark.parametrize("name", list(models.MODELS))
def test_parameter_count_and_output_shape(name):
    model = models.build(name)
    assert sum(p.numel() for p in model.parameters()) == PARAMS[name]
    with mc.no_grad():
        assert model(mc.Tensor(np.zeros((3, 1, 28, 28)))).shape == (3, 10)


def test_unknown_model_is_refused():
    with pytest.raises(ValueError, match="unknown model 'lenet'; expected one of maxpool, avgpool"):
        models.build("lenet")


def test_summary_of_maxpool_by_hand():
    rows = layer_table(models.maxpool(), (1, 28, 28))
    by_index = {r["index"]: r for r in rows}
    # receptive field r and jump j: conv5 (5, 1) → pool2 (6, 2) → conv5 (6 + 4·2 = 14, 2) → pool2 (16, 4)
    assert [(by_index[i]["receptive_field"], by_index[i]["jump"]) for i in (0, 2, 3, 5)] == [(5, 1), (6, 2), (14, 2), (16, 4)]
    assert by_index[3]["output_shape"] == (16, 10, 10)
    assert by_index[0]["macs"] == 6 * 28 * 28 * 25 and by_index[3]["macs"] == 16 * 10 * 10 * 6 * 25
    assert sum(r["params"] for r in rows) == 61_706
    assert sum(r["macs"] for r in rows) == 117_600 + 240_000 + 400 * 120 + 120 * 84 + 84 * 10
    text = str(summary(models.maxpool()))
    assert "61,706" in text and "416,520" in text and repr(summary(models.maxpool())) == text


def test_strided_receptive_field():
    rows = layer_table(models.strided(), (1, 28, 28))
    assert (rows[2]["receptive_field"], rows[2]["jump"]) == (5 + 4 * 2, 4)


def test_summary_is_a_package_level_function():
    rows = mc.summary(models.strided(), input_size=(1, 28, 28))
    assert len(rows) == 10 and "148,320" in str(rows)


def test_summary_of_any_module_and_of_a_fused_model():
    """A custom Module (not a Sequential) gets its table too, layer by layer as they run; fusing keeps the
    totals and names the fused layers."""
    class Net(mc.nn.Module):
        def __init__(self):
            super().__init__()
            self.features = mc.nn.Sequential(mc.nn.Conv2d(1, 6, 5, padding=2), mc.nn.ReLU(), mc.nn.MaxPool2d(2))
            self.head = mc.nn.Linear(6 * 14 * 14, 10)

        def forward(self, x):
            return self.head(self.features(x).flatten(1))

    rows = mc.summary(Net(), input_size=(4, 1, 28, 28))
    assert [r["index"] for r in rows] == ["features.0", "features.1", "features.2", "head"]
    assert rows[0]["output_shape"] == (6, 28, 28) and rows[-1]["params"] == 6 * 14 * 14 * 10 + 10
    fused = mc.summary(mc.nn.fuse(models.maxpool()))
    assert [r["layer"] for r in fused][:2] == ["Conv2dReLU", "MaxPool2d"]
    assert sum(r["params"] for r in fused) == 61_706 and sum(r["macs"] for r in fused) == 416_520
