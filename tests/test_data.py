"""Fashion-MNIST files and batches, on small IDX files the tests write themselves."""
import gzip
import hashlib
import os
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from minicnn.data import DataLoader, normalize
from minicnn.data.loader import FASHION_MNIST_MEAN, FASHION_MNIST_STD
from minicnn.data.transforms import random_shift_flip
from minicnn.data import fashion_mnist as fm


def idx_bytes(array: np.ndarray) -> bytes:
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(struct.pack(">I", d) for d in array.shape)
    return header + array.astype(np.uint8).tobytes()


def write_dataset(folder, seed=0, n_train=12, n_test=5):
    """Four small gzip IDX files in ``folder``; returns (files table with their checksums, arrays)."""
    rng = np.random.default_rng(seed)
    arrays = {"x_train": rng.integers(0, 256, (n_train, 28, 28)), "y_train": rng.integers(0, 10, n_train),
              "x_test": rng.integers(0, 256, (n_test, 28, 28)), "y_test": rng.integers(0, 10, n_test)}
    folder.mkdir(parents=True, exist_ok=True)
    files = {}
    for key, array in arrays.items():
        raw = idx_bytes(array)
        name = f"{key}.gz"
        with gzip.open(folder / name, "wb") as f:
            f.write(raw)
        files[key] = fm.IdxFile(name, hashlib.md5(raw).hexdigest(), len(raw))
    return files, arrays


def test_parse_idx_reads_header_and_data():
    a = np.arange(24, dtype=np.uint8).reshape(2, 3, 4)
    np.testing.assert_array_equal(fm.parse_idx(idx_bytes(a)), a)


@pytest.mark.parametrize("raw, message", [
    (b"\x01\x00\x08\x01" + struct.pack(">I", 1) + b"\x00", r"not an IDX file \(expected magic bytes 00 00, got 01 00\)"),
    (b"\x00\x00\x0d\x01" + struct.pack(">I", 1) + b"\x00", r"expected unsigned-byte data \(type code 0x08\), got type code 0x0d"),
    (b"\x00\x00\x08\x03\x00", r"truncated IDX header"),
    (b"\x00\x00\x08\x01" + struct.pack(">I", 5) + b"\x00\x00", r"announces shape \(5,\) \(13 bytes in all\), but the file holds 10 bytes"),
])
def test_parse_idx_refuses_bad_files(raw, message):
    with pytest.raises(fm.CorruptFileError, match=message):
        fm.parse_idx(raw, "test.idx")


def test_load_returns_the_arrays(tmp_path):
    files, arrays = write_dataset(tmp_path / "d")
    x_train, y_train, x_test, y_test = fm.load_fashion_mnist(tmp_path / "d", files=files, download_missing=False)
    np.testing.assert_array_equal(x_train, arrays["x_train"])
    assert x_train.dtype == np.uint8 and y_train.dtype == np.int64 and x_test.shape == (5, 28, 28)
    np.testing.assert_array_equal(y_test, arrays["y_test"])


def test_checksum_mismatch_names_the_file(tmp_path):
    files, _ = write_dataset(tmp_path / "d")
    with gzip.open(tmp_path / "d" / "y_train.gz", "wb") as f:              # same size, other content
        f.write(idx_bytes(np.full(12, 3)))
    with pytest.raises(fm.CorruptFileError, match=r"y_train.gz: checksum mismatch: expected 20 bytes with MD5 \w+, got 20 bytes with MD5 \w+"):
        fm.load_fashion_mnist(tmp_path / "d", files=files, download_missing=False)


def test_truncated_file_is_refused(tmp_path):
    files, _ = write_dataset(tmp_path / "d")
    path = tmp_path / "d" / "x_train.gz"
    path.write_bytes(path.read_bytes()[:200])
    with pytest.raises(fm.CorruptFileError, match=r"x_train.gz: cannot decompress .*truncated or not gzip"):
        fm.load_fashion_mnist(tmp_path / "d", files=files, download_missing=False)


