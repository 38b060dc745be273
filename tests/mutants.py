"""Mutation check: put known bugs back into a copy of the repository, one at a time, and see the suite fail.

    python tests/mutants.py                  # every mutant, the quick part of the suite (-m "not slow")
    K="not pytorch" python tests/mutants.py  # the same without the PyTorch parity tests (torch not installed)
    python tests/mutants.py "cosine off by one epoch"

Each mutant is a small, realistic bug that once went through the suite unnoticed. A mutant the suite does not
catch prints MISSED: a hole in the net. Not collected by pytest (it runs the suite itself, in a copy).
"""
import os
import shutil
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
#: name: (file, the right line(s), the bug)
MUTANTS = {
 "avg divisor H+2P (fast)": ("minicnn/fast/pool.py", "h1, w1 = min(h0 + kernel_h, H + pad_h), min(w0 + kernel_w, W + pad_w)",
                               "h1, w1 = min(h0 + kernel_h, H + 2 * pad_h), min(w0 + kernel_w, W + 2 * pad_w)"),
 "avg divisor H+2P (plain)": ("minicnn/plain/pool.py", "h1, w1 = min(h0 + kernel_h, H + pad_h), min(w0 + kernel_w, W + pad_w)",
                               "h1, w1 = min(h0 + kernel_h, H + 2 * pad_h), min(w0 + kernel_w, W + 2 * pad_w)"),
 "2x2 fast path on vertical stride only": ("minicnn/fast/pool.py", "return ((kernel_h, kernel_w, stride_h, stride_w, pad_h, pad_w) == (2, 2, 2, 2, 0, 0)",
                               "return ((kernel_h, kernel_w, stride_h, pad_h, pad_w) == (2, 2, 2, 0, 0)"),
 "Adam step counted per optimizer": ("minicnn/optim.py", 't = state["step"]', "t = self.step_count"),
 "resume without the random state": ("minicnn/train.py", '        mc_random.set_state(json.loads(state["rng_json"]))\n', "\n"),
 "cosine off by one epoch": ("minicnn/train.py", "math.cos(math.pi * epoch / epochs)", "math.cos(math.pi * (epoch + 1) / epochs)"),
 "dropout scaled by 1-p": ("minicnn/functional/elementwise.py", "scale = (keep / (1.0 - p)).astype(x.dtype)", "scale = (keep * (1.0 - p)).astype(x.dtype)"),
 "evaluate leaves eval mode": ("minicnn/train.py", "        model.train(was_training)\n", "        pass\n"),
}


def run(name, scratch):
    """Run the quick part of the suite on a copy with mutant ``name`` put in (None: the copy as it is)."""
    path, old, new = MUTANTS[name] if name is not None else (None, None, None)
    work = os.path.join(scratch, "repo")
    shutil.rmtree(work, ignore_errors=True)
    shutil.copytree(ROOT, work, ignore=lambda folder, names: [n for n in names if n in (".git", "runs")
                                                              or (folder.endswith("data") and n == "fashion-mnist")])
    if name is not None:
        full = os.path.join(work, path)
        text = open(full).read()
        assert text.count(old) == 1, (name, text.count(old))
        open(full, "w").write(text.replace(old, new))
    env = dict(os.environ, PYTHONPATH=work)
    r = subprocess.run([sys.executable, "-m", "pytest", "-q", "-x", "-m", "not slow", "-k", os.environ.get("K", ""), "-p", "no:cacheprovider"],
                       cwd=work, env=env, capture_output=True, text=True)
    failed = [l for l in r.stdout.splitlines() if l.startswith("FAILED")]
    if name is None:
        return r.returncode == 0, failed
    print(f"{name:40s} {'CAUGHT' if r.returncode == 1 else 'MISSED'} {failed[:1]}", flush=True)
    return r.returncode == 1


def main(names):
    with tempfile.TemporaryDirectory() as scratch:
        passes, failed = run(None, scratch)                  # the copy must pass as it is, or nothing is learnt
        if not passes:
            print(f"the unmutated copy fails: {failed[:3]}")
            return 2
        caught = [run(name, scratch) for name in names or MUTANTS]
    return 0 if all(caught) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
