"""The robustness-per-cost grid's recipes, and how each one is trained and timed."""

from __future__ import annotations

import statistics
from typing import Dict, Mapping, NamedTuple, Optional

import keras

import keras_gradreg
from keras_gradreg import models
from keras_gradreg.callbacks import TrainingRecord
from keras_gradreg.callbacks import resumable
from keras_gradreg.evaluation import timed

REFERENCE = "natural_relu"  # the cost reference, always trained first
CALIBRATION_STEPS = 200  # steps of natural training timed by calibrate
ADVERSARIAL = "AdversarialTrainingModel."


class Recipe(NamedTuple):
    """How to train one network: ``trainer`` (``"natural"``, ``"gradreg"`` or an
    ``AdversarialTrainingModel`` constructor, ``"AdversarialTrainingModel.n_fgsm"``), the
    ``activation`` of ``models.mnist_cnn`` and the trainer's ``kwargs``."""

    trainer: str
    activation: str = "relu"
    kwargs: Mapping = {}

    def as_dict(self) -> dict:
        """The recipe as stored in a result line."""
        return {"trainer": self.trainer, "activation": self.activation,
                "kwargs": dict(self.kwargs)}


def _penalty(regularizer: str, norm: str, c: float, **more) -> dict:
    return {"regularizer": regularizer, "norm": norm, "c": c, **more}


def recipe_table(train_eps: float = 0.1) -> Dict[str, Recipe]:
    """The grid: recipe name -> Recipe; a name spells out its settings.

    c values: Logit-reg squared L2 0.1 and Xent-reg squared L2 10 (examples/sweep_c.py's
    choices); Logit-reg L1 0.03 (the L1 sweep's) and 0.1; Xent-reg L1 0.3 (Logit-reg L1's
    c scaled as the squared-L2 c's are). Adversarial recipes train at ``train_eps``.

    Example:
        >>> table = recipe_table()
        >>> len(table), table["nfgsm_eps0.1_gelu"].kwargs
        (21, {'eps': 0.1})
    """
    eps, at = f"eps{train_eps:g}", {"eps": train_eps}
    logit_l1 = _penalty("logit_margin", "l1", 0.03)
    table = {}
    for act in ("relu", "gelu"):
        table.update({
            f"natural_{act}": Recipe("natural", act),
            f"logit_sql2_c0.1_{act}": Recipe(
                "gradreg", act, _penalty("logit_margin", "squared_l2", 0.1)),
            f"logit_l1_c0.03_{act}": Recipe("gradreg", act, logit_l1),
            f"logit_l1_c0.1_{act}": Recipe("gradreg", act, _penalty("logit_margin", "l1", 0.1)),
            f"xent_sql2_c10_{act}": Recipe(
                "gradreg", act, _penalty("cross_entropy", "squared_l2", 10.0)),
            f"xent_l1_c0.3_{act}": Recipe("gradreg", act, _penalty("cross_entropy", "l1", 0.3)),
            f"fgsm_rs_{eps}_{act}": Recipe(ADVERSARIAL + "fgsm_rs", act, at),
            f"nfgsm_{eps}_{act}": Recipe(ADVERSARIAL + "n_fgsm", act, at),
            f"nfgsm+logit_l1_c0.03_{act}": Recipe(ADVERSARIAL + "n_fgsm", act,
                                                  {**at, **logit_l1}),
        })
    table[f"pgd7_{eps}_relu"] = Recipe(ADVERSARIAL + "pgd", "relu", {**at, "steps": 7})
    # The cheaper penalty: only half of each batch is penalized.
    half = {**logit_l1, "penalty_fraction": 0.5}
    table["logit_l1_c0.03_gelu_pf0.5"] = Recipe("gradreg", "gelu", half)
    table["nfgsm+logit_l1_c0.03_gelu_pf0.5"] = Recipe(ADVERSARIAL + "n_fgsm", "gelu",
                                                      {**at, **half})
    return table


