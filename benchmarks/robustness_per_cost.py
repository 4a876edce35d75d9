r"""Robustness per cost: a grid of training recipes on MNIST, one chart.

Trains each recipe of ``recipe_table`` (natural training, Logit-reg and
Xent-reg with the squared L2 and L1 norms, FGSM-RS, N-FGSM, PGD-7 and N-FGSM
with the Logit-reg penalty at its adversarial examples; ReLU and GELU) on
the first ``--train_size`` MNIST training images for ``--epochs`` epochs
with the paper's CNN (``keras_gradreg.models.mnist_cnn``), Adam and batch
``--batch_size``, every recipe from the same initial weights and batch order
(``--seed``). Then:

* **Cost**: the recipe's training time over natural training's
  (``natural_relu``, always trained first). ``fit`` is timed whole and per
  epoch (wall-clock and process CPU seconds); the ratio uses the median of
  the epochs after the first (the first one traces the train step), or the
  whole ``fit`` when ``--epochs 1`` (then tracing is in it). Wall-clock and
  CPU-time ratios are both stored; ``--cost`` picks the one the table and
  chart show (wall by default; CPU time is steadier on a shared CPU machine,
  meaningless on a GPU). With ``--workers N``, N processes of one
  TensorFlow thread each take the recipes in turn (``_workers.py``); one
  thread spends less CPU per step than TensorFlow's default threads, so
  each worker times natural training again (``calibrate``: 200 steps in
  its own process, just before each recipe) and the recipe's ratio is
  against that; the row says which reference it has. It is timed again
  just after the fit (``reference_after_seconds``): where the two differ by
  more than 10%, the load changed during the fit and the report says so.
  ``--retime`` times
  stored recipes again that way (one process; robust accuracy kept), for
  rows timed before ``--workers`` existed.
* **Robust accuracy** on the first ``--test_size`` test images at each
  ``--eval_eps``: per example, the worst case over ``--eval_attacks`` (an
  image counts as robust only if it is classified correctly clean and under
  every attack). Default: APGD-CE and APGD-DLR (``attacks.apgd``,
  ``--eval_steps`` iterations) and PGD (``--eval_steps`` steps of
  2.5 eps / steps, ``--pgd_restarts`` random restarts); any other attack of
  ``keras_gradreg.attacks.ATTACKS`` by its name (AutoAttack with its own
  settings but the seed and batch size). With ``--attack_survivors`` (the
  default, as AutoAttack runs) each attack only attacks the images every
  earlier one left correct, so per-attack numbers are cumulative; without
  it each attack attacks every clean-correct image and per-attack numbers
  are each attack's own.

Resumable: each finished recipe appends one JSON line to
``OUT/results.jsonl``; a rerun with the same settings skips the recipes
found there and reuses the stored natural time as the reference. An
unfinished recipe goes on where it stopped: its fit from the last finished
epoch, its evaluation from the last finished (eps, attack) pair (both kept
in ``OUT/backup/<recipe>/`` until its line is written). Ratios of
recipes trained in a later process then compare timings across processes
(and machine load), so they are noisier than ratios from one run.

Writes ``OUT/robustness_per_cost.md`` (recipe | cost x natural | clean |
robust accuracy per eps, sorted by cost, the Pareto front in bold, and a
sentence per eps naming the recipes on the front) and
``OUT/robustness_per_cost.png`` (one panel per eps: robust accuracy against
cost, each point labelled, the front as a step line). Both cover every
recipe in ``results.jsonl``. When ``OUT/autoattack/results.jsonl`` holds
AutoAttack's results on some of the saved models (``benchmarks/long_runs.sh
gridaa``), the Markdown also has them, combined per image with the grid's
worst case (``_with_autoattack.py``). A rerun with the same flags after
every recipe is done trains nothing and rewrites the report.

Recipes that need a newer keras_gradreg than the one installed (GELU
networks, N-FGSM, a penalty on adversarial training) are skipped with a
message saying what is missing.

    python benchmarks/robustness_per_cost.py --data_dir ../shared/data/mnist \
        --epochs 3 --test_size 1000 --out runs/robustness_per_cost
"""

from __future__ import annotations

import dataclasses
import datetime
import functools
import inspect
import json
import os
import shutil
import statistics
import sys
import time
from typing import Callable, Dict, List, Mapping, Optional

import keras
import numpy as np
import tensorflow as tf
from absl import app
from absl import flags

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import keras_gradreg  # noqa: E402
from keras_gradreg import attacks  # noqa: E402
from keras_gradreg import datasets  # noqa: E402
from keras_gradreg import models  # noqa: E402
from keras_gradreg.callbacks import TrainingRecord  # noqa: E402
from keras_gradreg.callbacks import resumable  # noqa: E402

import _frontier  # noqa: E402
import _with_autoattack  # noqa: E402
import _workers  # noqa: E402
from _machine import machine  # noqa: E402

# Attacks: each evaluation attack is a name in keras_gradreg.attacks.ATTACKS,
# APGD once per loss (apgd_ce, apgd_dlr).
LOSS_VARIANTS = {attacks.apgd: ("ce", "dlr")}
# The default worst case: APGD-CE, APGD-DLR and PGD (attack, loss).
EVAL_ATTACKS = ((attacks.apgd, "ce"), (attacks.apgd, "dlr"), (attacks.pgd, None))


def _registry() -> Dict[str, Callable]:
    """keras_gradreg.attacks.ATTACKS (for a keras_gradreg older than the
    registry: the two attacks of the default worst case)."""
    return getattr(attacks, "ATTACKS", None) or {
        attack.__name__: attack for attack in (attacks.apgd, attacks.pgd)}


