"""What does pooling buy? Invariance to masked pixels, to noise of the other sign, and to small shifts, measured
on the whole Fashion-MNIST test set.

    python examples/invariance.py                                   # trains what it needs, then measures
    python examples/invariance.py --checkpoints runs/20261122-101500  # reuse train_fashion.py's checkpoints
    python examples/invariance.py --limit 500                       # a quick try on 500 images

Three experiments:
  1. one pooling layer, no training: cosine similarity of clean and corrupted images before and after
     MaxPool2d(2), AvgPool2d(2) and a 2×2 stride-2 convolution with fixed averaging weights;
  2. trained models (maxpool, avgpool, strided, nopool, blurpool): test accuracy under each corruption, and the
     similarity of clean and corrupted feature maps after every layer;
  3. shifts: accuracy against a shift of 0-4 pixels, and Zhang's (2019) shift consistency.

Writes invariance.json, invariance.md (tables, each with a sentence on what it shows) and, with matplotlib,
corruptions.png, feature_maps.png, accuracy_vs_strength.png and accuracy_vs_shift.png under --out.
"""
import argparse
import sys
from pathlib import Path

import numpy as np

import minicnn as mc
import minicnn.functional as F
from minicnn import models, optim
from minicnn.data import CorruptFileError, DataLoader, DataNotFoundError, load_fashion_mnist, normalize
from minicnn.data.transforms import grid_mask, line_mask, random_mask, shift
from minicnn.metrics import cosine_similarity, feature_maps, predict, shift_consistency
from minicnn.report import PLOT_HINT, format_table, plot_available, save_figure, write_json
from minicnn.serialization import atomic_write
from minicnn.train import fit

DEFAULT_MODELS = "maxpool,avgpool,strided,nopool,blurpool"
# corruption name → (function of (images, strength, fill, seed), strengths)
CORRUPTIONS = {
    "random pixels": (lambda x, s, fill, seed: random_mask(x, s, seed, fill), [0.1, 0.2, 0.3, 0.4, 0.5]),
    "vertical lines": (lambda x, s, fill, seed: line_mask(x, "vertical", s, 1, fill), [8, 4, 3, 2]),
    "horizontal lines": (lambda x, s, fill, seed: line_mask(x, "horizontal", s, 1, fill), [8, 4, 3, 2]),
    "grid": (lambda x, s, fill, seed: grid_mask(x, s, 1, fill), [8, 4, 3, 2]),
}
STRENGTH_UNITS = {"random pixels": "fraction masked", "vertical lines": "spacing", "horizontal lines": "spacing",
                  "grid": "spacing"}
FILLS = ("zero", "max")
SHIFTS = [0, 1, 2, 3, 4]
CONSISTENCY_SHIFTS = [1, 2, 3]


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--models", default=DEFAULT_MODELS, help="comma-separated model names (default: %(default)s)")
    p.add_argument("--checkpoints", default=None, help="folder of <model>.npz from train_fashion.py")
    p.add_argument("--out", default="runs/invariance", help="output folder (default: %(default)s)")
    p.add_argument("--limit", type=int, default=None, help="use the first N training and N test images only")
    p.add_argument("--seed", type=int, default=0, help="seeds training and every random corruption")
    p.add_argument("--data-dir", default=None)
    return p.parse_args(argv)


def load_or_train(name, folders, x_train, y_train, seed):
    """The model ``name`` from the first folder holding <name>.npz, else trained with train_fashion.py's recipe
    (SGD 0.01, momentum 0.9, batch 64, 5 epochs) and saved in the last folder."""
    mc.manual_seed(seed)
    model = models.build(name)
    for folder in folders:
        path = Path(folder) / f"{name}.npz"
        if path.exists():
            state = mc.load(path)
            model.load_state_dict(state["model"])
            print(f"{name}: loaded {path}")
            return model
    print(f"{name}: no checkpoint, training it (5 epochs)")
    opt = optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    fit(model, opt, DataLoader(x_train, y_train, 64, shuffle=True, seed=seed), None, 5, progress=True, desc=name,
        checkpoint=Path(folders[-1]) / f"{name}.npz")
    return model


def single_layer_similarities(x, seed):
    """Experiment 1: rows of cosine similarity before and after one pooling layer, per corruption."""
    averaging = mc.Tensor(np.full((1, 1, 2, 2), 0.25, dtype=np.float32))
    layers = {"input": lambda t: t, "max pool 2×2": lambda t: F.max_pool2d(t, 2),
              "avg pool 2×2": lambda t: F.avg_pool2d(t, 2),
              "avg conv 2×2 s2": lambda t: F.conv2d(t, averaging, stride=2)}
    clean = mc.Tensor(x[:, None].astype(np.float32) / 255)
    rows = []
    with mc.no_grad():
        clean_out = {name: layer(clean) for name, layer in layers.items()}
        for kind, (corrupt, strengths) in CORRUPTIONS.items():
            for fill in FILLS:
                for strength in strengths:
                    bad = mc.Tensor(corrupt(x, strength, fill, seed)[:, None].astype(np.float32) / 255)
                    row = {"corruption": kind, "fill": fill, "strength": strength}
                    row.update({name: cosine_similarity(clean_out[name], layer(bad)) for name, layer in layers.items()})
                    rows.append(row)
    return rows