def build_model(recipe: Recipe, learning_rate: float):
    """``(model, network)``: the compiled model to ``fit`` and the network inside it
    (the one to attack)."""
    network = models.mnist_cnn(activation=recipe.activation)
    owner, _, constructor = recipe.trainer.partition(".")
    if recipe.trainer == "natural":
        model = network
    elif recipe.trainer == "gradreg":
        model = keras_gradreg.GradRegModel(network, **recipe.kwargs)
    elif owner + "." == ADVERSARIAL:
        model = getattr(keras_gradreg.AdversarialTrainingModel, constructor)(
            network, **recipe.kwargs)
    else:
        raise ValueError(f"Unknown trainer {recipe.trainer!r}.")
    model.compile(keras.optimizers.Adam(learning_rate),
                  keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  metrics=["accuracy"])
    return model, network


def train(recipe: Recipe, x, y, settings: dict, backup_dir: Optional[str] = None):
    """Trains ``recipe``; returns ``(network, seconds, final training logs)``.

    With ``backup_dir`` every epoch is checkpointed there, and a fit interrupted earlier
    with the same settings goes on from its last finished epoch
    (``seconds["resumed_at_epoch"]``). The cost basis is the median epoch after the first
    (the first traces the step), or the whole fit for one epoch.
    """
    keras.utils.set_random_seed(settings["seed"])
    model, network = build_model(recipe, settings["learning_rate"])
    callbacks, record = [], TrainingRecord(verbose=1)
    if backup_dir is not None:
        callbacks, record = resumable(
            backup_dir, {"recipe": recipe.as_dict(), "run": settings}, verbose=1)
        if record.resumed_at:
            print(f"  going on from epoch {record.resumed_at} of an interrupted fit "
                  f"({backup_dir})", flush=True)
    model.fit(x, y, batch_size=settings["batch_size"], epochs=settings["epochs"],
              shuffle=True, verbose=0, callbacks=callbacks or [record])
    fit = record.fit_seconds()
    seconds = {"fit": fit["wall"], "fit_cpu": fit["cpu"],
               "epochs": record.wall, "epochs_cpu": record.cpu}
    if record.resumed_at:
        seconds["resumed_at_epoch"] = record.resumed_at
    steady = len(record.wall) > 1
    seconds["basis"] = ("median epoch after the first" if steady
                        else "whole fit (one epoch: includes tracing)")
    seconds["wall"] = statistics.median(record.wall[1:]) if steady else fit["wall"]
    seconds["cpu"] = statistics.median(record.cpu[1:]) if steady else fit["cpu"]
    return network, seconds, {k: v[-1] for k, v in record.history.items()}


def calibrate(x, y, settings: dict, steps: int = CALIBRATION_STEPS) -> dict:
    """Natural training's seconds per epoch, from ``steps`` timed steps.

    A process that shares the machine (``--shard``) times natural training in its own
    process just before (and after) each recipe, so that a ratio compares two timings
    under the same threads and load. One untimed step traces; ``steps`` steps are scaled
    to an epoch of ``len(x)`` images (for one epoch, the whole fit with tracing, as
    :func:`train`'s basis is).
    """
    batch = settings["batch_size"]
    steps = max(1, min(steps, len(x) // batch))
    epoch_steps = -(-len(x) // batch)
    keras.utils.set_random_seed(settings["seed"])
    model, _ = build_model(Recipe("natural", "relu"), settings["learning_rate"])

    def fit(count: int):
        return lambda: model.fit(x[:count * batch], y[:count * batch], batch_size=batch,
                                 epochs=1, shuffle=False, verbose=0)

    first = timed(fit(1))
    step = {kind: value / steps for kind, value in timed(fit(steps)).items()}
    basis = (f"{steps} steps of natural training in the same process before the fit, "
             "scaled to an epoch")
    if settings["epochs"] > 1:
        epoch = {kind: step[kind] * epoch_steps for kind in step}
        whole = {kind: epoch[kind] * settings["epochs"] for kind in step}
    else:
        epoch = whole = {kind: first[kind] + step[kind] * (epoch_steps - 1) for kind in step}
        basis += " (one epoch: whole fit, the tracing call included)"
    return {"wall": epoch["wall"], "cpu": epoch["cpu"], "fit": whole["wall"],
            "fit_cpu": whole["cpu"], "basis": basis}