def attack_key(attack: Callable, loss: Optional[str] = None) -> str:
    """The attack's name in the registry, and its loss: ``apgd_ce``."""
    name = next(key for key, value in _registry().items() if value is attack)
    return f"{name}_{loss}" if loss else name


FLAGS = flags.FLAGS


def define_flags(flag_values: flags.FlagValues = FLAGS) -> None:
    """Defines the script's flags in ``flag_values``; the script calls it
    under ``__main__`` only, so importing the module defines no flag."""
    where = {"flag_values": flag_values}
    flags.DEFINE_string("out", None, "Output folder (results.jsonl, .md, .png).", **where)
    flags.DEFINE_string("data_dir", None,
                        "Folder with the four MNIST IDX .gz files (default: "
                        "tensorflow-datasets).", **where)
    flags.DEFINE_list("recipes", None,
                      "Recipes to run in this order, names from the recipe "
                      "table (default: all); a last name `all` adds the rest "
                      "of the table after them. natural_relu, the cost "
                      "reference, always runs (first).", **where)
    flags.DEFINE_integer("epochs", 3, "Training epochs of every recipe.", **where)
    flags.DEFINE_integer("train_size", 60000, "First N training images.", **where)
    flags.DEFINE_integer("batch_size", 50, "Training batch size.", **where)
    flags.DEFINE_float("learning_rate", 1e-3, "Adam's learning rate.", **where)
    flags.DEFINE_integer("seed", 0, "Seed of weights, batch order and attacks.", **where)
    flags.DEFINE_float("train_eps", 0.1,
                       "L-inf radius of the adversarial training recipes.", **where)
    flags.DEFINE_list("eval_eps", ["0.1", "0.2", "0.3"], "Evaluation radii.", **where)
    flags.DEFINE_list("eval_attacks", [attack_key(*a) for a in EVAL_ATTACKS],
                      "Attacks of the per-example worst case: names in "
                      "keras_gradreg.attacks.ATTACKS, APGD once per loss "
                      "(apgd_ce, apgd_dlr).", **where)
    flags.DEFINE_integer("eval_steps", 50,
                         "Iterations of the attacks that take steps (APGD, PGD; "
                         "autoattack keeps its own).", **where)
    flags.DEFINE_integer("pgd_restarts", 3, "Random restarts of PGD.", **where)
    flags.DEFINE_integer("test_size", 1000, "First N test images.", **where)
    flags.DEFINE_integer("eval_batch_size", 500, "Examples per attack call.", **where)
    flags.DEFINE_bool("attack_survivors", True,
                      "Each attack attacks only the images earlier attacks left "
                      "correct (AutoAttack's way; per-attack numbers cumulative).", **where)
    flags.DEFINE_enum("cost", "wall", ["wall", "cpu"],
                      "The cost in the table and chart: the wall-clock ratio, "
                      "or the process CPU time ratio (steadier on a shared "
                      "machine; meaningless on a GPU). Both are stored.", **where)
    flags.DEFINE_bool("save_models", False,
                      "Also save each trained network as OUT/<recipe>.keras.", **where)
    flags.DEFINE_integer(
        "workers", 1, "Processes side by side, one TensorFlow thread each, "
        "taking the recipes in turn (2 on a 2-core machine: about a third "
        "more work than 1). Costs are then against natural training timed in "
        "each process just before each recipe (see calibrate).", **where)
    flags.DEFINE_integer("worker", None, "Set by --workers for each process.",
                         **where)
    flags.DEFINE_bool(
        "retime", False, "Only time the --recipes that results.jsonl holds "
        "again, in this process, each against natural training timed just "
        "before it (as a --workers process does); their robust accuracy is "
        "kept (see retime).", **where)
    flags.DEFINE_bool(
        "report", False, "Train and attack nothing: write the report (.md, "
        ".png) of every recipe OUT/results.jsonl holds so far, e.g. while "
        "the grid runs or with another --cost.", **where)


REFERENCE = "natural_relu"
# Steps of natural training timed before each recipe of a --workers run.
CALIBRATION_STEPS = 200
CLIP = {"clip_min": 0.0, "clip_max": 1.0}
# A final training accuracy below this (chance is 0.1) is flagged as a
# collapse, as softplus Logit-reg at c 0.03 did.
COLLAPSED = 0.2

# Recipes -------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Recipe:
    """How to train one network.

    Attributes:
        trainer: ``"natural"`` (plain Keras), ``"gradreg"``
            (``GradRegModel``), or an adversarial training recipe: one of
            the ``AdversarialTrainingModel`` constructors, by its name
            (``"AdversarialTrainingModel.n_fgsm"``).
        activation: The activation of ``models.mnist_cnn``.
        kwargs: The trainer's arguments: ``eps`` and ``steps`` of the
            training attack, and the penalty's ``c``, ``norm``,
            ``regularizer`` and ``penalty_fraction``.
    """

    trainer: str
    activation: str = "relu"
    kwargs: Mapping = dataclasses.field(default_factory=dict)

    def penalty(self) -> dict:
        """The penalty arguments among ``kwargs``."""
        return {k: v for k, v in self.kwargs.items()
                if k in ("c", "norm", "regularizer", "penalty_fraction")}

    def as_dict(self) -> dict:
        return {"trainer": self.trainer, "activation": self.activation,
                "kwargs": dict(self.kwargs)}


def _logit(norm: str, c: float) -> dict:
    return {"regularizer": "logit_margin", "norm": norm, "c": c}


def _xent(norm: str, c: float) -> dict:
    return {"regularizer": "cross_entropy", "norm": norm, "c": c}


