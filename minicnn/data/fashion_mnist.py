"""Fashion-MNIST: find the four official IDX files, verify them, download them if need be, and parse them.

Fashion-MNIST (Xiao, Rasul & Vollgraf, 2017) has 60,000 training and 10,000 test images of clothing, 28 × 28
grey levels, in 10 classes. It ships as four gzip-compressed IDX files. An IDX file is a tiny header and then
the raw numbers::

    bytes 0-1   0x00 0x00           (magic: always zero)
    byte  2     0x08                (the numbers' type: 0x08 = unsigned byte)
    byte  3     ndim                (3 for images, 1 for labels)
    then ndim big-endian uint32     (the size of each dimension: 60000, 28, 28)
    then prod(dims) bytes           (the numbers, row-major)

Where ``load_fashion_mnist`` looks: a folder the user names (the ``data_dir`` argument, else the
``MINICNN_DATA`` environment variable) is the only one used: if a file is missing there, the error says which,
and no other copy is taken in its place. With no folder named, it looks in ``data/fashion-mnist/`` under the
current folder, then in ``/usr/share/datasets/fashion-mnist/`` (Debian's package ``dataset-fashion-mnist``),
and failing both downloads the files into ``data/fashion-mnist/``. ``python -m minicnn.data`` shows the
search and verifies what it finds.

Every file is checked against the MD5 of its *decompressed* content before use. Debian re-compressed the
``.gz`` files, so their own checksums differ from the official ones while the content is the same: checking
the content serves both sources. A download goes to a temporary name and is renamed only once complete and
verified.
"""
from __future__ import annotations

import gzip
import hashlib
import os
import tempfile
import urllib.error
import urllib.request
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

__all__ = ["IdxFile", "FASHION_MNIST", "DataNotFoundError", "CorruptFileError", "parse_idx", "read_idx_file",
           "named_dir", "candidate_dirs", "missing_files", "locate", "searched", "download", "load_fashion_mnist",
           "CLASSES", "DOWNLOAD_URL", "DEBIAN_DIR"]

CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot")
DOWNLOAD_URL = "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"
DEBIAN_DIR = "/usr/share/datasets/fashion-mnist"


@dataclass(frozen=True)
class IdxFile:
    """One gzip-compressed IDX file: its name, and the MD5 and size in bytes of its decompressed content."""
    filename: str
    md5: str
    size: int


FASHION_MNIST = {
    "x_train": IdxFile("train-images-idx3-ubyte.gz", "f4a8712d7a061bf5bd6d2ca38dc4d50a", 47_040_016),
    "y_train": IdxFile("train-labels-idx1-ubyte.gz", "9018921c3c673c538a1fc5bad174d6f9", 60_008),
    "x_test": IdxFile("t10k-images-idx3-ubyte.gz", "8181f5470baa50b63fa0f6fddb340f0a", 7_840_016),
    "y_test": IdxFile("t10k-labels-idx1-ubyte.gz", "15d484375f8d13e6eb1aabb0c3f46965", 10_008),
}


class DataNotFoundError(FileNotFoundError):
    """No copy of the data anywhere, and no download possible. The message lists the ways to get it."""


class CorruptFileError(ValueError):
    """A data file is truncated, not gzip, not IDX, or its content's checksum does not match."""


def parse_idx(raw: bytes, name: str = "IDX data") -> np.ndarray:
    """Parse decompressed IDX bytes into a uint8 array of the shape its header gives (see module docstring)."""
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0:
        raise CorruptFileError(f"{name}: not an IDX file (expected magic bytes 00 00, got {raw[:2].hex(' ') or 'nothing'})")
    if raw[2] != 0x08:
        raise CorruptFileError(f"{name}: expected unsigned-byte data (type code 0x08), got type code 0x{raw[2]:02x}")
    ndim = raw[3]
    header = 4 + 4 * ndim
    if ndim == 0 or len(raw) < header:
        raise CorruptFileError(f"{name}: truncated IDX header ({len(raw)} bytes for {ndim} dimensions)")
    dims = tuple(int(d) for d in np.frombuffer(raw, dtype=">u4", count=ndim, offset=4))
    expected = header + int(np.prod(dims))
    if len(raw) != expected:
        raise CorruptFileError(f"{name}: the header announces shape {dims} ({expected} bytes in all), "
                               f"but the file holds {len(raw)} bytes")
    return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(dims).copy()


def read_idx_file(path, spec: IdxFile) -> np.ndarray:
    """Decompress ``path``, check its content against ``spec`` (size and MD5), and parse it."""
    path = Path(path)
    try:
        with gzip.open(path, "rb") as f:
            raw = f.read()
    except (OSError, EOFError, zlib.error) as error:
        raise CorruptFileError(f"{path}: cannot decompress ({error}); the file is truncated or not gzip. "
                               "Delete it and get it again.") from None
    digest = hashlib.md5(raw).hexdigest()
    if len(raw) != spec.size or digest != spec.md5:
        raise CorruptFileError(f"{path}: checksum mismatch: expected {spec.size} bytes with MD5 {spec.md5}, "
                               f"got {len(raw)} bytes with MD5 {digest}. The file is corrupt or not the official "
                               "one; it was not used. Delete it and get it again.")
    return parse_idx(raw, str(path))


