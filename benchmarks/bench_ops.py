"""Time every layer of the LeNet pyramids, forward and forward+backward, minicnn beside PyTorch.

    python benchmarks/bench_ops.py                 # the table (PyTorch columns when torch is importable)
    python benchmarks/bench_ops.py --repeats 400   # more repeats, steadier medians

How it measures (../shared/PERFORMANCE.md): 2 threads for everyone, the two frameworks interleaved in blocks
(A×20, B×20, A×20, ...) in one process, the first calls after each switch untimed, medians, and their ratio
(PyTorch time / minicnn time: above 1 means minicnn is faster). "fwd" is the layer's forward in training mode
(graph recorded); "fwd+bwd" adds the backward of a random upstream gradient, computing the gradients of the
weights and of the input (or of the weights only, where the row says so).
"""
import argparse
import os

from _common import interleaved_medians, torch  # noqa: E402  (first: it sets the thread counts)

import numpy as np  # noqa: E402

import minicnn as mc  # noqa: E402
from minicnn import nn  # noqa: E402

# name, input shape, minicnn layer factory, torch layer factory, input gradient wanted?
CASES = [
    ("Conv2d(1,6,5,p=2)", (64, 1, 28, 28), lambda: nn.Conv2d(1, 6, 5, padding=2),
     lambda: torch.nn.Conv2d(1, 6, 5, padding=2), True),
    ("Conv2d(1,6,5,p=2) weight grad only", (64, 1, 28, 28), lambda: nn.Conv2d(1, 6, 5, padding=2),
     lambda: torch.nn.Conv2d(1, 6, 5, padding=2), False),
    ("Conv2d(6,16,5)", (64, 6, 14, 14), lambda: nn.Conv2d(6, 16, 5), lambda: torch.nn.Conv2d(6, 16, 5), True),
    ("Conv2d(1,6,5,s=2,p=2) weight grad only", (64, 1, 28, 28), lambda: nn.Conv2d(1, 6, 5, stride=2, padding=2),
     lambda: torch.nn.Conv2d(1, 6, 5, stride=2, padding=2), False),
    ("Conv2d(6,16,5,s=2)", (64, 6, 14, 14), lambda: nn.Conv2d(6, 16, 5, stride=2),
     lambda: torch.nn.Conv2d(6, 16, 5, stride=2), True),
    ("Conv2d(16,32,3,p=1)", (64, 16, 14, 14), lambda: nn.Conv2d(16, 32, 3, padding=1),
     lambda: torch.nn.Conv2d(16, 32, 3, padding=1), True),
    ("ReLU", (64, 6, 28, 28), nn.ReLU, lambda: torch.nn.ReLU(), True),
    ("MaxPool2d(2)", (64, 6, 28, 28), lambda: nn.MaxPool2d(2), lambda: torch.nn.MaxPool2d(2), True),
    ("AvgPool2d(2)", (64, 6, 28, 28), lambda: nn.AvgPool2d(2), lambda: torch.nn.AvgPool2d(2), True),
    ("MaxPool2d(2)", (64, 16, 10, 10), lambda: nn.MaxPool2d(2), lambda: torch.nn.MaxPool2d(2), True),
    ("MaxPool2d(2)", (64, 32, 32, 32), lambda: nn.MaxPool2d(2), lambda: torch.nn.MaxPool2d(2), True),
    ("MaxPool2d(3,s=2,p=1)", (64, 32, 32, 32), lambda: nn.MaxPool2d(3, 2, 1),
     lambda: torch.nn.MaxPool2d(3, 2, 1), True),
    ("AvgPool2d(2)", (64, 32, 32, 32), lambda: nn.AvgPool2d(2), lambda: torch.nn.AvgPool2d(2), True),
    ("GlobalAvgPool2d", (64, 64, 7, 7), nn.GlobalAvgPool2d, lambda: torch.nn.AdaptiveAvgPool2d(1), True),
    ("Linear(400,120)", (64, 400), lambda: nn.Linear(400, 120), lambda: torch.nn.Linear(400, 120), True),
]


def minicnn_runner(make_layer, shape, input_grad, rng):
    layer = make_layer()
    x = mc.Tensor(rng.standard_normal(shape).astype(np.float32), requires_grad=input_grad)
    g = rng.standard_normal(layer(x).shape).astype(np.float32)

    def forward():
        layer(x)

    def forward_backward():
        layer(x).backward(g)
        layer.zero_grad()
        x.grad = None
    return forward, forward_backward


def torch_runner(make_layer, shape, input_grad, rng):
    layer = make_layer()
    x = torch.tensor(rng.standard_normal(shape).astype(np.float32), requires_grad=input_grad)
    g = torch.tensor(rng.standard_normal(tuple(layer(x).shape)).astype(np.float32))

    def forward():
        layer(x)

    def forward_backward():
        layer(x).backward(g)
        layer.zero_grad(set_to_none=True)
        x.grad = None
    return forward, forward_backward


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=200)
    args = parser.parse_args(argv)
    rng = np.random.default_rng(0)
    print(f"minicnn {mc.__version__}, numpy {np.__version__}, threads: numba {os.environ['NUMBA_NUM_THREADS']}"
          + (f", torch {torch.__version__} ({torch.get_num_threads()} threads)" if torch else ", torch not installed"))
    header = "| layer | input | minicnn fwd (ms) | torch fwd (ms) | ratio | minicnn fwd+bwd (ms) | torch fwd+bwd (ms) | ratio |"
    print(header)
    print("|---|---|---:|---:|---:|---:|---:|---:|")
    for name, shape, make_ours, make_theirs, input_grad in CASES:
        ours = minicnn_runner(make_ours, shape, input_grad, rng)
        theirs = torch_runner(make_theirs, shape, input_grad, rng) if torch else None
        fwd = interleaved_medians([ours[0]] + ([theirs[0]] if theirs else []), args.repeats)
        both = interleaved_medians([ours[1]] + ([theirs[1]] if theirs else []), args.repeats)
        cells = [name, "×".join(map(str, shape))]
        for pair in (fwd, both):
            cells.append(f"{pair[0] * 1e3:.3f}")
            cells += [f"{pair[1] * 1e3:.3f}", f"{pair[1] / pair[0]:.2f}×"] if theirs else ["-", "-"]
        print("| " + " | ".join(cells) + " |", flush=True)


if __name__ == "__main__":
    main()