def main(argv=None) -> int:
    args = parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    names = args.models.split(",")
    for name in names:
        if name not in models.MODELS:
            print(f"--models: unknown model {name!r}; choose from {', '.join(models.MODELS)}", file=sys.stderr)
            return 2
    try:
        x_train, y_train, x_test, y_test = load_fashion_mnist(args.data_dir)
    except (DataNotFoundError, CorruptFileError) as error:
        print(error, file=sys.stderr)
        return 1
    if args.limit:
        x_train, y_train, x_test, y_test = x_train[:args.limit], y_train[:args.limit], x_test[:args.limit], y_test[:args.limit]
    folders = ([args.checkpoints] if args.checkpoints else []) + [str(out / "checkpoints")]
    results = {"settings": {"models": names, "test_images": len(x_test), "seed": args.seed, "limit": args.limit}}

    print("1. one pooling layer, no training")
    results["single_layer"] = single_layer_similarities(x_test, args.seed)

    trained = {name: load_or_train(name, folders, x_train, y_train, args.seed) for name in names}

    print("2. trained models under corruption")
    accuracy = lambda model, images: float(np.mean(predict(model, images) == y_test))  # noqa: E731
    results["clean_accuracy"] = {name: accuracy(m, x_test) for name, m in trained.items()}
    rows = []
    for kind, (corrupt, strengths) in CORRUPTIONS.items():
        for fill in FILLS:
            for strength in strengths:
                bad = corrupt(x_test, strength, fill, args.seed)
                rows.append({"corruption": kind, "fill": fill, "strength": strength,
                             **{name: accuracy(m, bad) for name, m in trained.items()}})
    results["corrupted_accuracy"] = rows

    sample = x_test[:1000]
    layerwise = []
    for kind, (corrupt, strengths) in CORRUPTIONS.items():
        for fill in FILLS:
            strength = strengths[len(strengths) // 2]
            clean_maps = {name: feature_maps(m, normalize(sample)) for name, m in trained.items()}
            bad_maps = {name: feature_maps(m, normalize(corrupt(sample, strength, fill, args.seed)))
                        for name, m in trained.items()}
            for name in trained:
                stages = [(label, cosine_similarity(a, b)) for (label, a), (_, b)
                          in zip(clean_maps[name], bad_maps[name]) if a.ndim == 4]
                layerwise.append({"corruption": kind, "fill": fill, "strength": strength, "model": name,
                                  "stages": stages})
    results["layerwise_similarity"] = layerwise

    print("3. shifts")
    shift_rows = []
    for s in SHIFTS:
        moves = [(s, 0), (-s, 0), (0, s), (0, -s)] if s else [(0, 0)]
        shift_rows.append({"shift": s, **{name: float(np.mean([accuracy(m, shift(x_test, dx, dy)) for dx, dy in moves]))
                                          for name, m in trained.items()}})
    results["shift_accuracy"] = shift_rows
    results["shift_consistency"] = [
        {"max_shift": s, **{name: shift_consistency(lambda x: predict(m, x), x_test, s, args.seed)
                            for name, m in trained.items()}} for s in CONSISTENCY_SHIFTS]

    write_json(results, out / "invariance.json")
    report = markdown_report(results, names)
    with atomic_write(out / "invariance.md", "w") as f:
        f.write(report)
    print("\n" + report)
    if plot_available():
        figures(out, x_test, y_test, trained, results, names, args.seed)
        print(f"figures: {out}/*.png")
    else:
        print(PLOT_HINT)
    print(f"results: {out / 'invariance.json'}, {out / 'invariance.md'}")
    return 0


def _mean(rows, key, **where):
    values = [r[key] for r in rows if all(r[k] == v for k, v in where.items())]
    return float(np.mean(values)) if values else float("nan")


def markdown_report(results, names) -> str:
    single = results["single_layer"]
    layers = ["input", "max pool 2×2", "avg pool 2×2", "avg conv 2×2 s2"]
    cols = [("corruption", "corruption", "{}"), ("fill", "fill", "{}"), ("strength", "strength", "{}")]
    parts = [f"# Invariance of pooling on Fashion-MNIST ({results['settings']['test_images']:,} test images)", "",
             "## 1. One pooling layer, no training: cosine similarity of clean and corrupted images", "",
             format_table(single, cols + [(name, name, "{:.3f}") for name in layers]), ""]
    zero_in, zero_max = _mean(single, "input", fill="zero"), _mean(single, "max pool 2×2", fill="zero")
    max_in, max_max = _mean(single, "input", fill="max"), _mean(single, "max pool 2×2", fill="max")
    zero_avg = _mean(single, "avg pool 2×2", fill="zero")
    parts += [f"Averaged over the zero-valued corruptions, max pooling moves the similarity to the clean image from "
              f"{zero_in:.3f} to {zero_max:.3f} (average pooling: {zero_avg:.3f}): a zero rarely wins a window, so "
              f"masked pixels are {'mostly filtered out' if zero_max > zero_in else 'not filtered out'}. When the same "
              f"pixels take the image's maximum instead, max pooling moves it from {max_in:.3f} to {max_max:.3f}: "
              f"{'the noise now wins the windows and is passed on' if max_max < zero_max else 'it holds up here too'}. "
              "The 2×2 stride-2 convolution with weights 1/4 is the same operation as average pooling, hence the "
              "same numbers.", ""]

    acc_cols = cols + [(name, name, "{:.2%}") for name in names]
    clean = results["clean_accuracy"]
    parts += ["## 2. Trained models: test accuracy under corruption", "",
              "Clean accuracy: " + ", ".join(f"{n} {clean[n]:.2%}" for n in names) + ".", "",
              format_table(results["corrupted_accuracy"], acc_cols), ""]
    drops = {n: clean[n] - _mean(results["corrupted_accuracy"], n, fill="zero") for n in names}
    drops_max = {n: clean[n] - _mean(results["corrupted_accuracy"], n, fill="max") for n in names}
    best, worst = min(drops, key=drops.get), max(drops, key=drops.get)
    parts += [f"Averaged over the zero-valued corruptions, accuracy falls least for {best} "
              f"({drops[best]:.1%} points) and most for {worst} ({drops[worst]:.1%}); with max-valued pixels the falls "
              "are " + ", ".join(f"{n} {drops_max[n]:.1%}" for n in names) + ". None of these models saw a "
              "corrupted image in training.", ""]

    layer_rows = {}
    for row in results["layerwise_similarity"]:
        key = (row["corruption"], row["fill"], row["strength"])
        layer_rows.setdefault(key, {"corruption": key[0], "fill": key[1], "strength": key[2]})
        layer_rows[key][row["model"]] = f"{row['stages'][0][1]:.3f} → {row['stages'][-1][1]:.3f}"
    parts += ["## 2b. Layer by layer: does the corruption propagate?", "",
              "Cosine similarity of clean and corrupted feature maps, after the first convolution → after the last "
              "feature map (before the classifier), each corruption at its middle strength; every layer's value is "
              "in invariance.json.", "",
              format_table(list(layer_rows.values()), cols + [(n, n, "{}") for n in names]), ""]
    last = {}
    for row in results["layerwise_similarity"]:
        last.setdefault(row["model"], []).append(row["stages"][-1][1])
    order = sorted(last, key=lambda n: -np.mean(last[n]))
    sentence = ("Mean similarity of the last feature map, over all corruptions: "
                + ", ".join(f"{n} {np.mean(last[n]):.3f}" for n in order) + ".")
    if {"maxpool", "nopool"} <= set(last):
        holds = np.mean(last["maxpool"]) > np.mean(last["nopool"])
        sentence += (f" With max pooling between the convolutions the last map keeps {np.mean(last['maxpool']):.3f} of "
                     f"its similarity to the clean one, without pooling {np.mean(last['nopool']):.3f}: the claim that "
                     f"pooling stops the corruption from propagating {'holds' if holds else 'does not hold'} here.")
    parts += [sentence, ""]

    parts += ["## 3. Shifts", "", "Accuracy, averaged over shifts right, left, down and up by the same number of "
              "pixels (zero fill):", "",
              format_table(results["shift_accuracy"], [("shift (px)", "shift", "{}")] + [(n, n, "{:.2%}") for n in names]),
              "", "Shift consistency (Zhang 2019): the fraction of test images with the same predicted class for "
              "two random shifts in [−s, s]²:", "",
              format_table(results["shift_consistency"], [("s", "max_shift", "{}")] + [(n, n, "{:.2%}") for n in names]),
              ""]
    cons = {n: _mean(results["shift_consistency"], n) for n in names}
    most = max(cons, key=cons.get)
    parts += [f"{most} is the most consistent ({cons[most]:.1%} on average over s = 1, 2, 3)"
              + (f"; blurpool against maxpool: {cons['blurpool']:.1%} vs {cons['maxpool']:.1%}, at clean accuracy "
                 f"{clean['blurpool']:.2%} vs {clean['maxpool']:.2%}" if {"blurpool", "maxpool"} <= set(cons) else "")
              + ".", ""]
    return "\n".join(parts)


def figures(out, x_test, y_test, trained, results, names, seed):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    image = x_test[np.flatnonzero(y_test == 0)[0]][None]             # the first T-shirt of the test set
    shown = [("clean", image), ("30% random, zero", random_mask(image, 0.3, seed)),
             ("30% random, max", random_mask(image, 0.3, seed, "max")), ("lines every 4", line_mask(image, "vertical", 4)),
             ("grid every 4, zero", grid_mask(image, 4)), ("grid every 4, max", grid_mask(image, 4, fill="max"))]
    fig, axes = plt.subplots(2, len(shown), figsize=(2.2 * len(shown), 4.6))
    for k, (title, img) in enumerate(shown):
        pooled = F.max_pool2d(mc.Tensor(img[:, None].astype(np.float32)), 2).numpy()[0, 0]
        axes[0, k].imshow(img[0], cmap="gray")
        axes[0, k].set_title(title, fontsize=8)
        axes[1, k].imshow(pooled, cmap="gray")
        axes[1, k].set_title("max-pooled", fontsize=8)
    for ax in axes.flat:
        ax.axis("off")
    save_figure(fig, out / "corruptions.png")

    pair = [n for n in ("maxpool", "nopool") if n in trained]
    if pair:
        corrupted = grid_mask(image, 4)
        fig, axes = plt.subplots(2 * len(pair), 6, figsize=(12, 4.2 * len(pair)))
        axes = np.atleast_2d(axes)
        for k, name in enumerate(pair):
            stage = 2 if name != "nopool" else 1                          # after the first pooling, or the first ReLU
            outputs = [feature_maps(trained[name], normalize(img))[stage] for img in (image, corrupted)]
            layer = outputs[0][0].replace(":", " (") + ")"                    # e.g. "2 (MaxPool2d)"
            top = max(float(maps[1][0].max()) for maps in outputs)          # one colour scale for a model's maps
            for r, (label, (_, maps)) in enumerate(zip(("clean", "grid-masked"), outputs)):
                for c in range(6):
                    ax = axes[2 * k + r, c]
                    shown_map = ax.imshow(maps[0][c], cmap="viridis", vmin=0, vmax=top)
                    ax.set_title(f"channel {c}", fontsize=7)
                    ax.axis("off")
                axes[2 * k + r, 0].annotate(f"{name}\nafter layer {layer}\n{label}", xy=(-0.08, 0.5),
                                            xycoords="axes fraction", ha="right", va="center", fontsize=8)
                fig.colorbar(shown_map, ax=list(axes[2 * k + r]), shrink=0.8, label="activation")
        save_figure(fig, out / "feature_maps.png")

    rows = results["corrupted_accuracy"]
    fig, axes = plt.subplots(len(FILLS), len(CORRUPTIONS), figsize=(4 * len(CORRUPTIONS), 3.6 * len(FILLS)), squeeze=False,
                             layout="constrained")
    for i, fill in enumerate(FILLS):
        for j, (kind, (_, strengths)) in enumerate(CORRUPTIONS.items()):
            ax = axes[i, j]
            for name in names:
                ax.plot(range(len(strengths)), [100 * r[name] for r in rows if r["corruption"] == kind and r["fill"] == fill],
                        marker="o", label=name)
            ax.set_xticks(range(len(strengths)), [str(s) for s in strengths])
            unit = STRENGTH_UNITS[kind] + (" (smaller is stronger)" if STRENGTH_UNITS[kind] == "spacing" else "")
            ax.set(title=f"{kind}, fill={fill}", xlabel=unit, ylabel="test accuracy (%)")
            ax.grid(alpha=0.3)
    axes[0, 0].legend(fontsize=8)
    save_figure(fig, out / "accuracy_vs_strength.png")

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 4), layout="constrained")
    for name in names:
        ax1.plot(SHIFTS, [100 * r[name] for r in results["shift_accuracy"]], marker="o", label=name)
        ax2.plot(CONSISTENCY_SHIFTS, [100 * r[name] for r in results["shift_consistency"]], marker="o", label=name)
    ax1.set(xlabel="shift (pixels)", ylabel="test accuracy (%)", title="accuracy against shift")
    ax2.set(xlabel="s: shifts drawn from [−s, s]²", ylabel="consistency (%)", title="shift consistency (Zhang 2019)")
    for ax in (ax1, ax2):
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    save_figure(fig, out / "accuracy_vs_shift.png")


if __name__ == "__main__":
    sys.exit(main())
