r"""Robustness per cost: a grid of training recipes on MNIST, robust accuracy against cost.

Each recipe of ``_recipes.recipe_table`` is trained, timed against natural training and
evaluated by ``keras_gradreg.RobustnessReport``; one line per recipe goes to
``OUT/results.jsonl`` and ``_grid_report`` draws ``OUT/robustness_per_cost.md`` and
``.png`` from them. How and why: benchmarks/README.md.

    python benchmarks/robustness_per_cost.py --data_dir ../shared/data/mnist \
        --epochs 3 --test_size 1000 --out runs/robustness_per_cost
"""

from __future__ import annotations

import contextlib
import datetime
import fcntl
import json
import os
import shutil
import sys
import time
from typing import Dict, List, Optional

import tensorflow as tf
from absl import app
from absl import flags

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _grid_report  # noqa: E402
import _recipes  # noqa: E402

import keras_gradreg  # noqa: E402
from keras_gradreg import attacks  # noqa: E402
from keras_gradreg import datasets  # noqa: E402
from keras_gradreg import evaluation  # noqa: E402

from _common import bits  # noqa: E402
from _common import parse_shard  # noqa: E402

FLAGS = flags.FLAGS
REFERENCE = _recipes.REFERENCE
LOSSES = {"apgd_ce": ("apgd", "ce"), "apgd_dlr": ("apgd", "dlr")}
# The settings that only change the report or how data is found.
REPORT_ONLY = ("eval_batch_size", "data_dir", "save_models", "cost")
POSITIVE = ("epochs", "train_size", "batch_size", "eval_steps", "pgd_restarts", "test_size",
            "eval_batch_size")


def define_flags(flag_values: flags.FlagValues = FLAGS) -> None:
    """Defines the script's flags in ``flag_values`` (under ``__main__``)."""
    on = {"flag_values": flag_values}
    flags.DEFINE_string("out", None, "Output folder (results.jsonl, .md, .png).", **on)
    flags.DEFINE_string("data_dir", None, "Folder with the four MNIST IDX .gz files "
                        "(default: tensorflow-datasets).", **on)
    flags.DEFINE_list("recipes", None, "Recipes in this order (default: all); a last name "
                      "`all` adds the rest. natural_relu always runs first.", **on)
    flags.DEFINE_integer("epochs", 3, "Training epochs of every recipe.", **on)
    flags.DEFINE_integer("train_size", 60000, "First N training images.", **on)
    flags.DEFINE_integer("batch_size", 50, "Training batch size.", **on)
    flags.DEFINE_float("learning_rate", 1e-3, "Adam's learning rate.", **on)
    flags.DEFINE_integer("seed", 0, "Seed of weights, batch order and attacks.", **on)
    flags.DEFINE_float("train_eps", 0.1, "L-inf radius of adversarial training.", **on)
    flags.DEFINE_list("eval_eps", ["0.1", "0.2", "0.3"], "Evaluation radii.", **on)
    flags.DEFINE_list("eval_attacks", ["apgd_ce", "apgd_dlr", "pgd"], "Attacks of the worst "
                      "case: names in ATTACKS, APGD once per loss (apgd_ce, apgd_dlr).", **on)
    flags.DEFINE_integer("eval_steps", 50, "Iterations of the attacks that take steps "
                         "(autoattack keeps its own).", **on)
    flags.DEFINE_integer("pgd_restarts", 3, "Random restarts of PGD.", **on)
    flags.DEFINE_integer("test_size", 1000, "First N test images.", **on)
    flags.DEFINE_integer("eval_batch_size", 500, "Examples per attack call (and per "
                         "resumable chunk).", **on)
    flags.DEFINE_bool("attack_survivors", True, "Each attack only on the images earlier "
                      "attacks left correct (AutoAttack's way).", **on)
    flags.DEFINE_enum("cost", "wall", ["wall", "cpu"], "The cost shown: wall-clock or "
                      "process CPU time ratio (both are stored).", **on)
    flags.DEFINE_bool("save_models", False, "Also save OUT/<recipe>.keras.", **on)
    flags.DEFINE_string("shard", None, "i/n: this process takes every n-th recipe from the "
                        "i-th (0-based), timed against its own natural training.", **on)
    flags.DEFINE_bool("report", False, "Train and attack nothing: redraw the report of "
                      "OUT/results.jsonl.", **on)


