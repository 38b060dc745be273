"""``python -m minicnn.data``: where Fashion-MNIST is, and whether every file is the official one.

    python -m minicnn.data                     # search (data/fashion-mnist, then Debian's folder), verify
    python -m minicnn.data --data-dir FOLDER   # that folder alone (as MINICNN_DATA does)
    python -m minicnn.data --fetch             # download what is missing into data/fashion-mnist/, then verify

It prints every folder searched and what it holds, then checks each of the four files of the folder used
against the size and MD5 of its decompressed content. Exit status: 0 when all four are present and verified,
1 otherwise, with the missing or corrupt file named.
"""
from __future__ import annotations

import argparse
import functools
import sys
import urllib.error
from pathlib import Path

from . import fashion_mnist as fm


def check(data_dir=None, fetch: bool = False, files: dict | None = None, base_url: str | None = None,
          out=None) -> int:
    """Search, optionally download, verify; print what happens to ``out`` (standard output by default).
    Returns the exit status."""
    files = fm.FASHION_MNIST if files is None else files
    out = sys.stdout if out is None else out
    say = functools.partial(print, file=out)
    say("Fashion-MNIST: folders searched, in order:")
    say(fm.searched(files, data_dir))
    folder = fm.locate(files, data_dir)
    if folder is None and fetch:
        if fm.named_dir(data_dir) is not None:
            say("--fetch downloads into data/fashion-mnist/ only; a folder you name is not written to.")
            return 1
        target = Path("data") / "fashion-mnist"
        say(f"Downloading what is missing into {target} ...")
        try:
            folder = fm.download(files, target, base_url, progress=out.isatty())
        except (urllib.error.URLError, OSError, fm.CorruptFileError) as error:
            say(f"Download failed: {getattr(error, 'reason', error)}")
            return 1
    if folder is None:
        say("No folder holds all four files. Get them with: apt-get install dataset-fashion-mnist, or "
            "python -m minicnn.data --fetch, or copy the four .gz files into a folder and name it with --data-dir.")
        return 1
    say(f"Using {folder}:")
    status = 0
    for spec in files.values():
        try:
            array = fm.read_idx_file(folder / spec.filename, spec)
        except fm.CorruptFileError as error:
            say(f"  CORRUPT  {error}")
            status = 1
            continue
        say(f"  ok       {spec.filename}: shape {array.shape}, content MD5 {spec.md5}")
    say("All files verified." if status == 0 else "Some files are corrupt: delete them and get them again.")
    return status


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m minicnn.data", description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", help="the folder to check, alone (default: $MINICNN_DATA, else the search)")
    parser.add_argument("--fetch", action="store_true", help="download missing files into data/fashion-mnist/")
    args = parser.parse_args(argv)
    return check(args.data_dir, args.fetch)


if __name__ == "__main__":
    sys.exit(main())