def named_dir(data_dir=None) -> Path | None:
    """The folder the user named: ``data_dir``, else ``$MINICNN_DATA``, else None."""
    named = data_dir or os.environ.get("MINICNN_DATA")
    return Path(named) if named else None


def candidate_dirs(data_dir=None) -> list[Path]:
    """The folders searched, in order (see module docstring): the named folder alone, when there is one."""
    named = named_dir(data_dir)
    return [named] if named is not None else [Path("data") / "fashion-mnist", Path(DEBIAN_DIR)]


def missing_files(folder, files: dict) -> list[str]:
    """The file names of ``files`` that ``folder`` lacks."""
    return [spec.filename for spec in files.values() if not (Path(folder) / spec.filename).is_file()]


def locate(files: dict, data_dir=None) -> Path | None:
    """The first candidate folder that holds every file of ``files``, or None."""
    for folder in candidate_dirs(data_dir):
        if not missing_files(folder, files):
            return folder
    return None


def searched(files: dict, data_dir=None) -> str:
    """Every folder searched, one line each, with the files it lacks."""
    lines = []
    for folder in candidate_dirs(data_dir):
        missing = missing_files(folder, files)
        state = ("does not exist" if not folder.is_dir() else "lacks " + ", ".join(missing) if missing
                 else "has every file")
        lines.append(f"    {folder}: {state}")
    return "\n".join(lines)


def download(files: dict, dest, base_url: str | None = None, progress: bool = True) -> Path:
    """Download every file of ``files`` from ``base_url`` into ``dest``, each verified before it is renamed into
    place. Raises ``urllib.error.URLError`` (offline) or ``CorruptFileError`` (a bad download, deleted)."""
    from tqdm.auto import tqdm

    base_url = DOWNLOAD_URL if base_url is None else base_url
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    for stale in dest.glob(".*.part"):                 # left by a download that was killed: never renamed, never used
        stale.unlink(missing_ok=True)
    for spec in files.values():
        target = dest / spec.filename
        if target.is_file():
            continue
        fd, tmp = tempfile.mkstemp(dir=dest, prefix="." + spec.filename + ".", suffix=".part")
        try:
            with os.fdopen(fd, "wb") as out, urllib.request.urlopen(base_url + spec.filename, timeout=30) as response:
                total = int(response.headers.get("Content-Length") or 0) or None
                with tqdm(total=total, unit="B", unit_scale=True, desc=spec.filename, disable=not progress) as bar:
                    while chunk := response.read(1 << 16):
                        out.write(chunk)
                        bar.update(len(chunk))
            read_idx_file(tmp, spec)                     # verify before it takes the real name
            os.replace(tmp, target)
        finally:
            if os.path.exists(tmp):
                os.remove(tmp)
    return dest


def _not_found_message(reason: str, files: dict) -> str:
    return (f"Fashion-MNIST was not found, and downloading it failed ({reason}).\nSearched:\n{searched(files)}\n"
            "Get it in one of three ways:\n"
            "  1. Debian/Ubuntu: sudo apt-get install dataset-fashion-mnist   (installs it in "
            f"{DEBIAN_DIR})\n"
            "  2. put the four .gz files in a folder and pass it: --data-dir FOLDER (or set MINICNN_DATA=FOLDER)\n"
            f"  3. download them from {DOWNLOAD_URL} into data/fashion-mnist/ (what minicnn tries when online)")


def load_fashion_mnist(data_dir=None, download_missing: bool = True, progress: bool = True, files: dict | None = None,
                       base_url: str | None = None):
    """Load Fashion-MNIST.

    Returns:
        x_train (60000, 28, 28) uint8, y_train (60000,) int64, x_test (10000, 28, 28) uint8, y_test (10000,) int64.
    Raises:
        DataNotFoundError: no copy found and the download failed (the message says how to get the data).
        CorruptFileError: a file is truncated or its checksum does not match (the message names it).
    """
    files = FASHION_MNIST if files is None else files
    folder = locate(files, data_dir)
    named = named_dir(data_dir)
    if folder is None and named is not None:
        source = "data_dir" if data_dir else "MINICNN_DATA"
        state = "does not exist" if not named.is_dir() else "lacks " + ", ".join(missing_files(named, files))
        raise DataNotFoundError(f"Fashion-MNIST: the folder named by {source}, {named}, {state}. A folder you name "
                                "is the only one used: put the four files there "
                                f"({', '.join(spec.filename for spec in files.values())}), or name another.")
    if folder is None:
        if not download_missing:
            raise DataNotFoundError(_not_found_message("downloading is switched off", files))
        try:
            folder = download(files, Path("data") / "fashion-mnist", base_url, progress)
        except (urllib.error.URLError, OSError) as error:
            raise DataNotFoundError(_not_found_message(str(getattr(error, "reason", error)), files)) from None
    arrays = {key: read_idx_file(folder / spec.filename, spec) for key, spec in files.items()}
    for key in ("y_train", "y_test"):
        arrays[key] = arrays[key].astype(np.int64)
    for split in ("train", "test"):
        if len(arrays[f"x_{split}"]) != len(arrays[f"y_{split}"]):
            raise CorruptFileError(f"{folder}: {len(arrays[f'x_{split}'])} {split} images but "
                                   f"{len(arrays[f'y_{split}'])} labels")
    return arrays["x_train"], arrays["y_train"], arrays["x_test"], arrays["y_test"]
