"""TensorBoard logging of ``keras-gradreg finetune`` (on unless
``--no_tensorboard``): one run folder ``<logdir>/<name of --out>``."""

from __future__ import annotations

import os
import sys
import time

import keras

from keras_gradreg import attacks
from keras_gradreg import callbacks as kgr_callbacks
from keras_gradreg.model import GradRegModel

PAPER_LAYERS = ("conv1", "fc2")
PROBE_SIZE = 256
HELD_OUT_SIZE = 256


def run_dir(args) -> str:
    """``--logdir`` (default: ``logs`` beside ``--out``) / the out's stem.

    Example:
        >>> import argparse
        >>> run_dir(argparse.Namespace(out="m/robust.keras", logdir=None))
        'm/logs/robust'
    """
    root = args.logdir or os.path.join(os.path.dirname(args.out), "logs")
    name = os.path.splitext(os.path.basename(args.out))[0]
    return os.path.join(root, name)


def training_callbacks(log_dir: str, model: GradRegModel, train, held_out,
                       settings) -> list:
    """TensorBoard, input-gradient norms on a probe, conv1/fc2 histograms and
    the accuracy under ``attacks.EPOCH_ATTACK`` (FGSM) at each eps on the
    first held-out examples, per epoch, all into the new folder ``log_dir``
    (the command's scratch folder, swapped in place of the old run at the
    end)."""
    names = {layer.name for layer in model.base.layers}
    layers = [name for name in PAPER_LAYERS if name in names]
    probe = tuple(array[:PROBE_SIZE] for array in train)
    small = tuple(array[:HELD_OUT_SIZE] for array in held_out)
    found = [kgr_callbacks.GradientNormLogger(log_dir, probe)]
    if layers:
        found.append(kgr_callbacks.WeightHistogramLogger(log_dir, layers))
    found += [
        kgr_callbacks.RobustAccuracyCallback(
            small, attacks.EPOCH_ATTACK, eps=float(eps), log_dir=log_dir,
            name=f"{attacks.EPOCH_ATTACK}_eps{float(eps):g}",
            clip_min=settings.clip_min, clip_max=settings.clip_max)
        for eps in settings.eps]
    found.append(keras.callbacks.TensorBoard(log_dir, write_graph=False))
    return found


def finish(log_dir: str, model: GradRegModel, args, results: dict,
           train_seconds: float) -> None:
    """Accuracy against eps after fine-tuning, and the run's HParams."""
    metrics = kgr_callbacks.log_robustness(log_dir, results)
    metrics["final/train_seconds"] = float(train_seconds)
    hparams = {
        "method": "finetune", "recipe": args.recipe,
        "train_eps": float(getattr(model, "eps", 0.0)),
        "model": os.path.basename(args.model),
        "regularizer": _name(model.regularizer), "norm": _name(model.norm),
        "c": float(model.c), "epochs": args.epochs,
        "learning_rate": args.learning_rate, "optimizer": args.optimizer,
        "seed": args.seed, "dataset": args.dataset,
    }
    try:
        kgr_callbacks.log_hparams(log_dir, hparams, metrics)
    except ImportError as error:
        print(f"Note: no HParams ({error})", file=sys.stderr)


def _name(function) -> str:
    return getattr(function, "__name__", str(function))


class Timer:
    """Wall time of a ``with`` block, in ``seconds``."""

    def __enter__(self):
        self._start = time.perf_counter()
        return self

    def __exit__(self, *exc):
        self.seconds = time.perf_counter() - self._start
