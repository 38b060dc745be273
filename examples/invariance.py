"""What does pooling buy? Invariance to masked pixels, to noise of the other sign, and to small shifts, measured
on the whole Fashion-MNIST test set, over several seeds of training.

    python examples/invariance.py                                   # trains what it needs (3 seeds), then measures
    python examples/invariance.py --checkpoints runs/20261122-101500  # reuse train_fashion.py's models (their seed)
    python examples/invariance.py --seeds 0 --limit 500             # a quick try: one seed, 500 images

Three experiments, reported in this order (on the terminal as each finishes, then in invariance.md):
  1. one pooling layer, no training: cosine similarity of clean and corrupted images before and after
     MaxPool2d(2), AvgPool2d(2) and a 2×2 stride-2 convolution with fixed averaging weights;
  2. trained models (maxpool, avgpool, strided, nopool, blurpool), each trained once per seed: test accuracy
     under each corruption, and (2b) the similarity of clean and corrupted feature maps after every layer;
  3. shifts: accuracy against a shift of 0-4 pixels, and Zhang's (2019) shift consistency.

Every figure of a trained model is a mean over the seeds with its standard deviation (``87.6 ± 0.4``); a
comparison says whether the difference is larger than the two spreads together, and every sentence of the
report is made from the numbers it sits under, so it says what they show, also where they disagree with the
pooling texts. The corruptions are drawn with the first seed, so only training differs between seeds.

The models are trained with train_fashion.py's default recipe (SGD 0.01, momentum 0.9, batch 64, 5 epochs).
``--checkpoints RUN`` (repeatable) reuses a train_fashion.py run whose config.json shows that recipe, for the
seed it was trained with; the others are trained here and kept in ``--out``/checkpoints/.

Writes invariance.json (every seed's numbers), invariance.md and, with matplotlib, corruptions.png,
feature_maps.png, accuracy_vs_strength.png and accuracy_vs_shift.png under --out.
"""
import argparse
import json
import sys
from pathlib import Path

import numpy as np

import minicnn as mc
import minicnn.functional as F
from minicnn import models, nn, optim
from minicnn.data import CorruptFileError, DataLoader, DataNotFoundError, load_fashion_mnist, normalize
from minicnn.data.transforms import grid_mask, line_mask, random_mask, shift
from minicnn.metrics import cosine_similarity, feature_maps, predict, shift_consistency
from minicnn.report import PLOT_HINT, format_table, plot_available, save_figure, write_json
from minicnn.serialization import atomic_write
from minicnn.train import fit

DEFAULT_MODELS = "maxpool,avgpool,strided,nopool,blurpool"
POOLED, UNPOOLED = ("maxpool", "avgpool", "blurpool"), ("strided", "nopool")
# corruption name → (function of (images, strength, fill, seed), strengths)
CORRUPTIONS = {
    "random pixels": (lambda x, s, fill, seed: random_mask(x, s, seed, fill), [0.1, 0.2, 0.3, 0.4, 0.5]),
    "vertical lines": (lambda x, s, fill, seed: line_mask(x, "vertical", s, 1, fill), [8, 4, 3, 2]),
    "horizontal lines": (lambda x, s, fill, seed: line_mask(x, "horizontal", s, 1, fill), [8, 4, 3, 2]),
    "grid": (lambda x, s, fill, seed: grid_mask(x, s, 1, fill), [8, 4, 3, 2]),
}
FILLS = ("zero", "max")
SHIFTS = [0, 1, 2, 3, 4]
CONSISTENCY_SHIFTS = [1, 2, 3]
#: train_fashion.py's default recipe, which every model here is trained with.
RECIPE = {"epochs": 5, "batch_size": 64, "lr": 0.01, "optimizer": "sgd", "schedule": "constant",
          "weight_decay": 0.0, "augment": False}