def _results(out: str) -> str:
    """The grid's result lines in folder ``out``: one JSON line per recipe."""
    return os.path.join(out, "results.jsonl")


def recipe_table(train_eps: float = 0.1) -> Dict[str, Recipe]:
    """The grid: recipe name -> Recipe. A name spells out its settings.

    Extend the grid by adding a line. c values: Logit-reg squared L2 0.1 and
    Xent-reg squared L2 10 (examples/sweep_c.py's choices, docs/RESULTS.md);
    Logit-reg L1 0.03 (the L1 sweep's) and 0.1; Xent-reg L1 0.3 is not
    swept (Logit-reg L1's c scaled as the squared-L2 c's are, by 10 per
    unit of norm). Adversarial recipes train at ``train_eps``, which their
    names spell (``nfgsm_eps0.1_gelu``).
    """
    eps = f"eps{train_eps:g}"
    table = {}
    for activation in ("relu", "gelu"):
        table.update({
            f"natural_{activation}": Recipe("natural", activation),
            f"logit_sql2_c0.1_{activation}": Recipe(
                "gradreg", activation, _logit("squared_l2", 0.1)),
            f"logit_l1_c0.03_{activation}": Recipe(
                "gradreg", activation, _logit("l1", 0.03)),
            f"logit_l1_c0.1_{activation}": Recipe(
                "gradreg", activation, _logit("l1", 0.1)),
            f"xent_sql2_c10_{activation}": Recipe(
                "gradreg", activation, _xent("squared_l2", 10.0)),
            f"xent_l1_c0.3_{activation}": Recipe(
                "gradreg", activation, _xent("l1", 0.3)),
            f"fgsm_rs_{eps}_{activation}": Recipe(
                "AdversarialTrainingModel.fgsm_rs", activation,
                {"eps": train_eps}),
            f"nfgsm_{eps}_{activation}": Recipe(
                "AdversarialTrainingModel.n_fgsm", activation,
                {"eps": train_eps}),
            f"nfgsm+logit_l1_c0.03_{activation}": Recipe(
                "AdversarialTrainingModel.n_fgsm", activation,
                {"eps": train_eps, **_logit("l1", 0.03)}),
        })
    table[f"pgd7_{eps}_relu"] = Recipe(
        "AdversarialTrainingModel.pgd", "relu", {"eps": train_eps, "steps": 7})
    # The cheaper penalty: only half of each batch is penalized.
    half = {"penalty_fraction": 0.5}
    table["logit_l1_c0.03_gelu_pf0.5"] = Recipe(
        "gradreg", "gelu", {**_logit("l1", 0.03), **half})
    table["nfgsm+logit_l1_c0.03_gelu_pf0.5"] = Recipe(
        "AdversarialTrainingModel.n_fgsm", "gelu",
        {"eps": train_eps, **_logit("l1", 0.03), **half})
    return table


def _accepts(function, name: str) -> bool:
    return name in inspect.signature(function).parameters


def _constructor(recipe: Recipe) -> Optional[Callable]:
    """The ``AdversarialTrainingModel`` constructor an adversarial recipe
    names, or None (not adversarial)."""
    owner, _, name = recipe.trainer.partition(".")
    if owner != keras_gradreg.AdversarialTrainingModel.__name__:
        return None
    return getattr(keras_gradreg.AdversarialTrainingModel, name, None)


def build_network(activation: str) -> keras.Model:
    """The paper's MNIST CNN with ``activation`` (ReLU: the paper's)."""
    return models.mnist_cnn(activation=activation)


