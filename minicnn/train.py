"""Training and evaluation loops: ``fit`` and ``evaluate``, with tqdm progress bars and resumable checkpoints.

One training step is the whole story of the library in four lines::

    loss = F.cross_entropy(model(Tensor(images)), labels)   # forward: layers → ops → kernels
    optimizer.zero_grad()                                   # forget the last step's gradients
    loss.backward()                                         # backward: the graph walked in reverse
    optimizer.step()                                        # parameters move against their gradients

``fit`` repeats it over epochs and adds what a real run needs: a running loss and accuracy on a tqdm bar, one
line per epoch with the test figures, a checkpoint after every epoch, and a clean stop on Ctrl-C. The first
Ctrl-C asks the loop to stop after the current batch; it then writes a checkpoint and returns with
``interrupted=True``. A checkpoint holds everything needed to continue exactly: the parameters, the
optimizer's buffers, where in which epoch the run stopped, the running sums and minicnn's random state.
Since a ``DataLoader``'s order depends only on its seed and the epoch, ``fit(..., resume=checkpoint)``
continues with the very batches the uninterrupted run would have used, to the same final numbers.
"""
from __future__ import annotations

import contextlib
import json
import math
import signal
import threading
import time
from dataclasses import dataclass, field

import numpy as np

from . import functional as F
from . import random as mc_random
from .autograd import no_grad
from .serialization import load, save
from .tensor import Tensor

__all__ = ["evaluate", "fit", "FitResult", "cosine_schedule", "stop_on_interrupt"]


def evaluate(model, loader) -> tuple[float, float]:
    """Mean cross-entropy loss and accuracy (a fraction) of ``model`` over ``loader``, in eval mode, no graph."""
    was_training = model.training
    model.eval()
    loss_sum, correct, seen = 0.0, 0, 0
    try:
        with no_grad():
            for images, labels in loader.batches(0):
                logits = model(Tensor(images))
                loss_sum += F.cross_entropy(logits, labels).item() * len(labels)
                correct += int(np.sum(logits.data.argmax(axis=1) == labels))
                seen += len(labels)
    finally:
        model.train(was_training)
    return loss_sum / seen, correct / seen


def cosine_schedule(lr: float, epochs: int):
    """Learning rate of epoch e (0-based), annealed from ``lr`` towards 0 along half a cosine over ``epochs``."""
    return lambda epoch: lr * 0.5 * (1.0 + math.cos(math.pi * epoch / epochs))


@contextlib.contextmanager
def stop_on_interrupt():
    """While active, the first Ctrl-C (or SIGTERM, what ``kill`` and job schedulers send) only sets a flag (the
    yielded ``threading.Event``); a second one stops at once with ``KeyboardInterrupt``. Outside the main
    thread it yields a flag that nothing sets."""
    flag = threading.Event()
    if threading.current_thread() is not threading.main_thread():
        yield flag
        return

    def handler(signum, frame):
        if flag.is_set():
            raise KeyboardInterrupt
        flag.set()

    previous = signal.signal(signal.SIGINT, handler), signal.signal(signal.SIGTERM, handler)
    try:
        yield flag
    finally:
        signal.signal(signal.SIGINT, previous[0])
        signal.signal(signal.SIGTERM, previous[1])


@dataclass
class FitResult:
    """What ``fit`` returns: one dict per finished epoch, and whether the run stopped early."""
    history: list = field(default_factory=list)
    interrupted: bool = False


def _checkpoint(model, optimizer, epoch, batch, running, history, finished) -> dict:
    return {"model": model.state_dict(), "optimizer": optimizer.state_dict(), "epoch": epoch, "batch": batch,
            "running": dict(running), "history_json": json.dumps(history),
            "rng_json": json.dumps(mc_random.get_state()), "finished": finished}