UNITS = ("For random pixels the amount is the fraction of pixels changed; for lines and grids it is their spacing, "
         "so there a *smaller* number is a *stronger* corruption (a line every 2nd column changes half the pixels, "
         "every 8th an eighth).")


def amount(kind, strength) -> str:
    """The strength of a corruption in words: a fraction for random pixels, a spacing for lines and grids."""
    if kind == "random pixels":
        return f"{strength:.0%} of pixels"
    where = {"vertical lines": "column", "horizontal lines": "row", "grid": "row and column"}[kind]
    return f"every {strength}th {where}" if strength > 3 else f"every {['', '', '2nd', '3rd'][strength]} {where}"


def seed_list(text):
    try:
        seeds = [int(s) for s in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}") from None
    if not seeds or min(seeds) < 0 or len(set(seeds)) != len(seeds):
        raise argparse.ArgumentTypeError(f"expected distinct non-negative integers, got {text!r}")
    return seeds


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--models", default=DEFAULT_MODELS, help="comma-separated model names (default: %(default)s)")
    p.add_argument("--seeds", type=seed_list, default=[0, 1, 2],
                   help="training seeds, comma-separated (default: 0,1,2; the spreads need at least 3)")
    p.add_argument("--checkpoints", action="append", default=[], metavar="RUN",
                   help="a train_fashion.py run folder whose models to reuse (repeatable)")
    p.add_argument("--out", default="runs/invariance", help="output folder (default: %(default)s)")
    p.add_argument("--limit", type=int, default=None, help="use the first N training and N test images only")
    p.add_argument("--data-dir", default=None)
    return p.parse_args(argv)


# --- the models -------------------------------------------------------------------------------------------------

def reusable_runs(folders, limit):
    """{seed: run folder} of the train_fashion.py runs given, those trained with RECIPE on the same images."""
    runs = {}
    for folder in folders:
        config = Path(folder) / "config.json"
        try:
            settings = json.loads(config.read_text())
        except (OSError, ValueError) as error:
            raise SystemExit(f"--checkpoints {folder}: cannot read its settings ({error})")
        settings = settings.get("settings", settings)
        differs = [k for k, v in RECIPE.items() if settings.get(k) != v] + (["limit"] if settings.get("limit") != limit else [])
        if differs:
            print(f"--checkpoints {folder}: not the recipe of this lab ({', '.join(differs)} differ); not used")
            continue
        runs.setdefault(int(settings["seed"]), folder)
    return runs


def load_or_train(name, seed, runs, own, x_train, y_train):
    """(model, where it came from): a finished checkpoint of a reusable run or of our own, else trained now with
    RECIPE (resumed if our own checkpoint is unfinished) and kept in ``own``."""
    mc.manual_seed(seed)
    model = models.build(name)
    for path in ([Path(runs[seed]) / f"{name}.npz"] if seed in runs else []) + [own / f"{name}.npz"]:
        if path.exists():
            state = mc.load(path)
            if bool(state.get("finished", state["epoch"] >= RECIPE["epochs"])):
                model.load_state_dict(state["model"])
                return model, str(path)
    fused = nn.fuse(model)                      # trains faster; shares its parameters with ``model``
    opt = optim.SGD(fused.parameters(), lr=RECIPE["lr"], momentum=0.9)
    checkpoint = own / f"{name}.npz"
    resume = mc.load(checkpoint) if checkpoint.exists() else None
    own.mkdir(parents=True, exist_ok=True)
    result = fit(fused, opt, DataLoader(x_train, y_train, RECIPE["batch_size"], shuffle=True, seed=seed), None,
                 RECIPE["epochs"], checkpoint=checkpoint, resume=resume, progress=True, desc=f"{name} seed {seed}")
    if result.interrupted:
        raise KeyboardInterrupt
    return model, f"trained here ({checkpoint})"


# --- statistics over seeds --------------------------------------------------------------------------------------