def test_search_order(tmp_path, monkeypatch):
    """A named folder (data_dir, else $MINICNN_DATA) alone; else ./data/fashion-mnist, then Debian's folder."""
    monkeypatch.chdir(tmp_path)
    places = {"arg": tmp_path / "arg", "env": tmp_path / "env", "cwd": tmp_path / "data" / "fashion-mnist",
              "debian": tmp_path / "debian"}
    tables = {}
    for seed, (name, folder) in enumerate(places.items()):
        tables[name], _ = write_dataset(folder, seed=seed)
    files = {k: fm.IdxFile(v.filename, "", 0) for k, v in tables["arg"].items()}    # names only, for locate()
    monkeypatch.setenv("MINICNN_DATA", str(places["env"]))
    monkeypatch.setattr(fm, "DEBIAN_DIR", str(places["debian"]))
    assert fm.locate(files, places["arg"]) == places["arg"]
    assert fm.locate(files) == places["env"]
    monkeypatch.delenv("MINICNN_DATA")
    assert fm.locate(files).resolve() == places["cwd"]
    for f in places["cwd"].iterdir():
        f.unlink()
    assert fm.locate(files) == places["debian"]
    x = fm.load_fashion_mnist(files=tables["debian"], download_missing=False)[0]
    np.testing.assert_array_equal(x, write_dataset(tmp_path / "again", seed=3)[1]["x_train"])


@pytest.mark.parametrize("how", ["data_dir", "MINICNN_DATA"])
def test_a_named_folder_is_the_only_one_used(tmp_path, monkeypatch, how):
    """A misspelled or incomplete folder the user names is an error naming it and what it lacks, even when a
    complete copy lies elsewhere (here in ./data/fashion-mnist and Debian's folder)."""
    monkeypatch.chdir(tmp_path)
    files, _ = write_dataset(tmp_path / "data" / "fashion-mnist")
    write_dataset(tmp_path / "debian")
    monkeypatch.setattr(fm, "DEBIAN_DIR", str(tmp_path / "debian"))
    incomplete, _ = write_dataset(tmp_path / "mine")
    (tmp_path / "mine" / "y_test.gz").unlink()
    for folder, expected in [(tmp_path / "mine", "lacks y_test.gz"), (tmp_path / "mien", "does not exist")]:
        if how == "data_dir":
            monkeypatch.delenv("MINICNN_DATA", raising=False)
            call = lambda: fm.load_fashion_mnist(folder, files=files, progress=False)          # noqa: E731
        else:
            monkeypatch.setenv("MINICNN_DATA", str(folder))
            call = lambda: fm.load_fashion_mnist(files=files, progress=False)                  # noqa: E731
        with pytest.raises(fm.DataNotFoundError, match=f"{how}, {folder}, {expected}"):
            call()


def check_output(capsys, *args, **kwargs):
    from minicnn.data.__main__ import check
    status = check(*args, **kwargs)
    return status, capsys.readouterr().out


def test_check_data_verifies_a_good_folder(tmp_path, capsys):
    files, _ = write_dataset(tmp_path / "d")
    status, out = check_output(capsys, tmp_path / "d", files=files)
    assert status == 0 and f"Using {tmp_path / 'd'}" in out and out.count("  ok  ") == 4
    assert "All files verified." in out


def test_check_data_names_a_missing_file(tmp_path, capsys, monkeypatch):
    files, _ = write_dataset(tmp_path / "d")
    (tmp_path / "d" / "x_test.gz").unlink()
    status, out = check_output(capsys, tmp_path / "d", files=files)
    assert status == 1 and f"{tmp_path / 'd'}: lacks x_test.gz" in out and "Using" not in out


def test_check_data_refuses_a_corrupt_file_by_name(tmp_path, capsys):
    files, _ = write_dataset(tmp_path / "d")
    path = tmp_path / "d" / "y_train.gz"
    with gzip.open(path, "rb") as f:
        raw = bytearray(f.read())
    raw[-1] ^= 1                                                    # one label changed: the MD5 no longer matches
    with gzip.open(path, "wb") as f:
        f.write(bytes(raw))
    status, out = check_output(capsys, tmp_path / "d", files=files)
    assert status == 1 and "CORRUPT" in out and f"{path}: checksum mismatch" in out and out.count("  ok  ") == 3


def test_check_data_fetch_downloads_into_data_fashion_mnist(tmp_path, capsys, monkeypatch):
    files, _ = write_dataset(tmp_path / "server")
    (tmp_path / "work").mkdir()
    monkeypatch.chdir(tmp_path / "work")
    monkeypatch.delenv("MINICNN_DATA", raising=False)
    monkeypatch.setattr(fm, "DEBIAN_DIR", str(tmp_path / "nowhere"))
    status, out = check_output(capsys, files=files, fetch=True, base_url=(tmp_path / "server").as_uri() + "/")
    assert status == 0 and "Using data/fashion-mnist" in out
    assert sorted(os.listdir("data/fashion-mnist")) == sorted(spec.filename for spec in files.values())


