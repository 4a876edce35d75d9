r"""Chooses the penalty weight c of Xent-reg and Logit-reg on validation data.

The paper does not state c. For each c of a grid this trains Xent-reg
(cross-entropy regularizer) and Logit-reg (logit margin, Eq. 3) on the
training split minus its last ``--val_size`` examples, plus one Natural
model for reference, and measures clean, FGSM and BIM accuracy (the paper's
eps, step and iterations) on those held-out ``--val_size`` training examples:
a validation split carved from the training data, never the test set.

The chosen c of each regularizer maximizes the mean FGSM and BIM accuracy
over the paper's eps among the c whose clean accuracy is at most
``--max_clean_drop`` below the Natural model's; ``null`` when none is. Set
the examples' ``--c_xent`` / ``--c_logit`` defaults (``SETTINGS`` in
``keras_gradreg/paper.py``) from it.

    python examples/sweep_c.py --dataset mnist --data_dir ../shared/data/mnist \
        --train_size 10000 --val_size 2000 --epochs 3 --out runs/sweep_mnist

Writes ``sweep.json`` and ``sweep.md`` into ``--out``, and (unless
``--notensorboard``) one TensorBoard run per model under ``--out/logs``
(``natural``, ``xent_reg_c10``, ``logit_reg_c0.1``, ...) whose HParams
dashboard compares the points of the sweep: ``tensorboard --logdir
<out>/logs``.
"""

from __future__ import annotations

import dataclasses
import json
import os
import time
from typing import Optional, Sequence

import keras
from absl import app
from absl import flags

import keras_gradreg
from keras_gradreg import attacks
from keras_gradreg import datasets
from keras_gradreg import paper
from keras_gradreg.evaluation import markdown_table

import _experiment  # examples/, first on sys.path when run as a script
import _tensorboard_logging

FLAGS = flags.FLAGS


@dataclasses.dataclass(frozen=True)
class SweepConfig(_experiment.TrainingConfig):
    """Every value one sweep needs (the flags; a None takes the dataset's
    default from :data:`keras_gradreg.paper.SETTINGS`): the training fields
    of ``_experiment.TrainingConfig`` and the grids'."""

    dataset: str = "mnist"
    val_size: int = 5000
    c_xent_grid: Optional[Sequence] = None
    c_logit_grid: Optional[Sequence] = None
    max_clean_drop: float = 0.03


def define_flags(flag_values: flags.FlagValues = FLAGS) -> None:
    """The sweep's flags: the training flags and the grids'."""
    _experiment.define_training_flags(flag_values)
    flags.DEFINE_enum("dataset", "mnist", sorted(paper.SETTINGS),
                      "The dataset, with the paper's attack settings.",
                      flag_values=flag_values)
    flags.DEFINE_list(
        "c_xent_grid", None,
        "c values of Xent-reg. Default: the example's c times 0.1, 0.3, 1, 3, 10.",
        flag_values=flag_values)
    flags.DEFINE_list(
        "c_logit_grid", None,
        "c values of Logit-reg. Default: the example's c times 0.1, 0.3, 1, 3, 10.",
        flag_values=flag_values)
    flags.DEFINE_integer(
        "val_size", 5000,
        "Validation examples, taken from the end of the training split.",
        flag_values=flag_values)
    flags.DEFINE_float("max_clean_drop", 0.03,
                       "Largest allowed drop of clean validation accuracy below "
                       "the Natural model's, as a fraction.",
                       flag_values=flag_values)


def config_from_flags(flag_values: flags.FlagValues = FLAGS) -> SweepConfig:
    """The :class:`SweepConfig` of parsed flags (flag name == field name)."""
    return SweepConfig(**{
        field.name: flag_values[field.name].value
        for field in dataclasses.fields(SweepConfig)})


GRID_FACTORS = (0.1, 0.3, 1.0, 3.0, 10.0)
REGULARIZERS = {"xent_reg": "cross_entropy", "logit_reg": "logit_margin"}
# The sweep's criterion: mean accuracy under these (the paper's FGSM, BIM).
CRITERION = attacks.SELECTION_ATTACKS


