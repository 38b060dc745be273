"""Saving and loading state dicts as ``.npz`` files, and writing any file atomically.

``atomic_write(path)`` writes to a temporary file in the same folder and renames it over ``path`` only once
everything is written and flushed to disk. A run interrupted mid-write (Ctrl-C, a crash, a full disk) leaves
the previous file intact, never a half-written one.
"""
from __future__ import annotations

import contextlib
import os
import tempfile

import numpy as np

__all__ = ["atomic_write", "save", "load"]


@contextlib.contextmanager
def atomic_write(path, mode: str = "wb"):
    """Context manager yielding a file object; on success the file appears at ``path`` in one rename."""
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=folder, prefix="." + os.path.basename(path) + ".", suffix=".tmp")
    try:
        with os.fdopen(fd, mode) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.remove(tmp)
        raise


_SEP = "/"


def _flatten(obj, prefix, out):
    for key, value in obj.items():
        if not isinstance(key, str) or _SEP in key:
            raise ValueError(f"save: keys must be strings without {_SEP!r}, got {key!r}")
        name = prefix + key
        if isinstance(value, dict):
            _flatten(value, name + _SEP, out)
        else:
            array = np.asarray(value.data if hasattr(value, "data") and not isinstance(value, np.ndarray) else value)
            if array.dtype.kind not in "biufU":
                raise TypeError(f"save: {name} must be numbers, booleans or text, got {type(value).__name__}")
            out[name] = array


def save(state_dict: dict, path) -> None:
    """Write a (possibly nested) dict of arrays, numbers and strings to ``path`` as ``.npz``, atomically.

    >>> import minicnn as mc, tempfile, os
    >>> path = os.path.join(tempfile.mkdtemp(), "model.npz")
    >>> mc.save({"model": mc.nn.Linear(2, 1).state_dict(), "epoch": 3}, path)
    >>> sorted(mc.load(path)["model"]), mc.load(path)["epoch"]
    (['bias', 'weight'], 3)
    """
    flat: dict = {}
    _flatten(state_dict, "", flat)
    with atomic_write(path) as f:
        np.savez(f, **flat)


def load(path) -> dict:
    """Read what ``save`` wrote: the same nesting; one-number arrays come back as Python numbers or strings."""
    out: dict = {}
    with np.load(os.fspath(path), allow_pickle=False) as data:
        for name in data.files:
            value = data[name]
            *parents, leaf = name.split(_SEP)
            node = out
            for p in parents:
                node = node.setdefault(p, {})
            node[leaf] = value.item() if value.ndim == 0 else value
    return out
