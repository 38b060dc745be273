"""Writing results people can read, plot and trust: JSON, CSV, text tables and (optional) matplotlib figures.

Every file is written atomically (``serialization.atomic_write``): an interrupted run never leaves half a
results file. Figures need matplotlib (``pip install -e ".[plot]"``); without it ``plot_available()`` is False
and the functions here say so in one line instead of failing.
"""
from __future__ import annotations

import csv
import io
import json

from .serialization import atomic_write

__all__ = ["write_json", "write_csv", "format_table", "plot_available", "PLOT_HINT", "save_figure", "plot_curves"]

PLOT_HINT = 'figures need matplotlib: pip install -e ".[plot]"  (results are written without them)'


def write_json(data, path) -> None:
    """``data`` as indented JSON at ``path``, atomically."""
    with atomic_write(path, "w") as f:
        json.dump(data, f, indent=2)
        f.write("\n")


def write_csv(rows: list[dict], path) -> None:
    """A list of dicts with the same keys as a CSV file with a header row, atomically."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(rows[0]) if rows else [])
    writer.writeheader()
    writer.writerows(rows)
    with atomic_write(path, "w") as f:
        f.write(buffer.getvalue())


def format_table(rows: list[dict], columns: list[tuple]) -> str:
    """A plain-text (and Markdown) table. ``columns`` holds (header, key, format) triples, e.g.
    ("test acc", "test_accuracy", "{:.2%}")."""
    cells = [[fmt.format(row[key]) if row.get(key) is not None else "-" for _, key, fmt in columns] for row in rows]
    headers = [h for h, _, _ in columns]
    widths = [max(len(h), *(len(c[i]) for c in cells)) if cells else len(h) for i, h in enumerate(headers)]
    line = lambda values: "| " + " | ".join(v.rjust(w) if i else v.ljust(w)  # noqa: E731
                                             for i, (v, w) in enumerate(zip(values, widths))) + " |"
    rule = "|" + "|".join("-" * (w + 2) for w in widths) + "|"
    return "\n".join([line(headers), rule] + [line(c) for c in cells])


def plot_available() -> bool:
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return False
    return True


def save_figure(fig, path) -> None:
    """Save a matplotlib figure as PNG, atomically, and close it."""
    import matplotlib.pyplot as plt

    with atomic_write(path) as f:
        fig.savefig(f, format="png", dpi=120, bbox_inches="tight")
    plt.close(fig)


def plot_curves(histories: dict, path) -> bool:
    """Accuracy and loss against epoch, one colour per model: test solid, training dashed (the gap between
    them is overfitting). Returns False without matplotlib."""
    if not plot_available():
        return False
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax_acc, ax_loss) = plt.subplots(1, 2, figsize=(10, 4))
    for k, (name, history) in enumerate(histories.items()):
        epochs, colour = [h["epoch"] for h in history], f"C{k}"
        ax_acc.plot(epochs, [100 * h["test_accuracy"] for h in history], marker="o", color=colour, label=f"{name} test")
        ax_acc.plot(epochs, [100 * h["train_accuracy"] for h in history], ls="--", color=colour, label=f"{name} train")
        ax_loss.plot(epochs, [h["test_loss"] for h in history], marker="o", color=colour, label=f"{name} test")
        ax_loss.plot(epochs, [h["train_loss"] for h in history], ls="--", color=colour, label=f"{name} train")
    ax_acc.set(xlabel="epoch", ylabel="accuracy (%)", title="accuracy: test solid, training dashed")
    ax_loss.set(xlabel="epoch", ylabel="cross-entropy", title="loss: test solid, training dashed")
    for ax in (ax_acc, ax_loss):
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    save_figure(fig, path)
    return True
