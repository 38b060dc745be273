"""Take the models a run trained elsewhere: ONNX files checked by ONNX Runtime, and safetensors weights.

    python examples/train_fashion.py --out runs/first        # train (or use any finished run folder)
    python examples/export.py runs/first                     # runs/first/<model>.onnx and <model>.safetensors

For each model of the run it loads the checkpoint, exports the fused model to ONNX (``minicnn.onnx.export``),
runs the Fashion-MNIST test set through ONNX Runtime and through minicnn, and prints both accuracies and the
largest difference between their logits. Needs ``pip install -e ".[onnx,safetensors]"``.
"""
import argparse
import json
import sys
from pathlib import Path

import numpy as np

import minicnn as mc
import minicnn.onnx
from minicnn import models, nn
from minicnn.data import CorruptFileError, DataNotFoundError, load_fashion_mnist, normalize


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("run", help="a folder written by examples/train_fashion.py")
    p.add_argument("--data-dir", default=None, help="folder holding the four Fashion-MNIST .gz files")
    args = p.parse_args(argv)
    run = Path(args.run)
    try:
        names = json.loads((run / "config.json").read_text())["models"]
    except (OSError, ValueError, KeyError) as error:
        print(f"{run}: not a finished run folder ({type(error).__name__}: {error})", file=sys.stderr)
        return 2
    names = list(models.MODELS) if names == "all" else names.split(",")
    try:
        import onnxruntime
    except ImportError:
        print('ONNX Runtime is not installed: pip install -e ".[onnx]"', file=sys.stderr)
        return 1
    try:
        *_, x_test, y_test = load_fashion_mnist(args.data_dir, progress=False)
    except (DataNotFoundError, CorruptFileError) as error:
        print(error, file=sys.stderr)
        return 1
    x = normalize(x_test)
    print(f"| model | minicnn test acc | ONNX Runtime test acc | largest logit difference | files |")
    print("|---|---:|---:|---:|---|")
    for name in names:
        checkpoint = run / f"{name}.npz"
        if not checkpoint.exists():
            print(f"| {name} | - | - | - | no checkpoint in {run} |")
            continue
        model = nn.fuse(models.build(name))
        model.load_state_dict(mc.load(checkpoint)["model"])
        model.eval()
        onnx_path, weights = run / f"{name}.onnx", run / f"{name}.safetensors"
        minicnn.onnx.export(model, x[:1], onnx_path)
        mc.save(model.state_dict(), weights)
        session = onnxruntime.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
        ours, theirs = [], []
        with mc.no_grad():
            for start in range(0, len(x), 1000):
                batch = x[start:start + 1000]
                ours.append(model(mc.Tensor(batch)).numpy())
                theirs.append(session.run(None, {"input": batch})[0])
        ours, theirs = np.concatenate(ours), np.concatenate(theirs)
        accuracy = lambda logits: np.mean(logits.argmax(axis=1) == y_test)      # noqa: E731
        print(f"| {name} | {accuracy(ours):.2%} | {accuracy(theirs):.2%} | {np.abs(ours - theirs).max():.2e} | "
              f"{onnx_path.name}, {weights.name} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