def build_model(recipe: Recipe, learning_rate: float):
    """The compiled training model of ``recipe`` and its network.

    Returns:
        ``(model, network)``: the model to ``fit`` and the network inside it
        (the one to attack).
    """
    network = build_network(recipe.activation)
    kwargs = dict(recipe.kwargs)
    if recipe.trainer == "natural":
        model = network
    elif recipe.trainer == "gradreg":
        model = keras_gradreg.GradRegModel(network, **kwargs)
    elif _constructor(recipe) is not None:
        model = _constructor(recipe)(network, **kwargs)
    else:
        raise ValueError(f"Unknown trainer {recipe.trainer!r}.")
    model.compile(
        keras.optimizers.Adam(learning_rate),
        keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    return model, network


# Training ------------------------------------------------------------------


def train(recipe: Recipe, x, y, settings: dict,
          backup_dir: Optional[str] = None):
    """Trains ``recipe``; returns its network and timing / history record.

    With ``backup_dir``, every epoch is checkpointed there (Keras'
    ``BackupAndRestore``), and a fit interrupted earlier with the same
    settings goes on from its last finished epoch, its earlier epochs'
    seconds kept (``seconds["resumed_at_epoch"]`` says where it went on).
    """
    keras.utils.set_random_seed(settings["seed"])
    model, network = build_model(recipe, settings["learning_rate"])
    callbacks, timer = [], TrainingRecord(verbose=1)
    if backup_dir is not None:
        callbacks, timer = resumable(
            backup_dir, {"recipe": recipe.as_dict(), "run": settings},
            verbose=1)
        if timer.resumed_at:
            print(f"  going on from epoch {timer.resumed_at} of an "
                  f"interrupted fit ({backup_dir})", flush=True)
    model.fit(x, y, batch_size=settings["batch_size"],
              epochs=settings["epochs"], shuffle=True, verbose=0,
              callbacks=callbacks or [timer])
    fit = timer.fit_seconds()
    seconds = {"fit": fit["wall"], "fit_cpu": fit["cpu"],
               "epochs": timer.wall, "epochs_cpu": timer.cpu}
    if timer.resumed_at:
        seconds["resumed_at_epoch"] = timer.resumed_at
    steady = len(timer.wall) > 1
    seconds["basis"] = ("median epoch after the first" if steady
                        else "whole fit (one epoch: includes tracing)")
    seconds["wall"] = (statistics.median(timer.wall[1:]) if steady
                       else seconds["fit"])
    seconds["cpu"] = (statistics.median(timer.cpu[1:]) if steady
                      else seconds["fit_cpu"])
    final = {k: v[-1] for k, v in timer.history.items()}
    return network, seconds, final


def calibrate(x, y, settings: dict,
              steps: int = CALIBRATION_STEPS) -> dict:
    """Natural training's seconds per epoch, timed on ``steps`` steps.

    The cost reference of a ``--workers`` run: each worker times natural
    training (``natural_relu``, the grid's settings) in its own process,
    with its own TensorFlow threads, just before each recipe, so that a
    recipe's ratio compares two timings made under the same threads and the
    same load. A first call of one step traces the train step; then
    ``steps`` steps (at most the training set's) are timed and scaled to an
    epoch of ``len(x)`` images. As ``train`` does, the reference is that
    steady epoch when there are several epochs and the whole fit (tracing
    included) for one. Returns the fields ``train`` returns as ``seconds``.
    """
    batch = settings["batch_size"]
    steps = max(1, min(steps, len(x) // batch))
    epoch_steps = -(-len(x) // batch)
    keras.utils.set_random_seed(settings["seed"])
    model, _ = build_model(Recipe("natural", "relu"), settings["learning_rate"])
    wall, cpu = time.perf_counter(), time.process_time()
    model.fit(x[:batch], y[:batch], batch_size=batch, epochs=1, verbose=0)
    first = {"wall": time.perf_counter() - wall, "cpu": time.process_time() - cpu}
    wall, cpu = time.perf_counter(), time.process_time()
    model.fit(x[:steps * batch], y[:steps * batch], batch_size=batch,
              epochs=1, shuffle=False, verbose=0)
    step = {"wall": (time.perf_counter() - wall) / steps,
            "cpu": (time.process_time() - cpu) / steps}
    basis = (f"{steps} steps of natural training in the same process before "
             "the fit, scaled to an epoch")
    if settings["epochs"] > 1:
        epoch = {kind: step[kind] * epoch_steps for kind in step}
        fit = {kind: epoch[kind] * settings["epochs"] for kind in step}
    else:  # the whole fit is the reference, as train's is
        epoch = fit = {kind: first[kind] + step[kind] * (epoch_steps - 1)
                       for kind in step}
        basis += " (one epoch: whole fit, the tracing call included)"
    return {"wall": epoch["wall"], "cpu": epoch["cpu"], "fit": fit["wall"],
            "fit_cpu": fit["cpu"], "basis": basis}


# Evaluation ----------------------------------------------------------------


def attack_options(attack: Callable, settings: dict) -> dict:
    """The options ``attack`` gets: among the seed, the clip range and
    ``--eval_batch_size``, those it takes; ``--eval_steps`` iterations
    (each attack keeps its own step size: PGD's 2.5 eps / steps), except
    for the headline attack (AutoAttack keeps its own); and PGD's
    ``--pgd_restarts`` random restarts."""
    options = {"seed": settings["seed"],
               "batch_size": settings["eval_batch_size"], **CLIP}
    if not getattr(attack, "headline", False):
        options["steps"] = settings["eval_steps"]
    if attack is attacks.pgd:
        options["restarts"] = settings["pgd_restarts"]
    return {k: v for k, v in options.items() if _accepts(attack, k)}


def attack_table(settings: dict) -> Dict[str, Callable]:
    """Attack key -> ``attack(network, x, y, eps) -> x_adv`` for every
    attack in the registry, APGD once per loss (``apgd_ce``, ``apgd_dlr``)."""
    table = {}
    for attack in _registry().values():
        options = attack_options(attack, settings)
        for loss in LOSS_VARIANTS.get(attack, (None,)):
            loss_option = {"loss": loss} if loss else {}
            table[attack_key(attack, loss)] = functools.partial(
                attack, **options, **loss_option)
    return table


def _correct(network, x, y, batch_size: int) -> np.ndarray:
    logits = network.predict(x, batch_size=batch_size, verbose=0)
    return np.argmax(logits, axis=-1) == y


def bits(correct: np.ndarray) -> str:
    """Per-example correctness as a string of 0s and 1s."""
    return "".join("1" if value else "0" for value in correct)


EVALUATION_FILE = "evaluation.json"
# The settings an interrupted evaluation must share to be gone on with.
EVALUATION_SETTINGS = ("test_size", "eval_steps", "pgd_restarts", "seed",
                       "eval_batch_size", "attack_survivors", "eval_attacks")


def _finished_pieces(path: Optional[str], identity: dict) -> dict:
    """The (eps, attack) results an interrupted evaluation left at ``path``
    (eps key -> attack -> piece), if it evaluated the same network (the same
    clean bits) with the same settings; else none."""
    if path is None or not os.path.exists(path):
        return {}
    with open(path) as file:
        stored = json.load(file)
    return stored["pieces"] if stored.get("identity") == identity else {}


def evaluate(network, x, y, settings: dict,
             progress: Optional[str] = None) -> dict:
    """Clean accuracy, per-example worst case and per-attack accuracies.

    With ``progress`` (a file path), every finished (eps, attack) pair is
    written there, and an evaluation of the same network (the same clean
    bits) with the same settings goes on from the pairs found there instead
    of attacking again; ``resumed_seconds`` then holds the seconds those
    pairs took in the earlier process.

    Returns:
        ``clean``, ``robust`` (eps key -> worst case), ``per_attack`` (eps
        key -> attack -> accuracy), ``attacked`` (eps key -> attack -> the
        number of images it attacked) and ``correct``: per example, as a string
        of 0s and 1s, whether it was correct clean (``correct["clean"]``) and
        after each attack (``correct[eps key][attack]``; an image an attack
        did not attack counts as its earlier result).
    """
    table = attack_table(settings)
    batch_size = settings["eval_batch_size"]
    clean = _correct(network, x, y, batch_size)
    print(f"  clean: {100 * clean.mean():.1f}%", flush=True)
    result = {"clean": float(clean.mean()), "robust": {}, "per_attack": {},
              "attacked": {}, "correct": {"clean": bits(clean)},
              "resumed_seconds": 0.0}
    identity = {"clean": bits(clean),
                **{name: settings[name] for name in EVALUATION_SETTINGS}}
    pieces = _finished_pieces(progress, identity)
    for eps in settings["eval_eps"]:
        key = f"{eps:g}"
        robust = clean.copy()
        for field in ("per_attack", "attacked", "correct"):
            result[field][key] = {}
        for name in settings["eval_attacks"]:
            piece = pieces.get(key, {}).get(name)
            if piece is None:
                piece = _attack_piece(table[name], network, x, y, eps,
                                      robust if settings["attack_survivors"]
                                      else clean, batch_size)
                pieces.setdefault(key, {})[name] = piece
                if progress is not None:
                    _workers.write_atomically(progress, json.dumps(
                        {"identity": identity, "pieces": pieces}))
                done = f"{piece['seconds']:.1f} s"
            else:
                result["resumed_seconds"] += piece["seconds"]
                done = "from an interrupted evaluation"
            survived = np.array([bit == "1" for bit in piece["survived"]])
            robust &= survived
            result["per_attack"][key][name] = float(survived.mean())
            result["attacked"][key][name] = piece["attacked"]
            result["correct"][key][name] = piece["survived"]
            print(f"  eps {key} {name}: attacked {piece['attacked']}, "
                  f"{100 * survived.mean():.1f}% correct, worst case so far "
                  f"{100 * robust.mean():.1f}% ({done})", flush=True)
        result["robust"][key] = float(robust.mean())
    return result


def _attack_piece(attack: Callable, network, x, y, eps: float,
                  targets: np.ndarray, batch_size: int) -> dict:
    """One attack at one eps on the images ``targets`` marks: which images
    stay correct (the others keep ``targets``' value), as bits, the number
    attacked and the seconds taken."""
    start = time.perf_counter()
    attacked = np.flatnonzero(targets)
    survived = targets.copy()
    if attacked.size:
        x_adv = np.asarray(attack(network, x[attacked], y[attacked], eps))
        survived[attacked] = _correct(network, x_adv, y[attacked], batch_size)
    return {"survived": bits(survived), "attacked": int(attacked.size),
            "seconds": time.perf_counter() - start}


# Results file ---------------------------------------------------------------


def read_results(path: str) -> Dict[str, dict]:
    """The finished recipes in ``results.jsonl``, by name (last line wins)."""
    rows = {}
    if os.path.exists(path):
        with open(path) as file:
            for line in file:
                if line.strip():
                    row = json.loads(line)
                    rows[row["recipe"]] = row
    return rows


def _check_resumable(stored: Dict[str, dict], run_settings: dict,
                     path: str) -> None:
    for name, row in stored.items():
        before = row["settings"]["run"]
        changed = sorted(k for k in set(before) | set(run_settings)
                         if before.get(k) != run_settings.get(k))
        if changed:
            differences = ", ".join(
                f"{k}: {before.get(k)!r} then, {run_settings.get(k)!r} now"
                for k in changed)
            raise app.UsageError(
                f"{path} holds {name}, run with other settings "
                f"({differences}); use another --out to compare different "
                "settings.")


def stored_rows(settings: dict, out: str) -> Dict[str, dict]:
    """The finished recipes in OUT/results.jsonl (none without the file),
    read under the folder's lock; a usage error if they were run with other
    settings."""
    path = _results(out)
    with _workers.locked(out):
        stored = read_results(path)
    _check_resumable(stored, training_settings(settings), path)
    return stored


# Command line ---------------------------------------------------------------


def _settings(flag_values: flags.FlagValues) -> dict:
    for name in ("epochs", "train_size", "batch_size", "eval_steps",
                 "pgd_restarts", "test_size", "eval_batch_size"):
        if flag_values[name].value < 1:
            raise app.UsageError(f"--{name} must be >= 1.")
    if flag_values.learning_rate <= 0 or flag_values.train_eps <= 0:
        raise app.UsageError("--learning_rate and --train_eps must be > 0.")
    try:
        eval_eps = [float(value) for value in flag_values.eval_eps]
    except ValueError as error:
        raise app.UsageError(f"--eval_eps must be numbers: {error}") from error
    if not eval_eps or min(eval_eps) <= 0:
        raise app.UsageError("--eval_eps needs numbers > 0.")
    names = ("epochs", "train_size", "batch_size", "learning_rate", "seed",
             "train_eps", "eval_steps", "pgd_restarts", "test_size",
             "eval_batch_size", "attack_survivors", "data_dir", "save_models",
             "cost")
    return {**{name: flag_values[name].value for name in names},
            "eval_eps": eval_eps,
            "eval_attacks": list(flag_values.eval_attacks)}


def _recipes(table: Dict[str, Recipe],
             flag_values: flags.FlagValues) -> List[str]:
    names = list(flag_values.recipes) if flag_values.recipes else list(table)
    if names and names[-1] == "all":  # the named ones first, then the rest
        names = names[:-1] + [name for name in table if name not in names]
    unknown = [name for name in names if name not in table]
    if unknown:
        raise app.UsageError(
            f"Unknown recipes {unknown} (at --train_eps {flag_values.train_eps:g}). "
            f"Use some of {list(table)}.")
    return [REFERENCE] + [name for name in names if name != REFERENCE]


def _check_attacks(settings: dict) -> None:
    known = attack_table(settings)
    unknown = [a for a in settings["eval_attacks"] if a not in known]
    if unknown or not settings["eval_attacks"]:
        raise app.UsageError(
            f"Unknown --eval_attacks {unknown}: use some of {list(known)}.")


def times_table(rows: List[dict], cost: str = "wall") -> str:
    """Each recipe's wall time (training and the grid's attacks) and CPU
    training time, in minutes, in the order of the cost table; and its
    median epoch's CPU seconds, also over natural training's own fit's
    (``natural_relu``'s row, when there is one).

    That last ratio is a second, steadier cost: both epochs are averages
    over minutes of training, where the cost table's reference (natural
    training timed for ``CALIBRATION_STEPS`` steps in the worker just
    before the fit)
    catches whatever the other worker is doing in those seconds. Its price
    is that the two epochs may be timed hours apart.

    Example:
        >>> row = {"recipe": "r", "ratio": {"wall": 1.0},
        ...        "seconds": {"fit": 600.0, "fit_cpu": 540.0, "cpu": 180.0},
        ...        "eval_seconds": 90.0}
        >>> natural = {"recipe": REFERENCE, "ratio": {"wall": 0.5},
        ...            "seconds": {"fit": 300.0, "fit_cpu": 270.0,
        ...                        "cpu": 90.0}, "eval_seconds": 30.0}
        >>> print(times_table([row, natural]))
        | recipe | training, wall (min) | training, CPU (min) | CPU s per epoch
        | x natural_relu's epoch | attacks, wall (min) |
        |---|---|---|---|---|---|
        | natural_relu | 5.0 | 4.5 | 90 | 1.00 | 0.5 |
        | r | 10.0 | 9.0 | 180 | 2.00 | 1.5 |
    """
    natural = next((row["seconds"].get("cpu") for row in rows
                    if row["recipe"] == REFERENCE), None)
    lines = ["| recipe | training, wall (min) | training, CPU (min) | "
             f"CPU s per epoch | x {REFERENCE}'s epoch | attacks, wall (min) |",
             "|---|---|---|---|---|---|"]
    for row in _frontier.by_cost(rows, cost):
        seconds = row["seconds"]
        total, epoch = seconds.get("fit_cpu"), seconds.get("cpu")
        lines.append(
            f"| {row['recipe']} | {seconds['fit'] / 60:.1f} | "
            + ("" if total is None else f"{total / 60:.1f}") + " | "
            + ("" if epoch is None else f"{epoch:.0f}") + " | "
            + ("" if epoch is None or not natural else f"{epoch / natural:.2f}")
            + f" | {row['eval_seconds'] / 60:.1f} |")
    return "\n".join(lines)


def _collapse_note(name: str, final: dict) -> str:
    return (f"{name}: final training accuracy {final['accuracy']:.3f}, near "
            "chance: collapsed?")


def write_report(rows: Dict[str, dict], settings: dict, out: str,
                 notes: List[str], drawn_only: bool = False) -> str:
    """Writes robustness_per_cost.md and .png; returns the Markdown.

    The header names this process's command: the one that made the rows, or
    with ``drawn_only`` (``--report``) the one that drew them from the stored
    lines, training nothing.
    """
    eps_keys = [f"{eps:g}" for eps in settings["eval_eps"]]
    ordered = list(rows.values())
    notes = notes + [
        _collapse_note(row["recipe"], row["train_final"]) for row in ordered
        if row["train_final"].get("accuracy", 1.0) < COLLAPSED]
    calibrated = [row["recipe"] for row in ordered
                  if row.get("reference", "").startswith("calibrated")]
    retimed = [row["recipe"] for row in ordered if "first_timing" in row]
    if retimed:
        notes.append(
            f"Costs of {', '.join(retimed)}: from a second training run "
            "(--retime), timed as the --workers rows are; their robust "
            "accuracy is the first run's.")
    if calibrated:
        notes.append(
            f"Costs of {', '.join(calibrated)}: against natural training timed"
            " just before each in the same worker process (--workers, one "
            "TensorFlow thread; results.jsonl's `reference`); the others' "
            f"against {REFERENCE}'s own fit.")
    notes += drift_notes(ordered, settings["cost"])
    command = "python benchmarks/robustness_per_cost.py " + " ".join(
        sys.argv[1:])
    header = (f"Robustness per cost: MNIST, paper's CNN, {settings['epochs']} "
              f"epochs on {settings['train_size']} images (batch "
              f"{settings['batch_size']}, Adam {settings['learning_rate']:g}, "
              f"seed {settings['seed']}); robust = per-example worst case of "
              f"{', '.join(settings['eval_attacks'])} ({settings['eval_steps']}"
              f" steps) on the first {settings['test_size']} test images; cost"
              f" = training {settings['cost']} time over {REFERENCE}'s.\n\n"
              + ("Drawn from the stored result lines (training nothing) by"
                 if drawn_only else "Command") + f": `{command}`\n\n")
    text = header + _frontier.markdown(ordered, eps_keys, notes,
                                       settings["cost"], settings["test_size"])
    text += ("\n## Times (the whole fit, then the grid's attacks on the "
             "test images; each recipe in one worker; the median epoch's CPU"
             f" seconds, also over {REFERENCE}'s own fit's)\n\n"
             + times_table(ordered, settings["cost"]) + "\n")
    checked = _with_autoattack.combine(
        rows, _with_autoattack.read_lines(out), eps_keys)
    under_autoattack = _with_autoattack.markdown(checked, eps_keys,
                                                 settings["cost"])
    if under_autoattack:
        text += ("\n## Under AutoAttack (the recipes it has run on, the "
                 "images it has done)\n\n" + under_autoattack)
    with open(os.path.join(out, "robustness_per_cost.md"), "w") as file:
        file.write(text)
    try:
        _frontier.plot(ordered, eps_keys,
                       os.path.join(out, "robustness_per_cost.png"),
                       settings["cost"], checked, settings["test_size"])
    except ImportError:
        print("matplotlib is not installed: no robustness_per_cost.png.")
    return text


def training_settings(settings: dict) -> dict:
    """The settings a stored result must share to be reused: all but those
    that only change the report (or how the data is found)."""
    report_only = ("eval_batch_size", "data_dir", "save_models", "cost")
    return {k: v for k, v in settings.items() if k not in report_only}


def claims(out: str, todo: List[str], run_settings: dict, path: str,
            worker: int):
    """The recipes worker ``worker`` takes, one at a time, as claimed."""
    return iter(lambda: _workers.claim_next(
        out, todo, run_settings, worker, done=lambda: set(read_results(path)),
        describe=lambda name: {"recipe": name},
        key=lambda line: line["recipe"]), None)


def run(settings: dict, names: List[str], table: Dict[str, Recipe],
        out: str, worker: Optional[int] = None) -> Dict[str, dict]:
    """Trains and evaluates the recipes not yet in OUT/results.jsonl.

    With ``worker`` (a number), runs as one of several processes
    (``--workers``): it takes the next recipe no other worker has claimed
    until none is left, times each one against :func:`calibrate`'s natural
    training in its own process, and leaves the report to the parent.
    """
    os.makedirs(out, exist_ok=True)
    path = _results(out)
    stored = stored_rows(settings, out)
    run_settings = training_settings(settings)
    notes = []
    todo = []
    for name in names:
        if name in stored:
            print(f"{name}: already in {path}, skipped", flush=True)
            continue
        todo.append(name)
    x_train = y_train = x_test = y_test = None
    if todo:
        x_train, y_train = datasets.to_arrays(datasets.load(
            "mnist", f"train[:{settings['train_size']}]", settings["data_dir"]))
        x_test, y_test = datasets.to_arrays(datasets.load(
            "mnist", f"test[:{settings['test_size']}]", settings["data_dir"]))
    reference = stored.get(REFERENCE, {}).get("seconds")
    reference_kind = ("stored (an earlier process)" if reference is not None
                      else "same process")
    queue = (enumerate(todo) if worker is None else
             enumerate(claims(out, todo, run_settings, path, worker)))
    for index, name in queue:
        recipe = table[name]
        print(f"[{index + 1}/{len(todo)}] {name}: training "
              f"{recipe.as_dict()}" + (f" (worker {worker})"
                                       if worker is not None else ""),
              flush=True)
        if worker is not None:
            reference = calibrate(x_train, y_train, run_settings)
            reference_kind = _calibrated(reference)
        backup_dir = os.path.join(out, "backup", name)
        network, seconds, final = train(recipe, x_train, y_train,
                                        run_settings, backup_dir)
        # Natural training timed again after the fit: a load that changed
        # during the fit shows as a difference from the reference before.
        after = (calibrate(x_train, y_train, run_settings)
                 if worker is not None else None)
        if settings["save_models"]:
            network.save(os.path.join(out, f"{name}.keras"))
        if name == REFERENCE and worker is None:
            reference = seconds
        ratio = _ratio(seconds, reference)
        print(f"  cost: {ratio['wall']:.2f}x natural (CPU {ratio['cpu']:.2f}x"
              f", whole fit {ratio['wall_fit']:.2f}x); evaluating", flush=True)
        if final.get("accuracy", 1.0) < COLLAPSED:
            print(f"  WARNING: {_collapse_note(name, final)}", flush=True)
        start = time.perf_counter()
        evaluation = evaluate(network, x_test, y_test, settings,
                              os.path.join(backup_dir, EVALUATION_FILE))
        resumed = evaluation.pop("resumed_seconds")
        row = {
            "recipe": name,
            "settings": {"recipe": recipe.as_dict(), "run": run_settings},
            "seconds": seconds,
            "ratio": ratio,
            "reference_seconds": reference,
            "reference": reference_kind,
            **({"reference_after_seconds": after} if after else {}),
            "threads": _workers.threads(),
            "train_final": final,
            **evaluation,
            "eval_seconds": time.perf_counter() - start + resumed,
            "machine": machine(),
            "finished": datetime.datetime.now().isoformat(timespec="seconds"),
        }
        with _workers.locked(out):
            _workers.append_line(path, row)
        shutil.rmtree(backup_dir, ignore_errors=True)
        stored[name] = row
        print(f"  {name}: clean {100 * row['clean']:.1f}%, robust "
              + ", ".join(f"eps {k} {100 * v:.1f}%"
                          for k, v in row["robust"].items())
              + f" (evaluation {row['eval_seconds']:.1f} s)", flush=True)
    if stored and worker is None:
        print(write_report(stored, settings, out, notes))
    return stored


DRIFT = 0.1


def drift_notes(rows: List[dict], cost: str = "cpu",
                limit: float = DRIFT) -> List[str]:
    """Notes on the rows whose natural-training reference, timed again after
    the fit (``reference_after_seconds``), moved by more than ``limit``
    (a fraction) from the one timed before: the machine's load changed
    during the fit, so the row's cost is uncertain by about that much.

    Example:
        >>> row = {"recipe": "a", "reference_seconds": {"cpu": 100.0},
        ...        "reference_after_seconds": {"cpu": 125.0}}
        >>> print(*drift_notes([row, {"recipe": "b"}]))
        Natural training timed again after the fit took 25% more cpu time
        than before it: a (the load changed during the fit; that cost is
        uncertain by about as much).
    """
    moved = []
    for row in rows:
        after = row.get("reference_after_seconds")
        if not after:
            continue
        change = after[cost] / row["reference_seconds"][cost] - 1
        if abs(change) > limit:
            moved.append((row["recipe"], change))
    return [
        f"Natural training timed again after the fit took "
        f"{abs(change):.0%} {'more' if change > 0 else 'less'} {cost} time "
        f"than before it: {name} (the load changed during the fit; that "
        "cost is uncertain by about as much)." for name, change in moved]


def _ratio(seconds: dict, reference: dict) -> dict:
    """A recipe's cost: its seconds over the reference's."""
    return {"wall": seconds["wall"] / reference["wall"],
            "cpu": seconds["cpu"] / reference["cpu"],
            "wall_fit": seconds["fit"] / reference["fit"]}


def _calibrated(reference: dict) -> str:
    """The ``reference`` field of a row timed against :func:`calibrate`."""
    return (f"calibrated: {reference['basis']} (TensorFlow threads: "
            f"{_workers.threads()})")


TIMING_FIELDS = ("seconds", "ratio", "reference_seconds", "reference",
                 "threads")


def retime(settings: dict, names: List[str], table: Dict[str, Recipe],
           out: str) -> Dict[str, dict]:
    """Times the stored recipes among ``names`` again, in this process.

    Each one is trained again (no checkpoint, no model saved, nothing
    evaluated) just after :func:`calibrate`'s natural training, as a
    ``--workers`` process times its recipes, and a new line replaces its
    timing fields (:data:`TIMING_FIELDS`) while keeping its robust accuracy;
    the first timing moves to ``first_timing``. For rows timed before
    ``--workers`` existed, so that every cost in one table is against a
    calibration under the same threads: run it with the workers' threads
    (``TF_NUM_INTRAOP_THREADS=1 TF_NUM_INTEROP_THREADS=1``). A recipe
    already re-timed is skipped.
    """
    path = _results(out)
    stored = stored_rows(settings, out)
    run_settings = training_settings(settings)
    todo = [name for name in names if name in stored
            and "first_timing" not in stored[name]
            and str(stored[name].get("threads")) != _workers.threads()]
    if not todo:
        return stored
    x_train, y_train = datasets.to_arrays(datasets.load(
        "mnist", f"train[:{settings['train_size']}]", settings["data_dir"]))
    for name in todo:
        print(f"{name}: timing again against natural training "
              f"(threads: {_workers.threads()})", flush=True)
        reference = calibrate(x_train, y_train, run_settings)
        _, seconds, _ = train(table[name], x_train, y_train, run_settings)
        row = dict(stored[name])
        row["first_timing"] = {key: row.get(key) for key in TIMING_FIELDS}
        row.update(seconds=seconds, ratio=_ratio(seconds, reference),
                   reference_seconds=reference,
                   reference=_calibrated(reference),
                   threads=_workers.threads(),
                   retimed=datetime.datetime.now().isoformat(
                       timespec="seconds"))
        print(f"  cost: {row['ratio']['cpu']:.2f}x natural in CPU time (first"
              f" timing {row['first_timing']['ratio']['cpu']:.2f}x)",
              flush=True)
        with _workers.locked(out):
            _workers.append_line(path, row)
        stored[name] = row
    return stored


def _has_results(out: str) -> bool:
    """Whether ``out`` holds a results.jsonl (a grid run began there)."""
    return os.path.exists(_results(out))


def main(argv, flag_values: flags.FlagValues = FLAGS):
    """Runs the grid with the parsed ``flag_values`` (see ``define_flags``)."""
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
    if not flag_values.out:
        raise app.UsageError("--out is required.")
    settings = _settings(flag_values)
    _check_attacks(settings)
    table = recipe_table(settings["train_eps"])
    names = _recipes(table, flag_values)
    tf.get_logger().setLevel("ERROR")
    if flag_values.workers < 1:
        raise app.UsageError("--workers must be >= 1.")
    if flag_values.report:
        if not _has_results(flag_values.out):
            raise app.UsageError(
                f"--report: no {flag_values.out}/results.jsonl yet.")
        print(write_report(stored_rows(settings, flag_values.out), settings,
                           flag_values.out, [], drawn_only=True))
        return
    if flag_values.retime:
        if flag_values.workers > 1:
            raise app.UsageError("--retime runs in one process; drop --workers.")
        if not _has_results(flag_values.out):
            # A fresh machine: nothing was timed before, nothing to time again.
            print(f"--retime: no {flag_values.out}/results.jsonl yet; nothing "
                  "to time again.", flush=True)
            return
        chosen = flag_values.recipes or ["all"]
        if chosen[-1] != "all":  # natural_relu only when named
            names = [name for name in names if name in chosen]
        stored = retime(settings, names, table, flag_values.out)
        print(write_report(stored, settings, flag_values.out, []))
        return
    if flag_values.workers > 1 and flag_values.worker is None:
        print(f"Machine: {machine()}; {flag_values.workers} workers",
              flush=True)
        _workers.run_workers(__file__, sys.argv[1:], flag_values.out,
                             flag_values.workers)
    run(settings, names, table, flag_values.out, worker=flag_values.worker)


if __name__ == "__main__":
    define_flags()
    app.run(main)