def grid(values: Optional[list], default_c: float) -> list:
    """Parses a grid flag; None gives ``default_c`` times GRID_FACTORS.

    Raises:
        ValueError: For a value that is not a number >= 0.

    Example:
        >>> grid(["0.1", "1"], 5.0), grid(None, 2.0)[:2]
        ([0.1, 1.0], [0.2, 0.6])
    """
    if values is None:
        return [round(default_c * f, 12) for f in GRID_FACTORS]
    try:
        parsed = [float(value) for value in values]
    except ValueError as error:
        raise ValueError(f"c grids must be numbers, got {values}.") from error
    if any(c < 0 for c in parsed):
        raise ValueError(f"c must be >= 0, got {values}.")
    return parsed


def score(entry: dict) -> float:
    """Mean accuracy under the CRITERION attacks (FGSM and BIM) over the
    eps: the sweep's criterion."""
    accs = [acc for attack in CRITERION for acc in entry[attack].values()]
    return sum(accs) / len(accs)


def choose(entries: list, natural_clean: float, max_clean_drop: float):
    """The c of the best-scoring entry clean enough, or None."""
    allowed = [e for e in entries if e["clean"] >= natural_clean - max_clean_drop]
    return max(allowed, key=lambda e: e["score"])["c"] if allowed else None


def _evaluate(settings, model, validation, eval_batch_size: int) -> dict:
    """``{"clean": acc, <attack>: {eps: acc}}`` for the CRITERION attacks."""
    specs = {k: v for k, v in _experiment.paper_attacks(settings).items()
             if k in CRITERION}
    report = keras_gradreg.RobustnessReport(
        {"model": model}, specs, settings.eps_values,
        batch_size=eval_batch_size, verbose=1)
    results = report.run(validation)
    entry = {"clean": results.accuracy("model")}
    for attack in CRITERION:
        entry[attack] = {f"{eps:g}": results.accuracy("model", attack, eps)
                         for eps in results.eps_values}
    return entry


def run_name(spec) -> str:
    """The TensorBoard run folder of one sweep point, e.g. ``logit_reg_c0.1``.

    Example:
        >>> run_name(_experiment.ModelSpec("xent_reg", None, {"c": 10.0}))
        'xent_reg_c10'
    """
    c = spec.info.get("c")
    return spec.name if c is None else f"{spec.name}_c{c:g}"


def _train_and_evaluate(config, settings, spec, train, validation, epochs,
                        learning_rate, run_logger=None) -> dict:
    spec = dataclasses.replace(spec, name=run_name(spec))
    model, record = _experiment.train_model(
        spec, train, epochs, learning_rate, run_logger)
    seconds, history = record.fit_seconds()["wall"], record.history
    entry = dict(c=spec.info.get("c"), train_time_s=seconds,
                 **_evaluate(settings, model, validation,
                                config.eval_batch_size))
    entry["score"] = score(entry)
    entry["final_grad_loss"] = history.get("grad_loss", [None])[-1]
    if run_logger is not None:
        hparams = _tensorboard_logging.model_hparams(
            spec.name, spec.info, dataset=settings.dataset, epochs=epochs,
            learning_rate=learning_rate, seed=config.seed,
            train_size=config.train_size)
        results = {key: entry[key] for key in ("clean", *CRITERION)}
        run_logger.finish(spec.name, hparams, results, seconds,
                          {"final/score": entry["score"]})
    return entry


def _markdown(sweep: dict) -> str:
    natural = sweep["natural"]
    eps = list(natural[CRITERION[0]])
    titles = [_experiment.attack_title(attack) for attack in CRITERION]
    header = (["Model", "c", "clean"]
              + [f"{title} {e}" for title in titles for e in eps]
              + ["score", "train (s)"])
    lines = [
        f"# c sweep on {sweep['settings']['dataset']} (validation accuracy, %)",
        "", f"{sweep['settings']['val_size']} validation examples carved from "
        f"the training split; score = mean {' and '.join(titles)} "
        "accuracy; chosen: "
        f"{sweep['chosen']} (clean at most "
        f"{100 * sweep['settings']['max_clean_drop']:.1f} points below "
        "Natural).", ""]
    rows = [("natural", natural)] + [
        (name, e) for name in REGULARIZERS for e in sweep[name]]
    table = []
    for name, e in rows:
        cells = [name, f"{e['c'] if e['c'] is not None else ''}",
                 f"{100 * e['clean']:.1f}"]
        cells += [f"{100 * e[a][k]:.1f}" for a in CRITERION for k in eps]
        cells += [f"{100 * e['score']:.1f}", f"{e['train_time_s']:.1f}"]
        table.append(cells)
    return "\n".join(lines + markdown_table(header, table)) + "\n"