def attack_specs(settings: dict) -> Dict[str, tuple]:
    """``RobustnessReport`` attacks: key -> (registry name, options): seed, clip range,
    batch, ``--eval_steps`` (not for the headline attack) and PGD's restarts, where taken."""
    specs = {}
    for key in settings["eval_attacks"]:
        name, loss = LOSSES.get(key, (key, None))
        if name not in attacks.ATTACKS:
            raise app.UsageError(f"Unknown --eval_attacks ['{key}']: use some of "
                                 f"{sorted(set(attacks.ATTACKS) - {'apgd'} | set(LOSSES))}.")
        options = {"seed": settings["seed"], "batch_size": settings["eval_batch_size"],
                   "clip_min": 0.0, "clip_max": 1.0, "loss": loss,
                   "restarts": settings["pgd_restarts"] if name == "pgd" else None}
        if not getattr(attacks.ATTACKS[name], "headline", False):
            options["steps"] = settings["eval_steps"]
        specs[key] = (name, {k: v for k, v in options.items()
                             if v is not None and attacks.accepts(name, k)})
    return specs


def evaluate(network, x, y, settings: dict, resume_dir: Optional[str] = None) -> dict:
    """Clean accuracy, worst case and per-attack accuracies of ``network``.

    Returns ``clean``, ``robust`` (eps key -> worst case), ``per_attack`` and ``attacked``
    (eps key -> attack -> accuracy after it / images it attacked) and ``correct`` (bits:
    clean, and per eps and attack; with ``attack_survivors`` what is left after it and
    every earlier attack).
    """
    report = keras_gradreg.RobustnessReport(
        {"grid": network}, attack_specs(settings), settings["eval_eps"],
        batch_size=settings["eval_batch_size"], verbose=0,
        worst_case_only=settings["attack_survivors"])
    results = report.run((x, y), resume_dir=resume_dir)
    clean = results.correct("grid")
    row = {"clean": float(clean.mean()), "robust": {}, "per_attack": {}, "attacked": {},
           "correct": {"clean": bits(clean)}}
    for eps in settings["eval_eps"]:
        key, before = f"{eps:g}", clean
        for field in ("per_attack", "attacked", "correct"):
            row[field][key] = {}
        for name in settings["eval_attacks"]:
            after = results.correct("grid", name, eps) & clean
            row["per_attack"][key][name] = float(after.mean())
            row["attacked"][key][name] = int(before.sum())
            row["correct"][key][name] = bits(after)
            before = after if settings["attack_survivors"] else clean
        row["robust"][key] = float(results.correct("grid", "worst_case", eps).mean())
        print(f"  eps {key}: worst case {100 * row['robust'][key]:.1f}% ("
              + ", ".join(f"{n} {100 * v:.1f}%" for n, v in row["per_attack"][key].items())
              + ")", flush=True)
    return row


@contextlib.contextmanager
def _locked(out: str):
    """Holds OUT/.lock: one process at a time reads or appends results.jsonl."""
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, ".lock"), "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield


def training_settings(settings: dict) -> dict:
    """The settings a stored result must share to be reused."""
    return {k: v for k, v in settings.items() if k not in REPORT_ONLY}


def stored_rows(settings: dict, out: str) -> Dict[str, dict]:
    """The finished recipes in OUT/results.jsonl by name (last line wins); a usage error
    if they were run with other settings."""
    path, rows, now = os.path.join(out, "results.jsonl"), {}, training_settings(settings)
    if os.path.exists(path):
        with _locked(out), open(path) as file:
            rows = {row["recipe"]: row for row in map(json.loads, filter(str.strip, file))}
    for name, row in rows.items():
        then = row["settings"]["run"]
        changed = sorted(k for k in set(then) | set(now) if then.get(k) != now.get(k))
        if changed:
            raise app.UsageError(
                f"{path} holds {name}, run with other settings (" + ", ".join(
                    f"{k}: {then.get(k)!r} then, {now.get(k)!r} now" for k in changed)
                + "); use another --out to compare different settings.")
    return rows


def _ratio(seconds: dict, reference: dict) -> dict:
    return {"wall": seconds["wall"] / reference["wall"],
            "cpu": seconds["cpu"] / reference["cpu"],
            "wall_fit": seconds["fit"] / reference["fit"]}


def _load(settings: dict, split: str, size: int):
    return datasets.to_arrays(datasets.load("mnist", f"{split}[:{size}]", settings["data_dir"]))


