"""Train LeNet-style pyramids on Fashion-MNIST and compare how they downsample: max pooling, average pooling,
or strided convolutions (same 61,706 parameters, the same recipe, the same seed).

    python examples/train_fashion.py                          # maxpool, avgpool, strided; 5 epochs of SGD
    python examples/train_fashion.py --models all --limit 2000 --epochs 1     # a quick try of all five
    python examples/train_fashion.py --models maxpool --epochs 30 --optimizer adam --schedule cosine --augment
    python examples/train_fashion.py --resume runs/20261122-101500             # continue after Ctrl-C

Writes under --out (default runs/<timestamp>): results.json and results.csv (per model, per epoch),
<model>.npz checkpoints, config.json (the settings), and curves.png when matplotlib is installed.
Ctrl-C stops after the current batch and saves everything; --resume DIR continues to the same final numbers.
"""
import argparse
import json
import math
import sys
import time
from functools import partial
from pathlib import Path

import minicnn as mc
from minicnn import models, nn, optim
from minicnn.data import CorruptFileError, DataLoader, DataNotFoundError, load_fashion_mnist
from minicnn.data.transforms import random_shift_flip
from minicnn.report import PLOT_HINT, format_table, plot_curves, write_csv, write_json
from minicnn.serialization import remove_stale_temporaries
from minicnn.summary import layer_table, summary
from minicnn.train import cosine_schedule, fit

DEFAULT_MODELS = "maxpool,avgpool,strided"
SETTINGS = ("models", "epochs", "batch_size", "lr", "weight_decay", "optimizer", "schedule", "augment", "max_shift",
            "seed", "limit")


def _number(kind, low, name, above=False):
    """An argparse type: a ``kind`` (int or float) that is finite and at least ``low`` (more than ``low`` when
    ``above``), else a one-line error."""
    def parse(text):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {'an integer' if kind is int else 'a number'}, "
                                             f"got {text!r}") from None
        if not math.isfinite(value) or value < low or (above and value == low):
            raise argparse.ArgumentTypeError(f"must be a finite number {'>' if above else '≥'} {low}, got {text}")
        return value
    parse.__name__ = name
    return parse


positive_int, non_negative_int = _number(int, 1, "positive int"), _number(int, 0, "non-negative int")
positive_float, non_negative_float = _number(float, 0, "positive number", above=True), _number(float, 0, "number")


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--models", default=DEFAULT_MODELS,
                   help=f"comma-separated names from {', '.join(models.MODELS)}, or 'all' (default: %(default)s)")
    p.add_argument("--epochs", type=positive_int, default=5)
    p.add_argument("--batch-size", type=positive_int, default=64)
    p.add_argument("--lr", type=positive_float, default=None,
                   help="learning rate (default: 0.01 for sgd, 0.001 for adam)")
    p.add_argument("--optimizer", choices=("sgd", "adam"), default="sgd", help="sgd uses momentum 0.9")
    p.add_argument("--schedule", choices=("constant", "cosine"), default="constant",
                   help="learning rate over epochs: constant, or cosine annealing towards 0")
    p.add_argument("--weight-decay", type=non_negative_float, default=0.0, help="L2 penalty added to the gradients")
    p.add_argument("--augment", action="store_true",
                   help="random left-right flips and shifts of up to --max-shift pixels while training")
    p.add_argument("--max-shift", type=non_negative_int, default=1, help="largest shift of --augment, in pixels")
    p.add_argument("--seed", type=non_negative_int, default=0, help="fixes initial weights and the order of batches")
    p.add_argument("--limit", type=positive_int, default=None, help="train on the first N training images only")
    p.add_argument("--data-dir", default=None, help="folder holding the four Fashion-MNIST .gz files")
    p.add_argument("--out", default=None, help="output folder (default: runs/<timestamp>)")
    p.add_argument("--resume", default=None, metavar="DIR", help="continue the run saved in DIR with its settings")
    p.add_argument("--engine", choices=mc.engine.ENGINES, default=None,
                   help="which engine runs the ops (default: $MINICNN_ENGINE, else fast)")
    p.add_argument("--quiet", action="store_true", help="no progress bars, no per-epoch lines, no summaries")
    args = p.parse_args(argv)
    if args.lr is None:
        args.lr = 0.01 if args.optimizer == "sgd" else 0.001
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.resume:                                    # the saved run's settings win, so it ends as it would have
        out = Path(args.resume)
        try:
            saved = json.loads((out / "config.json").read_text())
            for key in SETTINGS:
                setattr(args, key, saved[key])
        except (OSError, ValueError, KeyError) as error:
            print(f"--resume {out}: cannot read its settings from {out / 'config.json'} "
                  f"({type(error).__name__}: {error}); nothing to resume", file=sys.stderr)
            return 2
        removed = remove_stale_temporaries(out)
        if removed:
            print(f"removed {len(removed)} unfinished temporary file(s) of an interrupted run: {', '.join(removed)}")
    else:
        try:
            out = _new_run_folder(args.out)
        except FileExistsError as error:
            print(error, file=sys.stderr)
            return 2
    names = list(models.MODELS) if args.models == "all" else args.models.split(",")
    for name in names:
        if name not in models.MODELS:
            print(f"--models: unknown model {name!r}; choose from {', '.join(models.MODELS)} or 'all'", file=sys.stderr)
            return 2
    write_json({key: getattr(args, key) for key in SETTINGS}, out / "config.json")

    try:
        x_train, y_train, x_test, y_test = load_fashion_mnist(args.data_dir, progress=not args.quiet)
    except (DataNotFoundError, CorruptFileError) as error:
        print(error, file=sys.stderr)
        return 1
    if args.limit:
        x_train, y_train = x_train[:args.limit], y_train[:args.limit]
    train_loader = DataLoader(x_train, y_train, args.batch_size, shuffle=True, seed=args.seed,
                              augment=partial(random_shift_flip, max_shift=args.max_shift) if args.augment else None)
    test_loader = DataLoader(x_test, y_test, 1000)
    if args.engine:
        mc.use_engine(args.engine)
    print(f"Fashion-MNIST: {len(x_train):,} training and {len(x_test):,} test images. Engine: {mc.engine_name()}. "
          f"Output: {out}/")

    rows, per_epoch, histories = [], [], {}
    for name in names:
        mc.manual_seed(args.seed)                      # each model starts from the same seed: a controlled comparison
        model = nn.fuse(models.build(name))           # Conv2d+ReLU and Linear+ReLU as one op each (see the table)
        make = optim.SGD if args.optimizer == "sgd" else optim.Adam
        optimizer = make(model.parameters(), lr=args.lr, weight_decay=args.weight_decay,
                         **({"momentum": 0.9} if args.optimizer == "sgd" else {}))
        checkpoint = out / f"{name}.npz"
        resume = mc.load(checkpoint) if args.resume and checkpoint.exists() else None
        if resume is not None and resume["finished"]:
            model.load_state_dict(resume["model"])
            history = json.loads(resume["history_json"])
            print(f"{name}: already trained in {out}/, kept")
        else:
            if not args.quiet:
                print(f"\n{name}" + (" (resumed)" if resume is not None else ""))
                print(summary(model))
            result = fit(model, optimizer, train_loader, test_loader, args.epochs, checkpoint=checkpoint,
                         resume=resume, progress=not args.quiet, desc=name,
                         lr_schedule=cosine_schedule(args.lr, args.epochs) if args.schedule == "cosine" else None)
            history = result.history
            if result.interrupted:
                _write_results(out, args, rows, per_epoch + _epochs(name, history))
                print(f"\nInterrupted: {name}'s checkpoint and the results so far are saved in {out}/.\n"
                      f"Continue with: python examples/train_fashion.py --resume {out}")
                return 130
        histories[name] = history
        per_epoch += _epochs(name, history)
        rows.append(_summary_row(name, model, history))
        _write_results(out, args, rows, per_epoch)

    print("\n" + format_table(rows, TABLE))
    if plot_curves(histories, out / "curves.png"):
        print(f"figure: {out / 'curves.png'}")
    else:
        print(PLOT_HINT)
    print(f"results: {out / 'results.json'}, {out / 'results.csv'}")
    return 0


