"""Saving and loading state dicts as ``.npz`` or ``.safetensors`` files, and writing any file atomically.

``atomic_write(path)`` writes to a temporary file in the same folder and renames it over ``path`` only once
everything is written and flushed to disk. A run interrupted mid-write (Ctrl-C, a crash, a full disk) leaves
the previous file intact, never a half-written one.
"""
from __future__ import annotations

import contextlib
import os
import tempfile
import zipfile

import numpy as np

__all__ = ["atomic_write", "remove_stale_temporaries", "save", "load"]


#: How the temporary files of ``atomic_write`` are named: ``.<name>.<random>.tmp`` beside the final file.
TEMPORARY_SUFFIX = ".tmp"


def _umask() -> int:
    """The process's umask (read by setting it and setting it back: the only portable way)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_write(path, mode: str = "wb"):
    """Context manager yielding a file object; on success the file appears at ``path`` in one rename, with the
    permissions an ordinary ``open`` would give it (0666 less the umask; ``mkstemp`` alone would give 0600)."""
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=folder, prefix="." + os.path.basename(path) + ".", suffix=TEMPORARY_SUFFIX)
    try:
        with os.fdopen(fd, mode) as f:
            yield f
            f.flush()
            os.fchmod(f.fileno(), 0o666 & ~_umask())
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
    """Write a (possibly nested) dict of arrays, numbers and strings to ``path``, atomically: as ``.npz``, or as
    safetensors when the name ends in ``.safetensors`` (the optional ``safetensors`` package; PyTorch and other
    frameworks read it: ``safetensors.torch.load_file``). Nested keys are joined with ``/``.

    >>> import minicnn as mc, tempfile, os
    >>> path = os.path.join(tempfile.mkdtemp(), "model.npz")
    >>> mc.save({"model": mc.nn.Linear(2, 1).state_dict(), "epoch": 3}, path)
    >>> sorted(mc.load(path)["model"]), mc.load(path)["epoch"]
    (['bias', 'weight'], 3)
    """
    flat: dict = {}
    _flatten(state_dict, "", flat)
    if os.fspath(path).endswith(".safetensors"):
        safetensors = _safetensors()
        tensors = {k: np.asarray(v, order="C") for k, v in flat.items() if v.dtype.kind != "U"}
        metadata = {k: str(v) for k, v in flat.items() if v.dtype.kind == "U"}
        with atomic_write(path) as f:
            f.write(safetensors.save(tensors, metadata=metadata or None))
        return
    with atomic_write(path) as f:
        np.savez(f, **flat)


def _safetensors():
    try:
        import safetensors.numpy
    except ImportError:
        raise ImportError("saving or loading .safetensors files needs the safetensors package: "
                          "pip install \"minicnn[safetensors]\"") from None
    return safetensors.numpy


def _unflatten(items):
    """``save``'s flat (name, value) pairs back into nested dicts; one-number arrays as Python numbers."""
    out: dict = {}
    for name, value in items:
        *parents, leaf = name.split(_SEP)
        node = out
        for p in parents:
            node = node.setdefault(p, {})
        node[leaf] = value.item() if isinstance(value, np.ndarray) and value.ndim == 0 else value
    return out


def remove_stale_temporaries(folder) -> list:
    """Delete the temporary files an interrupted ``atomic_write`` left in ``folder`` (a process killed with
    ``kill -9`` mid-write cannot clean up after itself). Returns the names removed."""
    removed = []
    with contextlib.suppress(FileNotFoundError):
        for name in os.listdir(folder):
            if name.startswith(".") and name.endswith(TEMPORARY_SUFFIX):
                with contextlib.suppress(FileNotFoundError):
                    os.remove(os.path.join(folder, name))
                    removed.append(name)
    return removed


def load(path) -> dict:
    """Read what ``save`` wrote: the same nesting; one-number arrays come back as Python numbers or strings.
    A missing, empty, truncated or foreign file raises an error that names the file and what is wrong."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"mc.load: no file at {path}")
    if os.path.getsize(path) == 0:
        raise ValueError(f"mc.load: {path} is empty (a save that never finished?)")
    if path.endswith(".safetensors"):
        safetensors = _safetensors()
        try:
            from safetensors import safe_open
            with safe_open(path, framework="numpy") as f:
                items = [(k, f.get_tensor(k)) for k in f.keys()] + list((f.metadata() or {}).items())
        except Exception as error:                   # noqa: BLE001 (the library's own errors for damaged files)
            raise ValueError(f"mc.load: {path} is not a readable safetensors file ({error})") from None
        del safetensors
        return _unflatten(items)
    try:
        data = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as error:
        raise ValueError(f"mc.load: {path} is not an .npz file written by mc.save, or it is truncated "
                         f"({type(error).__name__}: {error})") from None
    if not hasattr(data, "files"):
        raise ValueError(f"mc.load: {path} holds a single array, not the dict mc.save writes (.npz)")
    items = []
    with data:
        for name in data.files:
            try:
                items.append((name, data[name]))
            except Exception as error:               # noqa: BLE001 (zip and format errors of a damaged file)
                raise ValueError(f"mc.load: {path} is truncated or damaged: entry {name!r} cannot be read "
                                 f"({error})") from None
    return _unflatten(items)
