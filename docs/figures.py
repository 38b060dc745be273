"""Make the figures the README and docs show, into docs/ (a few hundred KB in all).

    python docs/figures.py runs/<a finished run of examples/train_fashion.py>

- ``docs/curves.png``: accuracy and loss per epoch of that run's models, test and training;
- ``docs/maxpool.gif``: a 2 × 2 max-pooling window sliding over a Fashion-MNIST test image, the output filling in.
"""
import json
import sys
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


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    for path in (curves(Path(sys.argv[1])), maxpool_animation()):
        print(f"{path}: {path.stat().st_size / 1024:.0f} KiB")