def mean_sd(values):
    values = np.asarray(values, dtype=np.float64)
    return float(values.mean()), float(values.std(ddof=1)) if len(values) > 1 else 0.0


def pm(values, scale=100.0, digits=1) -> str:
    """'mean ± sd' of per-seed values (percent by default)."""
    mean, sd = mean_sd(values)
    return f"{mean * scale:.{digits}f} ± {sd * scale:.{digits}f}"


def compare(a, b) -> int:
    """+1 when per-seed values ``a`` are above ``b`` by more than their two standard deviations together, −1 when
    below by as much, 0 when the difference is within the spread of the seeds."""
    (ma, sa), (mb, sb) = mean_sd(a), mean_sd(b)
    return 0 if abs(ma - mb) <= sa + sb else (1 if ma > mb else -1)


def within(a, b) -> str:
    return "beyond the seeds' spread" if compare(a, b) else "within the seeds' spread"


def pooled_against_unpooled(values, names):
    """(the pooled network with the lowest mean, the unpooled one with the highest, the comparison of the two:
    ``compare``), or None when ``names`` lacks either kind: the pair that decides whether pooling separates them."""
    pooled = [n for n in POOLED if n in names]
    unpooled = [n for n in UNPOOLED if n in names]
    if not pooled or not unpooled:
        return None
    worst_pooled = min(pooled, key=lambda n: np.mean(values[n]))
    best_unpooled = max(unpooled, key=lambda n: np.mean(values[n]))
    return worst_pooled, best_unpooled, compare(values[worst_pooled], values[best_unpooled])


# --- the experiments --------------------------------------------------------------------------------------------

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
                    row = {"corruption": kind, "fill": fill, "strength": strength, "amount": amount(kind, strength)}
                    row.update({name: cosine_similarity(clean_out[name], layer(bad)) for name, layer in layers.items()})
                    rows.append(row)
    return rows


def _mean(rows, key, **where):
    values = [r[key] for r in rows if all(r[k] == v for k, v in where.items())]
    return float(np.mean(values)) if values else float("nan")


def report_single_layer(rows, images) -> str:
    layers = ["input", "max pool 2×2", "avg pool 2×2", "avg conv 2×2 s2"]
    z = {layer: _mean(rows, layer, fill="zero") for layer in layers}
    m = {layer: _mean(rows, layer, fill="max") for layer in layers}
    filters = z["max pool 2×2"] > z["input"]
    best_zero = "max" if z["max pool 2×2"] > z["avg pool 2×2"] else "average"
    passes = m["max pool 2×2"] <= m["input"] + 0.01
    text = (f"Averaged over the zero-valued corruptions, max pooling moves the similarity to the clean image from "
            f"{z['input']:.3f} to {z['max pool 2×2']:.3f}, average pooling to {z['avg pool 2×2']:.3f}: "
            + ("a zero rarely wins a window, so masked pixels are mostly filtered out, and "
               if filters else "masked pixels are not filtered out, and ")
            + f"{best_zero} pooling keeps more of the image. When the same pixels take the image's maximum instead, "
            f"max pooling moves it from {m['input']:.3f} to {m['max pool 2×2']:.3f} (average pooling "
            f"{m['avg pool 2×2']:.3f}): "
            + ("the bright pixels now win the windows and pass through, so what max pooling ignores is zeros, "
               "not corruption." if passes else "it holds up against bright pixels too.")
            + " The 2×2 stride-2 convolution with weights 1/4 is average pooling, hence the same numbers. No training "
            "is involved here, so there is no spread over seeds.")
    return "\n".join([f"## 1. One pooling layer, no training: cosine similarity of clean and corrupted images "
                      f"({images:,} test images)", "", UNITS, "",
                      format_table(rows, [("corruption", "corruption", "{}"), ("fill", "fill", "{}"),
                                          ("amount", "amount", "{}")]
                                   + [(name, name, "{:.3f}") for name in layers]), "", text, ""])