def test_data_readme_lists_the_checksums_minicnn_verifies():
    readme = (Path(__file__).resolve().parents[1] / "data" / "README.md").read_text()
    for spec in fm.FASHION_MNIST.values():
        assert f"| `{spec.filename}` | {spec.size:,} | `{spec.md5}` |" in readme, spec.filename


@pytest.mark.slow
def test_python_m_minicnn_data_reports_the_copy_on_this_machine():
    if fm.locate(fm.FASHION_MNIST) is None:
        pytest.skip("Fashion-MNIST is not installed (apt-get install dataset-fashion-mnist)")
    done = subprocess.run([sys.executable, "-m", "minicnn.data"], capture_output=True, text=True,
                          cwd=Path(__file__).resolve().parents[1], env={**os.environ, "MINICNN_DATA": ""})
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"Using {fm.locate(fm.FASHION_MNIST)}" in done.stdout and done.stdout.count("  ok  ") == 4


def test_download_verifies_then_renames(tmp_path, monkeypatch):
    files, arrays = write_dataset(tmp_path / "server")
    (tmp_path / "work").mkdir()
    monkeypatch.chdir(tmp_path / "work")
    monkeypatch.delenv("MINICNN_DATA", raising=False)
    monkeypatch.setattr(fm, "DEBIAN_DIR", str(tmp_path / "nowhere"))
    x_train = fm.load_fashion_mnist(files=files, base_url=(tmp_path / "server").as_uri() + "/", progress=False)[0]
    np.testing.assert_array_equal(x_train, arrays["x_train"])
    assert sorted(os.listdir(tmp_path / "work" / "data" / "fashion-mnist")) == sorted(spec.filename for spec in files.values())


def test_a_killed_download_leaves_nothing_the_next_one_uses(tmp_path, monkeypatch):
    files, arrays = write_dataset(tmp_path / "server")
    target = tmp_path / "work" / "data" / "fashion-mnist"
    target.mkdir(parents=True)
    (target / ".x_train.gz.abc.part").write_bytes(b"half a download")
    fm.download(files, target, (tmp_path / "server").as_uri() + "/", progress=False)
    assert sorted(os.listdir(target)) == sorted(spec.filename for spec in files.values())


def test_a_bad_download_leaves_no_file(tmp_path, monkeypatch):
    files, _ = write_dataset(tmp_path / "server")
    (tmp_path / "server" / "x_test.gz").write_bytes(b"not gzip at all")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(fm, "DEBIAN_DIR", str(tmp_path / "nowhere"))
    monkeypatch.delenv("MINICNN_DATA", raising=False)
    with pytest.raises(fm.CorruptFileError, match="x_test.gz"):
        fm.load_fashion_mnist(files=files, base_url=(tmp_path / "server").as_uri() + "/", progress=False)
    left = os.listdir(tmp_path / "data" / "fashion-mnist")
    assert "x_test.gz" not in left and not any(name.endswith(".part") for name in left)