def run(config: SweepConfig, settings=None) -> dict:
    """Runs the sweep; returns what it writes to ``<out>/sweep.json``.

    Args:
        config: The sweep's values (the flags).
        settings: The dataset's paper settings. Default:
            ``keras_gradreg.paper.SETTINGS[config.dataset]`` (tests pass a
            copy with a smaller network).
    """
    settings = settings or paper.SETTINGS[config.dataset]
    out = config.out or os.path.join("runs", f"sweep_{config.dataset}")
    os.makedirs(out, exist_ok=True)
    keras.utils.set_random_seed(config.seed)
    grids = {"xent_reg": grid(config.c_xent_grid, settings.c_xent),
             "logit_reg": grid(config.c_logit_grid, settings.c_logit)}
    if config.val_size <= 0:
        raise ValueError(f"--val_size must be > 0, got {config.val_size}.")
    train_split = f"train[:-{config.val_size}]"
    train = datasets.load(settings.dataset, train_split, config.data_dir)
    if config.train_size is not None:
        train = train.take(config.train_size)
    batch_size = _experiment.or_default(config.batch_size, settings.batch_size)
    train = _experiment.batched(train, batch_size, config.seed)
    validation = datasets.to_arrays(datasets.load(
        settings.dataset, f"train[-{config.val_size}:]", config.data_dir))
    epochs = _experiment.or_default(config.epochs, settings.epochs)
    learning_rate = _experiment.or_default(
        config.learning_rate, settings.learning_rate)
    run_logger = _tensorboard_logging.RunLogger(
        os.path.join(out, "logs"),
        datasets.to_arrays(datasets.load(settings.dataset, train_split,
                                         config.data_dir),
                           limit=_tensorboard_logging.PROBE_SIZE),
        _tensorboard_logging.first(validation,
                                   _tensorboard_logging.HELD_OUT_SIZE),
        settings.eps_values, settings.clip) if config.tensorboard else None

    start = time.perf_counter()
    natural_spec = _experiment.ModelSpec(
        "natural", settings.build_model, {"kind": "natural"})
    sweep = {"natural": _train_and_evaluate(
        config, settings, natural_spec, train, validation, epochs, learning_rate,
        run_logger)}
    norm_logit = config.norm_logit
    for name, regularizer in REGULARIZERS.items():
        sweep[name] = []
        for c in grids[name]:
            spec = _experiment.ModelSpec(
                name, lambda c=c, r=regularizer: keras_gradreg.GradRegModel(
                    settings.build_model(), c=c, regularizer=r,
                    norm=norm_logit if r == "logit_margin" else "squared_l2"),
                {"kind": "gradreg", "regularizer": regularizer, "c": c,
                 "norm": (norm_logit if regularizer == "logit_margin"
                          else "squared_l2")})
            sweep[name].append(_train_and_evaluate(
                config, settings, spec, train, validation, epochs, learning_rate,
                run_logger))
    sweep["chosen"] = {
        name: choose(sweep[name], sweep["natural"]["clean"], config.max_clean_drop)
        for name in REGULARIZERS}
    sweep["settings"] = dict(
        {name: getattr(config, name) for name in (
            "dataset", "data_dir", "epochs", "batch_size", "learning_rate",
            "train_size", "val_size", "norm_logit", "max_clean_drop",
            "eval_batch_size", "seed")},
        epochs=epochs, batch_size=batch_size, grids=grids, out=out,
        learning_rate=learning_rate,
        train_split=train_split, val_examples=len(validation[1]),
        wall_time_s=time.perf_counter() - start)
    with open(os.path.join(out, "sweep.json"), "w") as handle:
        json.dump(sweep, handle, indent=2)
    text = _markdown(sweep)
    with open(os.path.join(out, "sweep.md"), "w") as handle:
        handle.write(text)
    print("\n" + text, flush=True)
    if run_logger is not None:
        run_logger.write_hparams()
        _tensorboard_logging.print_tensorboard_command(run_logger.root)
    return sweep


def main(argv) -> None:
    """Runs the sweep (flags already parsed by absl)."""
    del argv
    run(config_from_flags(FLAGS))


if __name__ == "__main__":
    define_flags()
    app.run(main)