def corrupted_sets(x, seed):
    for kind, (corrupt, strengths) in CORRUPTIONS.items():
        for fill in FILLS:
            for strength in strengths:
                yield kind, fill, strength, corrupt(x, strength, fill, seed)


def report_accuracy(results, names, seeds) -> str:
    clean = results["clean_accuracy"]                       # name → [per seed]
    rows = results["corrupted_accuracy"]                    # each: corruption, fill, strength, name → [per seed]
    table = [{**{k: r[k] for k in ("corruption", "fill")}, "amount": amount(r["corruption"], r["strength"]),
              **{n: pm(r[n]) for n in names}} for r in rows]
    drops = {fill: {n: [clean[n][s] - np.mean([r[n][s] for r in rows if r["fill"] == fill]) for s in range(len(seeds))]
                    for n in names} for fill in FILLS}
    parts = [f"## 2. Trained models: test accuracy under corruption (%, mean ± sd over {len(seeds)} seeds)", "",
             "Clean accuracy: " + ", ".join(f"{n} {pm(clean[n])}" for n in names) + ". None of these models saw a "
             "corrupted image in training. " + UNITS, "",
             format_table(table, [("corruption", "corruption", "{}"), ("fill", "fill", "{}"), ("amount", "amount", "{}")]
                          + [(n, n, "{}") for n in names]), ""]
    for fill, what in (("zero", "zero-valued"), ("max", "maximum-valued (bright)")):
        order = sorted(names, key=lambda n: np.mean(drops[fill][n]))
        parts.append(f"Averaged over the {what} corruptions, accuracy falls by " +
                     ", ".join(f"{n} {pm(drops[fill][n])}" for n in order) + " points (least to most).")
    if {"maxpool", "avgpool"} <= set(names):
        d_max, d_avg = drops["zero"]["maxpool"], drops["zero"]["avgpool"]
        verdict = compare(d_max, d_avg)
        gap = abs(np.mean(d_max) - np.mean(d_avg)) * 100
        if verdict > 0:
            sentence = (f"Under zero masks the trained max-pooling network loses {gap:.1f} points more than the "
                        f"average-pooling one, {within(d_max, d_avg)}: the opposite of what section 1 and the "
                        "pooling texts suggest (one max pooling of an image ignores zeros). Section 2b follows the "
                        "corruption through the layers to see where that is lost.")
        elif verdict < 0:
            sentence = (f"Under zero masks the trained max-pooling network loses {gap:.1f} points less than the "
                        f"average-pooling one, {within(d_max, d_avg)}, as section 1 and the pooling texts suggest.")
        else:
            sentence = (f"Under zero masks the max- and average-pooling networks lose the same within the seeds' "
                        f"spread ({pm(d_max)} and {pm(d_avg)}): the filtering of zeros that section 1 shows for one "
                        "layer does not show in trained networks.")
        parts += ["", sentence]
    return "\n".join(parts + [""])