def test_offline_with_no_copy_lists_three_ways(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(fm, "DEBIAN_DIR", str(tmp_path / "nowhere"))
    monkeypatch.delenv("MINICNN_DATA", raising=False)
    with pytest.raises(fm.DataNotFoundError) as error:
        fm.load_fashion_mnist(base_url=(tmp_path / "offline").as_uri() + "/", progress=False)
    text = str(error.value)
    assert "apt-get install dataset-fashion-mnist" in text and "--data-dir" in text and fm.DOWNLOAD_URL in text


# ----- DataLoader -------------------------------------------------------------------------------------------
def loader_data(n=10):
    x = np.arange(n * 28 * 28, dtype=np.int64).reshape(n, 28, 28) % 256
    return x.astype(np.uint8), np.arange(n)


def test_batches_shapes_dtypes_and_normalisation():
    x, y = loader_data()
    batches = list(DataLoader(x, y, batch_size=4))
    assert [b[0].shape for b in batches] == [(4, 1, 28, 28), (4, 1, 28, 28), (2, 1, 28, 28)]
    assert batches[0][0].dtype == np.float32 and batches[0][1].dtype == np.int64
    expected = (x[:4, None].astype(np.float64) / 255 - 0.2860) / 0.3530
    np.testing.assert_allclose(batches[0][0], expected, rtol=1e-5, atol=1e-5)
    assert normalize(np.full((1, 28, 28), 255, np.uint8)).max() == pytest.approx((1 - 0.2860) / 0.3530, rel=1e-6)


def test_every_sample_once_per_epoch_and_determinism():
    x, y = loader_data(23)
    loader = DataLoader(x, y, batch_size=5, shuffle=True, seed=3)
    epoch0 = np.concatenate([b for _, b in loader])
    epoch1 = np.concatenate([b for _, b in loader])
    assert sorted(epoch0) == list(range(23)) and sorted(epoch1) == list(range(23))
    assert not np.array_equal(epoch0, epoch1)                      # a new order each epoch
    again = DataLoader(x, y, batch_size=5, shuffle=True, seed=3)
    np.testing.assert_array_equal(np.concatenate([b for _, b in again]), epoch0)
    np.testing.assert_array_equal(np.concatenate([b for _, b in again.batches(1)]), epoch1)
    other = DataLoader(x, y, batch_size=5, shuffle=True, seed=4)
    assert not np.array_equal(np.concatenate([b for _, b in other]), epoch0)
    resumed = np.concatenate([b for _, b in again.batches(1, start=2)])
    np.testing.assert_array_equal(resumed, epoch1[10:])


def test_drop_last():
    x, y = loader_data(10)
    assert len(DataLoader(x, y, 4)) == 3 and len(DataLoader(x, y, 4, drop_last=True)) == 2
    assert [len(b) for _, b in DataLoader(x, y, 4, drop_last=True)] == [4, 4]


def test_loader_refuses_bad_arguments():
    x, y = loader_data(10)
    with pytest.raises(ValueError, match="x and y must have the same length, got 10 images and 9 labels"):
        DataLoader(x, y[:9], 4)
    with pytest.raises(ValueError, match="batch_size must be a positive int, got 0"):
        DataLoader(x, y, 0)


def labelled_images(n=203, seed=0):
    """Images that carry their own label and index: image k is filled with 20·label + 7, and its index is
    written into its top-left corner (row 0, columns 0 and 1, as two bytes)."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 10, n)
    x = np.broadcast_to((20 * y + 7).astype(np.uint8)[:, None, None], (n, 28, 28)).copy()
    x[:, 0, 0], x[:, 0, 1] = np.arange(n) // 256, np.arange(n) % 256
    return x, y


def denormalize(batch):
    """A batch (B, 1, H, W) back to the uint8 values it was made from."""
    return np.rint((batch[:, 0] * FASHION_MNIST_STD + FASHION_MNIST_MEAN) * 255).astype(np.int64)


@pytest.mark.parametrize("batch_size, drop_last", [(16, False), (50, True), (203, False)])
def test_shuffled_batches_keep_every_image_with_its_label(batch_size, drop_last):
    x, y = labelled_images()
    loader = DataLoader(x, y, batch_size, shuffle=True, seed=5, drop_last=drop_last)
    for epoch in range(3):
        seen = []
        for images, labels in loader:
            pixels = denormalize(images)
            index = pixels[:, 0, 0] * 256 + pixels[:, 0, 1]
            np.testing.assert_array_equal(labels, y[index], err_msg="a label travelled without its image")
            np.testing.assert_array_equal(pixels[:, 5, 5], 20 * labels + 7)
            seen.extend(index.tolist())
        expected = len(x) // batch_size * batch_size if drop_last else len(x)
        assert len(seen) == len(set(seen)) == expected, "an image came twice or not at all in one epoch"
        assert seen != sorted(seen), "shuffle=True gave the images in order"


def test_augmented_batches_keep_every_image_with_its_label():
    """Shifts and flips move an image's pixels, never its label: the image's brightest value names it."""
    x, y = labelled_images()
    x[:, 0, :2] = 0                                   # no index here: shifts would move it
    loader = DataLoader(x, y, 32, shuffle=True, seed=2, augment=random_shift_flip)
    for images, labels in loader:
        np.testing.assert_array_equal(denormalize(images).max(axis=(1, 2)), 20 * labels + 7)
