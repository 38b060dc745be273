"""Test-session setup shared by ``tests/`` and the doctests of ``minicnn/``.

``MINICNN_TEST_BLOCK_FAST=1`` makes ``minicnn.fast`` unimportable for the whole session, as a Numba without the
internals it uses would: the suite then checks that everything runs on the plain engine. Where the fast engine
cannot be imported (so, or under ``NUMBA_DISABLE_JIT=1``), its files' doctests are not collected.
"""
import importlib
import os
import sys


class _BlockFastEngine:
    """A meta-path finder that refuses to import ``minicnn.fast``."""

    def find_spec(self, name, path=None, target=None):
        if name == "minicnn.fast" or name.startswith("minicnn.fast."):
            raise ImportError(f"{name} blocked by MINICNN_TEST_BLOCK_FAST=1 (a simulated broken fast engine)")
        return None


if os.environ.get("MINICNN_TEST_BLOCK_FAST") == "1":
    sys.meta_path.insert(0, _BlockFastEngine())

try:
    importlib.import_module("minicnn.fast.contract")
    collect_ignore_glob = []
except ImportError:
    collect_ignore_glob = ["minicnn/fast/*"]