def report_layers(results, names, seeds) -> str:
    rows = results["layerwise_similarity"]                  # each: corruption, fill, strength, model, per seed stages
    table = {}
    for row in rows:
        key = (row["corruption"], row["fill"], row["strength"])
        entry = table.setdefault(key, {"corruption": key[0], "fill": key[1], "amount": amount(key[0], key[2])})
        first = [stages[0][1] for stages in row["stages"]]
        last = [stages[-1][1] for stages in row["stages"]]
        entry[row["model"]] = f"{np.mean(first):.3f} → {np.mean(last):.3f}"
    last = {n: [np.mean([r["stages"][s][-1][1] for r in rows if r["model"] == n]) for s in range(len(seeds))]
            for n in names}
    order = sorted(names, key=lambda n: -np.mean(last[n]))
    parts = ["## 2b. Layer by layer: does the corruption propagate?", "",
             "Cosine similarity of clean and corrupted feature maps after the first convolution → after the last "
             f"feature map (before the classifier), each corruption at its middle amount, mean over {len(seeds)} "
             "seeds; every layer's value of every seed is in invariance.json.", "",
             format_table(list(table.values()), [("corruption", "corruption", "{}"), ("fill", "fill", "{}"),
                                                 ("amount", "amount", "{}")] + [(n, n, "{}") for n in names]), "",
             "Similarity of the last feature map, over all these corruptions (mean ± sd over seeds): "
             + ", ".join(f"{n} {pm(last[n], 1, 3)}" for n in order) + "."]
    pair = pooled_against_unpooled(last, names)
    if pair:
        worst_pooled, best_unpooled, verdict = pair
        if verdict > 0:
            parts.append(f"Every network with pooling keeps more than every network without (the lowest pooled, "
                         f"{worst_pooled}, above the highest unpooled, {best_unpooled}, {within(last[worst_pooled], last[best_unpooled])}): "
                         "here the claim that pooling stops a corruption from propagating holds.")
        elif np.mean(last[best_unpooled]) > np.mean(last[worst_pooled]):
            parts.append(f"The claim that pooling stops a corruption from propagating does not hold here: "
                         f"{best_unpooled}, with no pooling, keeps {pm(last[best_unpooled], 1, 3)}, more than "
                         f"{worst_pooled} with it ({pm(last[worst_pooled], 1, 3)}; "
                         f"{within(last[best_unpooled], last[worst_pooled])})"
                         + (f", while {order[-1]}, also without pooling, keeps the least ({pm(last[order[-1]], 1, 3)})"
                            if order[-1] in UNPOOLED and order[-1] != best_unpooled else "")
                         + ". What keeps a corruption out is the whole network as trained, not the presence of a "
                         "pooling layer.")
        else:
            parts.append(f"The networks with pooling keep slightly more than those without, but the lowest pooled "
                         f"({worst_pooled}) and the highest unpooled ({best_unpooled}) are within the seeds' spread: "
                         "the claim that pooling stops a corruption from propagating is not shown here.")
    if "maxpool" in names:
        steps, zero_last = [], {n: [[] for _ in seeds] for n in names}
        for r in rows:
            if r["fill"] != "zero":
                continue
            for s, stages in enumerate(r["stages"]):
                zero_last[r["model"]][s].append(stages[-1][1])
                if r["model"] == "maxpool":
                    pool = next(i for i, (label, _) in enumerate(stages) if "MaxPool" in label)
                    steps.append((stages[pool - 1][1], stages[pool][1]))
        zero_last = {n: [np.mean(v) for v in per_seed] for n, per_seed in zero_last.items()}
        before, after = np.mean(steps, axis=0)
        sentence = (f"Inside the trained maxpool network, under zero masks, its first max pooling takes the similarity "
                    f"from {before:.3f} (after the ReLU before it) to {after:.3f}: ")
        filters = after > before + 0.005
        sentence += ("it still filters part of the corruption, as on raw images" if filters else
                     "it no longer filters the corruption as it did on raw images (section 1)")
        if "avgpool" in names:
            lower = compare(zero_last["maxpool"], zero_last["avgpool"]) < 0
            sentence += (f"; yet the similarity of its last feature map is {pm(zero_last['maxpool'], 1, 3)} against "
                         f"avgpool's {pm(zero_last['avgpool'], 1, 3)} ({within(zero_last['maxpool'], zero_last['avgpool'])})"
                         + (": what its later layers let through outweighs what the first pooling filters, which fits "
                            "the accuracy it loses in section 2." if lower and filters else "."))
        else:
            sentence += "."
        parts.append(sentence)
    return "\n".join(parts + [""])