def run(settings: dict, names: List[str], out: str,
        shard: Optional[tuple] = None) -> Dict[str, dict]:
    """Trains and evaluates the recipes of ``names`` not yet stored (with ``shard=(i, n)``
    every n-th from the i-th, each against its own calibrated natural training); returns
    the stored rows."""
    stored, table = stored_rows(settings, out), _recipes.recipe_table(settings["train_eps"])
    run_settings = training_settings(settings)
    names = names if shard is None else names[shard[0]::shard[1]]
    todo = [name for name in names if name not in stored]
    for name in set(names) - set(todo):
        print(f"{name}: already in {out}/results.jsonl, skipped", flush=True)
    if todo:
        x_train, y_train = _load(settings, "train", settings["train_size"])
        x_test, y_test = _load(settings, "test", settings["test_size"])
    reference = stored.get(REFERENCE, {}).get("seconds")
    kind = "stored (an earlier process)" if reference is not None else "same process"
    threads = os.environ.get("TF_NUM_INTRAOP_THREADS", "default")
    for index, name in enumerate(todo):
        recipe, after = table[name], None
        print(f"[{index + 1}/{len(todo)}] {name}: training {recipe.as_dict()}", flush=True)
        if shard is not None:
            reference = _recipes.calibrate(x_train, y_train, run_settings)
            kind = f"calibrated: {reference['basis']} (TensorFlow threads: {threads})"
        backup = os.path.join(out, "backup", name)
        network, seconds, final = _recipes.train(recipe, x_train, y_train, run_settings,
                                                 backup)
        if shard is not None:
            after = _recipes.calibrate(x_train, y_train, run_settings)
        if settings["save_models"]:
            network.save(os.path.join(out, f"{name}.keras"))
        if name == REFERENCE and shard is None:
            reference = seconds
        ratio = _ratio(seconds, reference)
        print(f"  cost: {ratio['wall']:.2f}x natural (CPU {ratio['cpu']:.2f}x, whole fit "
              f"{ratio['wall_fit']:.2f}x); evaluating", flush=True)
        if final.get("accuracy", 1.0) < _grid_report.COLLAPSED:
            print(f"  WARNING: {_grid_report.collapse_note(name, final)}", flush=True)
        start = time.perf_counter()
        measured = evaluate(network, x_test, y_test, settings, os.path.join(backup, "chunks"))
        row = {"recipe": name, "settings": {"recipe": recipe.as_dict(), "run": run_settings},
               "seconds": seconds, "ratio": ratio, "reference_seconds": reference,
               "reference": kind, **({"reference_after_seconds": after} if after else {}),
               "threads": threads, "train_final": final, **measured,
               "eval_seconds": time.perf_counter() - start, "machine": evaluation.environment(),
               "finished": datetime.datetime.now().isoformat(timespec="seconds")}
        with _locked(out), open(os.path.join(out, "results.jsonl"), "a") as handle:
            handle.write(json.dumps(row) + "\n")
        shutil.rmtree(backup, ignore_errors=True)
        stored[name] = row
        print(f"  {name}: clean {100 * row['clean']:.1f}%, robust " + ", ".join(
            f"eps {k} {100 * v:.1f}%" for k, v in row["robust"].items()), flush=True)
    return stored


def _settings(flag_values: flags.FlagValues) -> dict:
    for name in POSITIVE:
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
    names = ("epochs", "train_size", "batch_size", "learning_rate", "seed", "train_eps",
             "eval_steps", "pgd_restarts", "test_size", "eval_batch_size", "attack_survivors",
             "data_dir", "save_models", "cost")
    return {**{name: flag_values[name].value for name in names},
            "eval_eps": eval_eps, "eval_attacks": list(flag_values.eval_attacks)}


def recipes(flag_values: flags.FlagValues, train_eps: float) -> List[str]:
    """The recipes to run, natural_relu first."""
    table = _recipes.recipe_table(train_eps)
    names = list(flag_values.recipes or table)
    if names and names[-1] == "all":  # the named ones first, then the rest
        names = names[:-1] + [name for name in table if name not in names]
    unknown = [name for name in names if name not in table]
    if unknown:
        raise app.UsageError(f"Unknown recipes {unknown} (at --train_eps {train_eps:g}). "
                             f"Use some of {list(table)}.")
    return [REFERENCE] + [name for name in names if name != REFERENCE]


def main(argv, flag_values: flags.FlagValues = FLAGS):
    """Runs the grid with the parsed ``flag_values`` (see ``define_flags``)."""
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
    if not flag_values.out:
        raise app.UsageError("--out is required.")
    settings = _settings(flag_values)
    attack_specs(settings)
    names = recipes(flag_values, settings["train_eps"])
    shard, out = parse_shard(flag_values.shard), flag_values.out
    tf.get_logger().setLevel("ERROR")
    command = "python benchmarks/robustness_per_cost.py " + " ".join(sys.argv[1:])
    if flag_values.report and not os.path.exists(os.path.join(out, "results.jsonl")):
        raise app.UsageError(f"--report: no {out}/results.jsonl yet.")
    if flag_values.report:
        stored = stored_rows(settings, out)
    else:
        print(f"Machine: {evaluation.environment()}", flush=True)
        stored = run(settings, names, out, shard)
    if stored and (shard is None or flag_values.report):
        print(_grid_report.write(stored, settings, out, command, drawn_only=flag_values.report))


if __name__ == "__main__":
    define_flags()
    app.run(main)
