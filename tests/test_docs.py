"""The documentation runs: every ``>>>`` example in docs/*.md is executed and its printed output compared
(``doctest``), and every ```python block of the README is executed in order in one namespace."""
import doctest
import os
import re
from pathlib import Path

import pytest

import minicnn as mc

ROOT = Path(__file__).resolve().parents[1]
DOCS = sorted((ROOT / "docs").glob("*.md"))
FLAGS = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE


def run_doctests(text, name):
    """(failures, tried) of the ``>>>`` examples in ``text``."""
    parser, runner = doctest.DocTestParser(), doctest.DocTestRunner(optionflags=FLAGS, verbose=False)
    test = parser.get_doctest(text, {}, name, name, 0)
    before = mc.engine_name()
    try:
        runner.run(test, out=lambda _: None)
    finally:
        mc.use_engine(before)
    return runner.failures, runner.tries


@pytest.mark.parametrize("path", DOCS, ids=[p.name for p in DOCS])
def test_the_examples_in_docs_run_and_print_what_they_show(path):
    failures, tried = run_doctests(path.read_text(), path.name)
    assert failures == 0, f"{path.name}: {failures} of {tried} examples failed (python -m doctest -v {path})"


def test_a_broken_example_fails():
    text = (ROOT / "docs" / "tour.md").read_text().replace("[2.0, 4.0, 6.0]", "[2.0, 4.0, 7.0]", 1)
    assert run_doctests(text, "broken tour")[0] == 1


def python_blocks(text):
    return re.findall(r"```python\n(.*?)```", text, flags=re.S)


def test_the_readme_quickstart_runs(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    blocks = [b for b in python_blocks((ROOT / "README.md").read_text()) if ">>>" not in b]
    assert blocks, "the README has no python block"
    namespace = {}
    for block in blocks:
        exec(compile(block, "README.md", "exec"), namespace)           # noqa: S102
    assert os.path.exists(tmp_path / "model.npz")
