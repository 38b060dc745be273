"""Make the figures the README and docs show, into docs/ (a few hundred KB in all).

    python docs/figures.py runs/<a finished run of examples/train_fashion.py> [--invariance runs/invariance]

- ``docs/curves.png``: accuracy and loss per epoch of that run's models, test and training;
- ``docs/maxpool.gif``: a 2 × 2 max-pooling window sliding over a Fashion-MNIST test image, the output filling in;
- with ``--invariance DIR`` (a finished run of examples/invariance.py): its accuracy figures, as
  ``docs/invariance_strength.png`` (accuracy against the amount of each corruption) and
  ``docs/invariance_shift.png`` (accuracy and consistency against shifts), each mean ± sd over its seeds.
"""
import argparse
import json
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent


def curves(run: Path) -> Path:
    from minicnn.report import plot_curves
    epochs = json.loads((run / "results.json").read_text())["epochs"]
    histories = {}
    for record in epochs:
        histories.setdefault(record["model"], []).append(record)
    plot_curves(histories, HERE / "curves.png")
    return HERE / "curves.png"


def maxpool_animation(index: int = 0) -> Path:
    """The window moves over the image (left); the pooled output fills in cell by cell (right)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.animation import FuncAnimation, PillowWriter
    from matplotlib.patches import Rectangle

    import minicnn as mc
    import minicnn.functional as F
    from minicnn.data import CLASSES, load_fashion_mnist

    *_, x_test, y_test = load_fashion_mnist(progress=False)
    image = x_test[index].astype(np.float32) / 255.0
    pooled = F.max_pool2d(mc.Tensor(image[None, None]), 2).numpy()[0, 0]
    shown = np.full_like(pooled, np.nan)
    fig, (left, right) = plt.subplots(1, 2, figsize=(6, 3.2))
    left.imshow(image, cmap="gray", vmin=0, vmax=1)
    left.set_title(f"input 28×28 ({CLASSES[y_test[index]]})", fontsize=9)
    view = right.imshow(shown, cmap="gray", vmin=0, vmax=1)
    right.set_title("MaxPool2d(2): 14×14", fontsize=9)
    window = Rectangle((-0.5, -0.5), 2, 2, fill=False, color="red", lw=1.5)
    left.add_patch(window)
    for ax in (left, right):
        ax.set_xticks([])
        ax.set_yticks([])
    cells = [(i, j) for i in range(14) for j in range(14)][::2] + [(13, 13)]   # every other cell: a smaller file

    def frame(k):
        i, j = cells[k]
        window.set_xy((2 * j - 0.5, 2 * i - 0.5))
        for a, b in cells[:k + 1]:
            shown[a, b] = pooled[a, b]
        if k == len(cells) - 1:
            shown[:] = pooled
        view.set_data(shown)
        return window, view

    animation = FuncAnimation(fig, frame, frames=len(cells), interval=60, blit=True)
    animation.save(HERE / "maxpool.gif", writer=PillowWriter(fps=15), dpi=60)
    plt.close(fig)
    return HERE / "maxpool.gif"


def invariance(lab: Path, width: int = 1200) -> list:
    """The invariance lab's two accuracy figures under the names the docs use, at most ``width`` pixels wide and
    in 64 colours (plots need no more; the files shrink several times)."""
    from PIL import Image

    from minicnn.serialization import atomic_write
    made = []
    for theirs, ours in (("accuracy_vs_strength.png", "invariance_strength.png"),
                         ("accuracy_vs_shift.png", "invariance_shift.png")):
        image = Image.open(lab / theirs).convert("RGB")
        if image.width > width:
            image = image.resize((width, round(image.height * width / image.width)), Image.LANCZOS)
        with atomic_write(HERE / ours, "wb") as f:
            image.quantize(colors=64).save(f, format="PNG", optimize=True)
        made.append(HERE / ours)
    return made


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("run", type=Path, help="a finished run of examples/train_fashion.py")
    parser.add_argument("--invariance", type=Path, default=None, metavar="DIR",
                        help="a finished run of examples/invariance.py")
    args = parser.parse_args()
    paths = [curves(args.run), maxpool_animation()] + (invariance(args.invariance) if args.invariance else [])
    for path in paths:
        print(f"{path}: {path.stat().st_size / 1024:.0f} KiB")
