"""The robustness-per-cost grid's recipes and how each one is trained and timed.

A recipe is a trainer (natural Keras, ``GradRegModel`` or an
``AdversarialTrainingModel`` constructor), an activation of the paper's MNIST
CNN and the trainer's arguments. :func:`train` fits one, timed whole and per
epoch (wall-clock and process CPU seconds); :func:`calibrate` times natural
training for a few steps, the cost reference of a process that shares the
machine with others (``--shard``).
"""

from __future__ import annotations

import dataclasses
import statistics
import time
from typing import Dict, Mapping, Optional

import keras

import keras_gradreg
from keras_gradreg import models
from keras_gradreg.callbacks import TrainingRecord
from keras_gradreg.callbacks import resumable

REFERENCE = "natural_relu"  # the cost reference, always trained first
CALIBRATION_STEPS = 200  # steps of natural training timed by calibrate


@dataclasses.dataclass(frozen=True)
class Recipe:
    """How to train one network.

    Attributes:
        trainer: ``"natural"``, ``"gradreg"`` or an ``AdversarialTrainingModel``
            constructor by name (``"AdversarialTrainingModel.n_fgsm"``).
        activation: The activation of ``models.mnist_cnn``.
        kwargs: The trainer's arguments (``eps``, ``steps``, ``c``, ``norm``,
            ``regularizer``, ``penalty_fraction``).
    """

    trainer: str
    activation: str = "relu"
    kwargs: Mapping = dataclasses.field(default_factory=dict)

    def as_dict(self) -> dict:
        return {"trainer": self.trainer, "activation": self.activation,
                "kwargs": dict(self.kwargs)}


def _logit(norm: str, c: float) -> dict:
    return {"regularizer": "logit_margin", "norm": norm, "c": c}


def _xent(norm: str, c: float) -> dict:
    return {"regularizer": "cross_entropy", "norm": norm, "c": c}


def recipe_table(train_eps: float = 0.1) -> Dict[str, Recipe]:
    """The grid: recipe name -> Recipe; a name spells out its settings.

    Extend the grid by adding a line. c values: Logit-reg squared L2 0.1 and
    Xent-reg squared L2 10 (examples/sweep_c.py's choices); Logit-reg L1 0.03
    (the L1 sweep's) and 0.1; Xent-reg L1 0.3 (Logit-reg L1's c scaled as the
    squared-L2 c's are). Adversarial recipes train at ``train_eps``.

    Example:
        >>> table = recipe_table()
        >>> len(table), table["nfgsm_eps0.1_gelu"].kwargs
        (21, {'eps': 0.1})
    """
    eps = f"eps{train_eps:g}"
    adversarial = "AdversarialTrainingModel."
    table = {}
    for act in ("relu", "gelu"):
        table.update({
            f"natural_{act}": Recipe("natural", act),
            f"logit_sql2_c0.1_{act}": Recipe("gradreg", act, _logit("squared_l2", 0.1)),
            f"logit_l1_c0.03_{act}": Recipe("gradreg", act, _logit("l1", 0.03)),
            f"logit_l1_c0.1_{act}": Recipe("gradreg", act, _logit("l1", 0.1)),
            f"xent_sql2_c10_{act}": Recipe("gradreg", act, _xent("squared_l2", 10.0)),
            f"xent_l1_c0.3_{act}": Recipe("gradreg", act, _xent("l1", 0.3)),
            f"fgsm_rs_{eps}_{act}": Recipe(adversarial + "fgsm_rs", act,
                                           {"eps": train_eps}),
            f"nfgsm_{eps}_{act}": Recipe(adversarial + "n_fgsm", act,
                                         {"eps": train_eps}),
            f"nfgsm+logit_l1_c0.03_{act}": Recipe(
                adversarial + "n_fgsm", act, {"eps": train_eps, **_logit("l1", 0.03)}),
        })
    table[f"pgd7_{eps}_relu"] = Recipe(adversarial + "pgd", "relu",
                                       {"eps": train_eps, "steps": 7})
    # The cheaper penalty: only half of each batch is penalized.
    half = {"penalty_fraction": 0.5}
    table["logit_l1_c0.03_gelu_pf0.5"] = Recipe(
        "gradreg", "gelu", {**_logit("l1", 0.03), **half})
    table["nfgsm+logit_l1_c0.03_gelu_pf0.5"] = Recipe(
        adversarial + "n_fgsm", "gelu", {"eps": train_eps, **_logit("l1", 0.03), **half})
    return table