def fit(model, optimizer, train_loader, test_loader=None, epochs: int = 1, *, checkpoint=None, resume=None,
        lr_schedule=None, progress: bool = True, desc: str = "", log=None, should_stop=None) -> FitResult:
    """Train ``model`` for ``epochs`` epochs.

    Args:
        model, optimizer: what to train and how.
        train_loader, test_loader: ``minicnn.data.DataLoader``s; the test set is evaluated after every epoch.
        checkpoint: a path; the run's state is saved there after every epoch and when interrupted.
        resume: a path (or a dict loaded from one) written by an earlier ``fit``; training continues from it.
        lr_schedule: optional function epoch → learning rate, applied at the start of each epoch.
        progress: show tqdm bars and one line per epoch.
        desc: a label for the bars (the model's name).
        log: where the per-epoch lines go (default: ``tqdm.write``).
        should_stop: optional function checked after every batch; True stops the run as Ctrl-C does.
    Returns:
        FitResult(history, interrupted). Each history entry holds epoch, train_loss, train_accuracy,
        test_loss, test_accuracy, seconds (time spent in training steps), images_per_second (training images
        per second of those steps) and wall_seconds (the whole epoch, evaluation included).
    """
    from tqdm.auto import tqdm

    log = log or tqdm.write
    epoch, start_batch, history = 0, 0, []
    running = {"loss_sum": 0.0, "correct": 0, "seen": 0, "seconds": 0.0, "wall_seconds": 0.0}
    if resume is not None:
        state = load(resume) if not isinstance(resume, dict) else resume
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        epoch, start_batch = int(state["epoch"]), int(state["batch"])
        running = {k: state["running"][k] for k in running}
        history = json.loads(state["history_json"])
        mc_random.set_state(json.loads(state["rng_json"]))
    model.train()
    with stop_on_interrupt() as interrupt:
        while epoch < epochs:
            if lr_schedule is not None:
                optimizer.lr = lr_schedule(epoch)
            bar = tqdm(total=len(train_loader), initial=start_batch, desc=f"{desc} epoch {epoch + 1}/{epochs}",
                       leave=False, disable=None if progress else True,  # None: bars only on a terminal
                       unit="batch", dynamic_ncols=True)
            batch, epoch_started = start_batch, time.perf_counter()
            for images, labels in train_loader.batches(epoch, start_batch):
                started = time.perf_counter()
                logits = model(Tensor(images))
                loss = F.cross_entropy(logits, labels)
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
                running["seconds"] += time.perf_counter() - started
                running["loss_sum"] += loss.item() * len(labels)
                running["correct"] += int(np.sum(logits.data.argmax(axis=1) == labels))
                running["seen"] += len(labels)
                batch += 1
                bar.update(1)
                bar.set_postfix(loss=f"{running['loss_sum'] / running['seen']:.4f}",
                                acc=f"{running['correct'] / running['seen']:.2%}", refresh=False)
                if interrupt.is_set() or (should_stop is not None and should_stop()):
                    bar.close()
                    running["wall_seconds"] += time.perf_counter() - epoch_started
                    if checkpoint is not None:
                        save(_checkpoint(model, optimizer, epoch, batch, running, history, False), checkpoint)
                    return FitResult(history, interrupted=True)
            bar.close()
            record = {"epoch": epoch + 1,
                      "train_loss": running["loss_sum"] / running["seen"],
                      "train_accuracy": running["correct"] / running["seen"],
                      "seconds": running["seconds"],
                      "images_per_second": running["seen"] / running["seconds"]}
            if test_loader is not None:
                record["test_loss"], record["test_accuracy"] = evaluate(model, test_loader)
                if interrupt.is_set():                   # Ctrl-C during the evaluation: stop, keep the epoch
                    running["wall_seconds"] += time.perf_counter() - epoch_started
                    if checkpoint is not None:
                        save(_checkpoint(model, optimizer, epoch, batch, running, history, False), checkpoint)
                    return FitResult(history, interrupted=True)
            record["wall_seconds"] = running["wall_seconds"] + time.perf_counter() - epoch_started
            history.append(record)
            if progress:
                test = (f"  test loss {record['test_loss']:.4f} acc {record['test_accuracy']:.2%}"
                        if test_loader is not None else "")
                log(f"{desc} epoch {epoch + 1}/{epochs}  train loss {record['train_loss']:.4f} "
                    f"acc {record['train_accuracy']:.2%}{test}  {record['seconds']:.1f} s "
                    f"({record['images_per_second']:,.0f} img/s)")
            epoch, start_batch = epoch + 1, 0
            running = {"loss_sum": 0.0, "correct": 0, "seen": 0, "seconds": 0.0, "wall_seconds": 0.0}
            if checkpoint is not None:
                save(_checkpoint(model, optimizer, epoch, 0, running, history, epoch >= epochs), checkpoint)
    return FitResult(history, interrupted=False)
