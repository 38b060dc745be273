"""The documentation runs: every ``>>>`` example in docs/*.md is executed and its printed output compared
(``doctest``), and every ```python block of the README is executed in order in one namespace."""
import doctest
import os
import re
import tokenize
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


#: Words that tell the history of the code rather than what it does: "the ninth round", "this session", "was
#: tried", "did not pay", and (in the source) a date. That history belongs in docs/performance.md.
HISTORY = re.compile(r"\b(?:\w+th|first|second|third|last|next|this|that|each|every|one|a) round\b|\brounds\b|"
                     r"\bsessions?\b|\b(?:was|were) tried\b|\btried (?:there|here|without)\b|\bdid not pay\b|"
                     r"\b(?:yesterday|last night|late evening)\b", re.I)
DATE = re.compile(r"\b20\d\d-\d\d-\d\d\b")


def prose(path):
    """(line, text) of every comment and string literal of a Python file: its docstrings among them."""
    with open(path, "rb") as f:
        for token in tokenize.tokenize(f.readline):
            if token.type in (tokenize.COMMENT, tokenize.STRING):
                yield token.start[0], token.string


def history_in(text, dates=True):
    found = [m.group(0) for m in HISTORY.finditer(text)]
    return found + ([m.group(0) for m in DATE.finditer(text)] if dates else [])


def test_the_source_and_readme_tell_no_history():
    """Docstrings and comments say what and why, the README what a user needs; the history is in
    docs/performance.md. (The README's figures keep the date they were measured.)"""
    files = sorted([*ROOT.glob("minicnn/**/*.py"), *ROOT.glob("examples/*.py"), *ROOT.glob("benchmarks/*.py")])
    found = [f"{path.relative_to(ROOT)}:{line}: {hit!r}" for path in files for line, text in prose(path)
             for hit in history_in(text)]
    found += [f"README.md:{i}: {hit!r}" for i, line in enumerate((ROOT / "README.md").read_text().splitlines(), 1)
              for hit in history_in(line, dates=False)]
    assert not found, "history outside docs/performance.md:\n" + "\n".join(found)


def test_history_is_recognised():
    assert history_in("Tried there without gain: prefetching.") == ["Tried there"]
    assert history_in("as the eighth round's figures showed") == ["eighth round"]
    assert history_in("measured 2026-11-22") == ["2026-11-22"]
    assert history_in("ceil_mode: round the output size up") == []
