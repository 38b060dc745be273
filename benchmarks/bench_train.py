"""Whole training steps and evaluation, minicnn beside PyTorch; start-up times and peak memory.

    python benchmarks/bench_train.py                  # everything (about 2 minutes)
    python benchmarks/bench_train.py --skip-memory    # without the example run that measures peak memory
    python benchmarks/bench_train.py --contention     # only the steps on a shared machine (about a minute)
    python benchmarks/bench_train.py --step strided --runs 5     # one step against PyTorch's, 5 times over

Figures:
  - training step (forward, backward, SGD with momentum) of ``maxpool`` and ``strided`` at batch 64 and 256:
    images per second on minicnn's fast engine and PyTorch, interleaved block by block, medians; then the plain
    engine against PyTorch the same way, its figure scaled to the first PyTorch timing (so the two ratios
    share one PyTorch figure);
  - evaluation (forward under no_grad, batch 1000) of ``maxpool``, ``avgpool`` and ``strided``: images/s;
  - cold start: a fresh process with an *empty* Numba cache, from launch to its first finished ``maxpool``
    training step, with its helper compiling the backward kernels on the other core (``fast/ahead.py``; the
    CPU seconds of both) and alone; warm start: the same with the cache filled; ``import minicnn`` alone;
  - peak memory (max RSS) of ``examples/train_fashion.py`` with its default models and settings, one epoch
    (memory does not grow with epochs);
  - with ``--contention``: a ``maxpool`` training step at batch 64 alone, with two trainings at once, and beside
    two busy processes, for minicnn and PyTorch, each in processes of its own (medians over a few seconds);
  - with ``--step NAME``: only that model's training step at ``--batch`` (64) against PyTorch's, measured
    ``--runs`` times (300 steps of each, interleaved, in every run), one ratio a line, then their range and
    median: the spread a single figure hides on a machine whose speed drifts.
"""
import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import interleaved_medians, torch  # noqa: E402  (first: it sets the thread counts)

import numpy as np  # noqa: E402

import minicnn as mc  # noqa: E402
import minicnn.functional as F  # noqa: E402
from minicnn import models, nn, optim  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def torch_model(name):
    """The same layers as ``minicnn.models`` in PyTorch."""
    tnn = torch.nn
    head = [tnn.Flatten(), tnn.Linear(400, 120), tnn.ReLU(), tnn.Linear(120, 84), tnn.ReLU(), tnn.Linear(84, 10)]
    if name == "strided":
        return tnn.Sequential(tnn.Conv2d(1, 6, 5, stride=2, padding=2), tnn.ReLU(), tnn.Conv2d(6, 16, 5, stride=2),
                              tnn.ReLU(), *head)
    pool = tnn.MaxPool2d if name == "maxpool" else tnn.AvgPool2d
    return tnn.Sequential(tnn.Conv2d(1, 6, 5, padding=2), tnn.ReLU(), pool(2), tnn.Conv2d(6, 16, 5), tnn.ReLU(),
                          pool(2), *head)


def on_engine(engine, function):
    """``function`` run on minicnn's engine ``engine`` (the choice is global: made again before each call)."""
    def run():
        mc.use_engine(engine)
        function()
    return run