def _new_run_folder(named):
    """The run's folder, made here and now: ``--out`` if given (refused if it holds a run already), else
    ``runs/<timestamp>``, with ``-2``, ``-3``, ... when another run took that name in the same second."""
    if named:
        out = Path(named)
        if (out / "config.json").exists():
            raise FileExistsError(f"--out {out}: it holds a run already; continue it with --resume {out}, "
                                  "or name another folder")
        out.mkdir(parents=True, exist_ok=True)
        return out
    stamp = Path("runs") / time.strftime("%Y%m%d-%H%M%S")
    stamp.parent.mkdir(parents=True, exist_ok=True)
    for k in range(1, 1000):
        out = stamp if k == 1 else stamp.with_name(f"{stamp.name}-{k}")
        try:
            out.mkdir()                                # exclusive: fails if another run made it first
            return out
        except FileExistsError:
            continue
    raise FileExistsError(f"{stamp}: a thousand runs started this second; name a folder with --out")


TABLE = [("model", "model", "{}"), ("params", "params", "{:,}"), ("mult-adds/img", "macs", "{:,}"),
         ("train img/s", "images_per_second", "{:,.0f}"), ("wall time (s)", "wall_seconds", "{:.0f}"),
         ("final test acc", "final_test_accuracy", "{:.2%}"), ("best test acc", "best_test_accuracy", "{:.2%}"),
         ("test loss", "final_test_loss", "{:.4f}")]


def _epochs(name, history):
    return [{"model": name, **record} for record in history]


def _summary_row(name, model, history):
    table = layer_table(model, (1, 28, 28))
    train_seconds = sum(h["seconds"] for h in history)
    images = sum(h["seconds"] * h["images_per_second"] for h in history)
    return {"model": name, "params": sum(r["params"] for r in table), "macs": sum(r["macs"] for r in table),
            "images_per_second": images / train_seconds if train_seconds else None,
            "wall_seconds": sum(h["wall_seconds"] for h in history),
            "final_test_accuracy": history[-1]["test_accuracy"] if history else None,
            "best_test_accuracy": max(h["test_accuracy"] for h in history) if history else None,
            "final_test_loss": history[-1]["test_loss"] if history else None}


def _write_results(out, args, rows, per_epoch):
    settings = {key: getattr(args, key) for key in SETTINGS}
    write_json({"settings": settings, "summary": rows, "epochs": per_epoch}, out / "results.json")
    write_csv(per_epoch, out / "results.csv")


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:           # before fit, or a second Ctrl-C inside it: stop now, in one line
        print("\nStopped at once; the checkpoints written before are kept (continue with --resume DIR).",
              file=sys.stderr)
        sys.exit(130)