def report_shifts(results, names, seeds) -> str:
    shift_rows = [{"shift": r["shift"], **{n: pm(r[n]) for n in names}} for r in results["shift_accuracy"]]
    cons_rows = [{"max_shift": r["max_shift"], **{n: pm(r[n]) for n in names}} for r in results["shift_consistency"]]
    cons = {n: [np.mean([r[n][s] for r in results["shift_consistency"]]) for s in range(len(seeds))] for n in names}
    parts = [f"## 3. Shifts (%, mean ± sd over {len(seeds)} seeds)", "",
             "Accuracy, averaged over shifts right, left, down and up by the same number of pixels (zero fill):", "",
             format_table(shift_rows, [("shift (px)", "shift", "{}")] + [(n, n, "{}") for n in names]), "",
             "Shift consistency (Zhang 2019): the fraction of test images with the same predicted class for two "
             "random shifts in [−s, s]²:", "",
             format_table(cons_rows, [("s", "max_shift", "{}")] + [(n, n, "{}") for n in names]), ""]
    order = sorted(names, key=lambda n: -np.mean(cons[n]))
    sentence = ("Consistency over s = 1, 2, 3, most to least: " + ", ".join(f"{n} {pm(cons[n])}" for n in order) + ".")
    pair = pooled_against_unpooled(cons, names)
    if pair:
        worst_pooled, best_unpooled, verdict = pair
        sentence += (" Every network with pooling is more consistent than every network without, beyond the seeds' "
                     "spread, as the pooling texts claim." if verdict > 0 else
                     f" Pooling alone does not decide it: {best_unpooled}, without pooling, against {worst_pooled}, "
                     f"with it: {within(cons[best_unpooled], cons[worst_pooled])}.")
    acc = {r["shift"]: {n: np.mean(r[n]) for n in names} for r in results["shift_accuracy"]}
    if 0 in acc and 1 in acc and SHIFTS[-1] in acc:
        lost = lambda k: [100 * (acc[0][n] - acc[k][n]) for n in names]  # noqa: E731
        kept = max([k for k in acc if max(lost(k)) <= 5.0], default=0)      # shifts within 5 points of clean
        sentence += (f" A shift of one pixel costs {min(lost(1)):.1f}–{max(lost(1)):.1f} points of accuracy, "
                     f"{SHIFTS[-1]} pixels {min(lost(SHIFTS[-1])):.1f}–{max(lost(SHIFTS[-1])):.1f}: every network "
                     f"stays within 5 points of its clean accuracy up to {kept} pixel{'' if kept == 1 else 's'}, "
                     "so what pooling buys is invariance to the smallest shifts.")
    if {"blurpool", "maxpool"} <= set(names):
        verdict = compare(cons["blurpool"], cons["maxpool"])
        sentence += (" Blurring before subsampling (blurpool) against max pooling: "
                     + {1: "blurpool is more consistent", -1: "blurpool is less consistent",
                        0: "no difference"}[verdict]
                     + f", {within(cons['blurpool'], cons['maxpool'])}"
                     + (", as Zhang reports." if verdict > 0 else ", unlike Zhang's report on ImageNet."))
    return "\n".join(parts + [sentence, ""])


# --- the run ----------------------------------------------------------------------------------------------------