def training_steps(name, batch, rng, engine="fast"):
    """[minicnn's training step on ``engine``, PyTorch's (when installed)], the same model, data and recipe."""
    x = rng.standard_normal((batch, 1, 28, 28)).astype(np.float32)
    y = rng.integers(0, 10, batch)
    model = nn.fuse(models.build(name))
    opt = optim.SGD(model.parameters(), lr=0.01, momentum=0.9)

    def ours():
        loss = F.cross_entropy(model(mc.Tensor(x)), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    functions = [on_engine(engine, ours)]
    if torch:
        tmodel = torch_model(name)
        topt = torch.optim.SGD(tmodel.parameters(), lr=0.01, momentum=0.9)
        tx, ty = torch.tensor(x), torch.tensor(y)

        def theirs():
            loss = torch.nn.functional.cross_entropy(tmodel(tx), ty)
            topt.zero_grad()
            loss.backward()
            topt.step()
        functions.append(theirs)
    return functions


def evaluation(name, rng, batch=1000):
    x = rng.standard_normal((batch, 1, 28, 28)).astype(np.float32)
    model = nn.fuse(models.build(name)).eval()

    def ours():
        with mc.no_grad():
            model(mc.Tensor(x))
    functions = [ours]
    if torch:
        tmodel = torch_model(name).eval()
        tx = torch.tensor(x)

        def theirs():
            with torch.no_grad():
                tmodel(tx)
        functions.append(theirs)
    return functions


def row(label, batch, seconds):
    """A table row: minicnn's images/s, PyTorch's, their ratio, minicnn's ms; then the plain engine's, if timed."""
    cells = [label, f"{batch / seconds[0]:,.0f}"]
    if torch:
        cells += [f"{batch / seconds[1]:,.0f}", f"{seconds[1] / seconds[0]:.2f}×"]
    else:
        cells += ["-", "-"]
    cells.append(f"{seconds[0] * 1e3:.2f}")
    if len(seconds) > (2 if torch else 1):
        plain = seconds[-1]
        cells += [f"{batch / plain:,.0f}", f"{seconds[1] / plain:.2f}×" if torch else "-"]
    return "| " + " | ".join(cells) + " |"


FIRST_STEP = """
import time, sys
t0 = time.perf_counter()
import numpy as np
import minicnn as mc, minicnn.functional as F
from minicnn import models, nn, optim
imported = time.perf_counter()
model = nn.fuse(models.maxpool()); opt = optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
x = mc.Tensor(np.random.rand(64, 1, 28, 28).astype(np.float32)); y = np.random.randint(0, 10, 64)
def step():
    loss = F.cross_entropy(model(x), y); opt.zero_grad(); loss.backward(); opt.step()
step()
first, finished = time.perf_counter(), time.time()
steps = []
for _ in range(20):
    s = time.perf_counter(); step(); steps.append(time.perf_counter() - s)
print(imported - t0, first - t0, sorted(steps)[10], finished)
"""


STEP_LOOP = """
import sys, time
import numpy as np
framework, seconds = sys.argv[1], float(sys.argv[2])
x = np.random.default_rng(0).random((64, 1, 28, 28)).astype(np.float32)
y = np.random.default_rng(1).integers(0, 10, 64)
if framework == "minicnn":
    import minicnn as mc, minicnn.functional as F
    from minicnn import models, nn, optim
    model = nn.fuse(models.maxpool()); opt = optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    def step():
        loss = F.cross_entropy(model(mc.Tensor(x)), y); opt.zero_grad(); loss.backward(); opt.step()
else:
    import torch
    torch.set_num_threads(2)
    sys.path.insert(0, sys.argv[3])
    from bench_train import torch_model
    model = torch_model("maxpool"); opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    tx, ty = torch.tensor(x), torch.tensor(y)
    def step():
        loss = torch.nn.functional.cross_entropy(model(tx), ty); opt.zero_grad(); loss.backward(); opt.step()
for _ in range(30):
    step()
times, end = [], time.time() + seconds
while time.time() < end:
    started = time.perf_counter(); step(); times.append(time.perf_counter() - started)
print(sorted(times)[len(times) // 2])
"""


def contention(seconds=6.0):
    """Median step seconds of a maxpool training step at batch 64 for (alone, two at once, beside two busy
    processes), per framework; each run a process of its own."""
    here = str(Path(__file__).resolve().parent)

    def launch(framework):
        return subprocess.Popen([sys.executable, "-c", STEP_LOOP, framework, str(seconds), here],
                                stdout=subprocess.PIPE, text=True)

    def median(process):
        return float(process.communicate()[0].split()[-1])

    busy = "import time\nend = time.time() + {}\nwhile time.time() < end: pass".format(seconds + 8)
    figures = {}
    for framework in ["minicnn"] + (["torch"] if torch else []):
        alone = median(launch(framework))
        pair = [launch(framework), launch(framework)]
        together = max(median(p) for p in pair)
        spinners = [subprocess.Popen([sys.executable, "-c", busy]) for _ in range(2)]
        try:
            beside = median(launch(framework))
        finally:
            for spinner in spinners:
                spinner.kill()
        figures[framework] = (alone, together, beside)
    return figures


def startup(env):
    """(import seconds, seconds to first step inside the process, steady step, seconds from launch to the end of
    the first step, CPU seconds of the process and of its children: the helper that compiles ahead,
    ``fast/ahead.py``). The launch and the first step's end are read on the wall clock of each process, so
    the figure leaves out the 20 steady steps that follow and the interpreter's exit (0.3–0.5 s)."""
    resource = __import__("resource")
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    launched = time.time()
    out = subprocess.run([sys.executable, "-c", FIRST_STEP], env=env, capture_output=True, text=True, check=True)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
    imported, first, steady, finished = map(float, out.stdout.split())
    return imported, first, steady, finished - launched, cpu


def peak_memory_of_example():
    with tempfile.TemporaryDirectory() as out:
        command = [sys.executable, str(ROOT / "examples" / "train_fashion.py"), "--epochs", "1", "--quiet",
                   "--out", out]
        before = __import__("resource").getrusage(__import__("resource").RUSAGE_CHILDREN).ru_maxrss
        subprocess.run(command, check=True, capture_output=True)
        after = __import__("resource").getrusage(__import__("resource").RUSAGE_CHILDREN).ru_maxrss
    return max(before, after) / 1024   # ru_maxrss is in KiB on Linux


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=100)
    parser.add_argument("--skip-memory", action="store_true")
    parser.add_argument("--contention", action="store_true", help="only the steps on a shared machine")
    parser.add_argument("--step", choices=models.MODELS, default=None, help="only this model's training step")
    parser.add_argument("--batch", type=int, default=64, help="with --step: the batch size (default: %(default)s)")
    parser.add_argument("--runs", type=int, default=5, help="with --step: how many times (default: %(default)s)")
    args = parser.parse_args(argv)
    rng = np.random.default_rng(0)
    if args.step:
        if not torch:
            parser.error("--step compares with PyTorch: pip install torch==2.13.0")
        functions = training_steps(args.step, args.batch, rng)
        for function in functions:                   # compiled and warm before the first run
            for _ in range(50):
                function()
        ratios = []
        for _ in range(args.runs):
            ours, theirs = interleaved_medians(functions, 300)
            ratios.append(theirs / ours)
            print(f"{args.step}, batch {args.batch}: minicnn {ours * 1e3:.3f} ms, torch {theirs * 1e3:.3f} ms, "
                  f"{ratios[-1]:.2f}×", flush=True)
        print(f"{len(ratios)} runs: {min(ratios):.2f}–{max(ratios):.2f}×, median {statistics.median(ratios):.2f}×")
        return
    if args.contention:
        print("\n| maxpool step, batch 64 (ms) | alone | two trainings at once | beside two busy processes |")
        print("|---|---:|---:|---:|")
        for framework, (alone, together, beside) in contention().items():
            print(f"| {framework} | {alone * 1e3:.2f} | {together * 1e3:.2f} ({together / alone:.1f}×) | "
                  f"{beside * 1e3:.2f} ({beside / alone:.1f}×) |", flush=True)
        return
    print(f"minicnn {mc.__version__}, numpy {np.__version__}"
          + (f", torch {torch.__version__} ({torch.get_num_threads()} threads)" if torch else ", torch not installed"))

    print("\n| training step | minicnn img/s | torch img/s | ratio | minicnn ms/step | plain engine img/s | ratio |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for name in ("maxpool", "strided"):
        for batch in (64, 256):
            seconds = interleaved_medians(training_steps(name, batch, rng), args.repeats)
            # The plain engine against PyTorch on its own: interleaved with the fast engine, each engine's
            # thread pool (BLAS's, Numba's) would still be spinning when the other's block begins.
            plain = interleaved_medians(training_steps(name, batch, rng, engine="plain"), max(20, args.repeats // 4))
            print(row(f"{name}, batch {batch}", batch, seconds + plain[:1] if not torch else
                      seconds + [plain[0] * seconds[1] / plain[1]]), flush=True)

    mc.use_engine("fast")
    print("\n| evaluation (no_grad, batch 1000) | minicnn img/s | torch img/s | ratio | minicnn ms/batch |")
    print("|---|---:|---:|---:|---:|")
    for name in ("maxpool", "avgpool", "strided"):
        seconds = interleaved_medians(evaluation(name, rng), max(10, args.repeats // 5))
        print(row(name, 1000, seconds), flush=True)

    print("\n| start-up (fresh processes) | seconds |")
    print("|---|---:|")
    # Python's default, bytecode cached: with PYTHONDONTWRITEBYTECODE=1 (set in some shells, this machine's
    # among them) every import compiles minicnn's sources again, 60 ms.
    base = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    with tempfile.TemporaryDirectory() as alone:
        wall, cpu = startup({**base, "NUMBA_CACHE_DIR": alone, "MINICNN_COMPILE_AHEAD": "0"})[3:]
        print(f"| cold cache, compiling alone (MINICNN_COMPILE_AHEAD=0): launch to first maxpool step | {wall:.2f} |")
    with tempfile.TemporaryDirectory() as cache:
        env = {**base, "NUMBA_CACHE_DIR": cache}
        imported, first, steady, wall, cpu = startup(env)
        print(f"| cold cache: launch to first finished maxpool step | {wall:.2f} |")
        print(f"| cold cache: CPU seconds, this process and the helper compiling ahead | {cpu:.2f} |")
        imported, first, steady, wall, cpu = startup(env)
        print(f"| warm cache: launch to first finished maxpool step | {wall:.2f} |")
        print(f"| warm cache: first step minus steady-state step, inside the process | {first - imported - steady:.3f} |")
        print(f"| steady-state maxpool step (batch 64) | {steady:.4f} |")
        imports = sorted(startup(env)[0] for _ in range(3))
        print(f"| import minicnn (median of 3) | {imports[1]:.3f} |")

    if not args.skip_memory:
        print(f"\npeak memory (max RSS) of `examples/train_fashion.py --epochs 1`: {peak_memory_of_example():,.0f} MiB")


if __name__ == "__main__":
    main()
