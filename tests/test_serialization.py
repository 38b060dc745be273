"""Saving writes atomically; loading gives back what was saved."""
import os

import numpy as np
import pytest

import minicnn as mc
from minicnn.serialization import atomic_write


def test_nested_round_trip(tmp_path):
    state = {"model": {"0.weight": np.arange(6, dtype=np.float32).reshape(2, 3)}, "epoch": 4, "name": "maxpool",
             "lr": 0.01, "done": False}
    path = tmp_path / "ckpt.npz"
    mc.save(state, path)
    back = mc.load(path)
    np.testing.assert_array_equal(back["model"]["0.weight"], state["model"]["0.weight"])
    assert back["model"]["0.weight"].dtype == np.float32
    assert (back["epoch"], back["name"], back["lr"], back["done"]) == (4, "maxpool", 0.01, False)


def test_an_interrupted_write_keeps_the_old_file(tmp_path):
    path = tmp_path / "ckpt.npz"
    mc.save({"a": np.ones(3)}, path)
    with pytest.raises(KeyboardInterrupt):
        with atomic_write(path) as f:
            f.write(b"half a file")
            raise KeyboardInterrupt
    np.testing.assert_array_equal(mc.load(path)["a"], np.ones(3))
    assert os.listdir(tmp_path) == ["ckpt.npz"]                 # no temporary file left behind


def test_save_refuses_what_it_cannot_store(tmp_path):
    with pytest.raises(TypeError, match="x must be numbers, booleans or text"):
        mc.save({"x": object()}, tmp_path / "bad.npz")
    with pytest.raises(ValueError, match="keys must be strings without '/'"):
        mc.save({"a/b": 1}, tmp_path / "bad.npz")