def build_model(recipe: Recipe, learning_rate: float):
    """``(model, network)``: the compiled model to ``fit`` and the network
    inside it (the one to attack)."""
    network = models.mnist_cnn(activation=recipe.activation)
    owner, _, constructor = recipe.trainer.partition(".")
    if recipe.trainer == "natural":
        model = network
    elif recipe.trainer == "gradreg":
        model = keras_gradreg.GradRegModel(network, **recipe.kwargs)
    elif owner == "AdversarialTrainingModel":
        model = getattr(keras_gradreg.AdversarialTrainingModel, constructor)(
            network, **recipe.kwargs)
    else:
        raise ValueError(f"Unknown trainer {recipe.trainer!r}.")
    model.compile(keras.optimizers.Adam(learning_rate),
                  keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  metrics=["accuracy"])
    return model, network


def train(recipe: Recipe, x, y, settings: dict,
          backup_dir: Optional[str] = None):
    """Trains ``recipe``; returns ``(network, seconds, final training logs)``.

    With ``backup_dir`` every epoch is checkpointed there, and a fit
    interrupted earlier with the same settings goes on from its last
    finished epoch (``seconds["resumed_at_epoch"]``). The cost basis is the
    median epoch after the first (the first traces the step), or the whole
    fit for one epoch.
    """
    keras.utils.set_random_seed(settings["seed"])
    model, network = build_model(recipe, settings["learning_rate"])
    callbacks, timer = [], TrainingRecord(verbose=1)
    if backup_dir is not None:
        callbacks, timer = resumable(
            backup_dir, {"recipe": recipe.as_dict(), "run": settings}, verbose=1)
        if timer.resumed_at:
            print(f"  going on from epoch {timer.resumed_at} of an "
                  f"interrupted fit ({backup_dir})", flush=True)
    model.fit(x, y, batch_size=settings["batch_size"], epochs=settings["epochs"],
              shuffle=True, verbose=0, callbacks=callbacks or [timer])
    fit = timer.fit_seconds()
    seconds = {"fit": fit["wall"], "fit_cpu": fit["cpu"],
               "epochs": timer.wall, "epochs_cpu": timer.cpu}
    if timer.resumed_at:
        seconds["resumed_at_epoch"] = timer.resumed_at
    steady = len(timer.wall) > 1
    seconds["basis"] = ("median epoch after the first" if steady
                        else "whole fit (one epoch: includes tracing)")
    seconds["wall"] = statistics.median(timer.wall[1:]) if steady else fit["wall"]
    seconds["cpu"] = statistics.median(timer.cpu[1:]) if steady else fit["cpu"]
    return network, seconds, {k: v[-1] for k, v in timer.history.items()}


def calibrate(x, y, settings: dict, steps: int = CALIBRATION_STEPS) -> dict:
    """Natural training's seconds per epoch, from ``steps`` timed steps.

    A process that shares the machine (``--shard``) times natural training
    in its own process just before (and after) each recipe, so that a ratio
    compares two timings under the same threads and load. One untimed step
    traces; ``steps`` steps are scaled to an epoch of ``len(x)`` images (for
    one epoch, the whole fit with tracing, as :func:`train`'s basis is).
    """
    batch = settings["batch_size"]
    steps = max(1, min(steps, len(x) // batch))
    epoch_steps = -(-len(x) // batch)
    keras.utils.set_random_seed(settings["seed"])
    model, _ = build_model(Recipe("natural", "relu"), settings["learning_rate"])

    def timed(count: int) -> dict:
        wall, cpu = time.perf_counter(), time.process_time()
        model.fit(x[:count * batch], y[:count * batch], batch_size=batch,
                  epochs=1, shuffle=False, verbose=0)
        return {"wall": time.perf_counter() - wall,
                "cpu": time.process_time() - cpu}

    first = timed(1)
    step = {kind: value / steps for kind, value in timed(steps).items()}
    basis = (f"{steps} steps of natural training in the same process before "
             "the fit, scaled to an epoch")
    if settings["epochs"] > 1:
        epoch = {kind: step[kind] * epoch_steps for kind in step}
        fit = {kind: epoch[kind] * settings["epochs"] for kind in step}
    else:
        epoch = fit = {kind: first[kind] + step[kind] * (epoch_steps - 1)
                       for kind in step}
        basis += " (one epoch: whole fit, the tracing call included)"
    return {"wall": epoch["wall"], "cpu": epoch["cpu"], "fit": fit["wall"],
            "fit_cpu": fit["cpu"], "basis": basis}