def main(argv=None) -> int:
    args = parse_args(argv)
    out = Path(args.out)
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
    out.mkdir(parents=True, exist_ok=True)
    seeds, corruption_seed = args.seeds, args.seeds[0]
    if len(seeds) < 3:
        print(f"{len(seeds)} seed(s): the spreads below need at least 3 to mean much")
    results = {"settings": {"models": names, "seeds": seeds, "corruption_seed": corruption_seed,
                            "test_images": len(x_test), "limit": args.limit, "recipe": RECIPE}}
    report = [f"# Invariance of pooling on Fashion-MNIST ({len(x_test):,} test images, {len(seeds)} seeds of training)", ""]

    def section(text):
        report.append(text)
        print("\n" + text, flush=True)

    results["single_layer"] = single_layer_similarities(x_test, corruption_seed)
    section(report_single_layer(results["single_layer"], len(x_test)))

    runs = reusable_runs(args.checkpoints, args.limit)
    own = out / "checkpoints" / (f"limit{args.limit}" if args.limit else "full")
    trained, sources = {}, {}
    try:
        for seed in seeds:
            for name in names:
                trained[name, seed], sources[f"{name} seed {seed}"] = load_or_train(
                    name, seed, runs, own / f"seed{seed}", x_train, y_train)
    except KeyboardInterrupt:
        print(f"\nInterrupted: the checkpoints so far are in {own}/; run the same command again to go on.",
              file=sys.stderr)
        return 130
    results["models"] = sources
    print("\nmodels: " + "; ".join(f"{k}: {v}" for k, v in sources.items()))

    def accuracy(images):                              # name → [accuracy of each seed's model]
        return {n: [float(np.mean(predict(trained[n, s], images) == y_test)) for s in seeds] for n in names}

    results["clean_accuracy"] = accuracy(x_test)
    results["corrupted_accuracy"] = [{"corruption": kind, "fill": fill, "strength": strength, **accuracy(bad)}
                                     for kind, fill, strength, bad in corrupted_sets(x_test, corruption_seed)]
    section(report_accuracy(results, names, seeds))

    sample = x_test[:1000]
    layerwise = []
    for kind, (corrupt, strengths) in CORRUPTIONS.items():
        strength = strengths[len(strengths) // 2]
        for fill in FILLS:
            bad = normalize(corrupt(sample, strength, fill, corruption_seed))
            for name in names:
                per_seed = []
                for seed in seeds:
                    pairs = zip(feature_maps(trained[name, seed], normalize(sample)), feature_maps(trained[name, seed], bad))
                    per_seed.append([(label, cosine_similarity(a, b)) for (label, a), (_, b) in pairs if a.ndim == 4])
                layerwise.append({"corruption": kind, "fill": fill, "strength": strength, "model": name,
                                  "stages": per_seed})
    results["layerwise_similarity"] = layerwise
    section(report_layers(results, names, seeds))

    shift_rows = []
    for s in SHIFTS:
        moves = [(s, 0), (-s, 0), (0, s), (0, -s)] if s else [(0, 0)]
        per_move = [accuracy(shift(x_test, dx, dy)) for dx, dy in moves]
        shift_rows.append({"shift": s, **{n: list(np.mean([m[n] for m in per_move], axis=0)) for n in names}})
    results["shift_accuracy"] = shift_rows
    results["shift_consistency"] = [
        {"max_shift": s, **{n: [shift_consistency(lambda x: predict(trained[n, seed], x), x_test, s, corruption_seed)
                                for seed in seeds] for n in names}} for s in CONSISTENCY_SHIFTS]
    section(report_shifts(results, names, seeds))

    write_json(results, out / "invariance.json")
    with atomic_write(out / "invariance.md", "w") as f:
        f.write("\n".join(report))
    if plot_available():
        figures(out, x_test, y_test, trained, results, names, seeds)
        print(f"figures: {out}/*.png")
    else:
        print(PLOT_HINT)
    print(f"results: {out / 'invariance.json'}, {out / 'invariance.md'}")
    return 0


def figures(out, x_test, y_test, trained, results, names, seeds):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    seed = seeds[0]
    image = x_test[np.flatnonzero(y_test == 0)[0]][None] if (y_test == 0).any() else x_test[:1]   # a T-shirt
    shown = [("clean", image), ("30% random, zero", random_mask(image, 0.3, seed)),
             ("30% random, max", random_mask(image, 0.3, seed, "max")), ("every 4th column", line_mask(image, "vertical", 4)),
             ("grid every 4th, zero", grid_mask(image, 4)), ("grid every 4th, max", grid_mask(image, 4, fill="max"))]
    fig, axes = plt.subplots(2, len(shown), figsize=(2.2 * len(shown), 4.6))
    for k, (title, img) in enumerate(shown):
        pooled = F.max_pool2d(mc.Tensor(img[:, None].astype(np.float32)), 2).numpy()[0, 0]
        axes[0, k].imshow(img[0], cmap="gray", vmin=0, vmax=255)
        axes[0, k].set_title(title, fontsize=8)
        axes[1, k].imshow(pooled, cmap="gray", vmin=0, vmax=255)
        axes[1, k].set_title("after MaxPool2d(2)", fontsize=8)
    for ax in axes.flat:
        ax.axis("off")
    save_figure(fig, out / "corruptions.png")

    pair = [n for n in ("maxpool", "nopool") if n in names]
    if pair:
        corrupted = grid_mask(image, 4)
        fig, axes = plt.subplots(2 * len(pair), 6, figsize=(12, 4.2 * len(pair)))
        axes = np.atleast_2d(axes)
        for k, name in enumerate(pair):
            stage = 2 if name != "nopool" else 1                          # after the first pooling, or the first ReLU
            outputs = [feature_maps(trained[name, seed], normalize(img))[stage] for img in (image, corrupted)]
            layer = outputs[0][0].replace(":", " (") + ")"                    # e.g. "2 (MaxPool2d)"
            top = max(float(maps[1][0].max()) for maps in outputs)          # one colour scale for a model's maps
            for r, (label, (_, maps)) in enumerate(zip(("clean", "grid-masked"), outputs)):
                for c in range(6):
                    ax = axes[2 * k + r, c]
                    shown_map = ax.imshow(maps[0][c], cmap="viridis", vmin=0, vmax=top)
                    ax.set_title(f"channel {c}", fontsize=7)
                    ax.axis("off")
                axes[2 * k + r, 0].annotate(f"{name} (seed {seed})\nafter layer {layer}\n{label}", xy=(-0.08, 0.5),
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
                stats = [mean_sd(r[name]) for r in rows if r["corruption"] == kind and r["fill"] == fill]
                ax.errorbar(range(len(strengths)), [100 * m for m, _ in stats], yerr=[100 * s for _, s in stats],
                            marker="o", capsize=3, label=name)
            ax.set_xticks(range(len(strengths)), [str(s) for s in strengths])
            unit = "fraction masked" if kind == "random pixels" else "spacing (smaller is stronger)"
            ax.set(title=f"{kind}, fill={fill}", xlabel=unit, ylabel="test accuracy (%)")
            ax.grid(alpha=0.3)
    axes[0, 0].legend(fontsize=8, title=f"mean ± sd, {len(seeds)} seeds", title_fontsize=7)
    save_figure(fig, out / "accuracy_vs_strength.png")

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 4), layout="constrained")
    for name in names:
        acc = [mean_sd(r[name]) for r in results["shift_accuracy"]]
        cons = [mean_sd(r[name]) for r in results["shift_consistency"]]
        ax1.errorbar(SHIFTS, [100 * m for m, _ in acc], yerr=[100 * s for _, s in acc], marker="o", capsize=3, label=name)
        ax2.errorbar(CONSISTENCY_SHIFTS, [100 * m for m, _ in cons], yerr=[100 * s for _, s in cons], marker="o",
                     capsize=3, label=name)
    ax1.set_xticks(SHIFTS)
    ax2.set_xticks(CONSISTENCY_SHIFTS)
    ax1.set(xlabel="shift (pixels)", ylabel="test accuracy (%)", title="accuracy against shift")
    ax2.set(xlabel="s: shifts drawn from [−s, s]²", ylabel="consistency (%)", title="shift consistency (Zhang 2019)")
    for ax in (ax1, ax2):
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8, title=f"mean ± sd, {len(seeds)} seeds", title_fontsize=7)
    save_figure(fig, out / "accuracy_vs_shift.png")


if __name__ == "__main__":
    sys.exit(main())
