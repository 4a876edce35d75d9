"""The robustness-per-cost report: tables, front statements, notes, chart.

Pure functions of the grid's result rows (``OUT/results.jsonl``) and of AutoAttack's
lines on some of the grid's models (``OUT/autoattack/results.jsonl``); the front and the
noise test are ``keras_gradreg.evaluation``'s.
"""

from __future__ import annotations

import json
import os
from typing import Dict, List, Mapping, Optional, Sequence, Tuple

import numpy as np

from keras_gradreg import evaluation
from keras_gradreg.evaluation import markdown_table as table

REFERENCE = "natural_relu"
COLLAPSED = 0.2  # final training accuracy flagged as a collapse (chance: 0.1)
DRIFT = 0.1  # reference change during a fit that the report points out


def _percent(value: Optional[float]) -> str:
    return "" if value is None else f"{100 * value:.1f}"


def by_cost(rows: Sequence[Mapping], cost: str) -> List[Mapping]:
    """``rows`` in the tables' order: by cost ratio, then recipe name."""
    return sorted(rows, key=lambda r: (r["ratio"][cost], r["recipe"]))


def _columns(rows: Sequence[Mapping], eps_keys: Sequence[str], cost: str):
    """``(costs, robust, labels)`` of ``rows`` for the library's front functions."""
    return ([row["ratio"][cost] for row in rows],
            {key: [row["robust"].get(key) for row in rows] for key in eps_keys},
            [row["recipe"] for row in rows])


def statements(rows: Sequence[Mapping], eps_keys: Sequence[str], cost: str,
               images=None) -> List[str]:
    """One sentence per eps naming the front, and where a step along it (or the most
    robust recipe's lead) is within two standard errors on ``images`` images
    (``evaluation.front_statements``)."""
    return evaluation.front_statements(*_columns(rows, eps_keys, cost), images,
                                       cost_unit="x natural")


def _cost_name(cost: str) -> str:
    return "cost x natural" + ("" if cost == "wall" else f" ({cost})")


def cost_table(rows: Sequence[Mapping], eps_keys: Sequence[str], notes: Sequence[str],
               cost: str, images: Optional[int]) -> str:
    """The table by cost (the front in bold), the statements and ``notes``."""
    costs, robust, labels = _columns(rows, eps_keys, cost)
    lines = evaluation.robustness_per_cost_table(
        costs, robust, labels, [row["clean"] for row in rows], _cost_name(cost))
    lines += [""] + [f"- {line}" for line in statements(rows, eps_keys, cost, images)]
    return "\n".join(lines + ([""] + [f"- {note}" for note in notes] if notes else [])) + "\n"


def times_table(rows: Sequence[Mapping], cost: str) -> str:
    """Each recipe's training (wall, CPU) and attack minutes, its median epoch's CPU
    seconds and their ratio to natural_relu's own epoch."""
    natural = next((row["seconds"].get("cpu") for row in rows if row["recipe"] == REFERENCE),
                   None)
    cells = []
    for row in by_cost(rows, cost):
        seconds = row["seconds"]
        total, epoch = seconds.get("fit_cpu"), seconds.get("cpu")
        cells.append([row["recipe"], f"{seconds['fit'] / 60:.1f}",
                      "" if total is None else f"{total / 60:.1f}",
                      "" if epoch is None else f"{epoch:.0f}",
                      "" if epoch is None or not natural else f"{epoch / natural:.2f}",
                      f"{row['eval_seconds'] / 60:.1f}"])
    return "\n".join(table(["recipe", "training, wall (min)", "training, CPU (min)",
                            "CPU s per epoch", f"x {REFERENCE}'s epoch",
                            "attacks, wall (min)"], cells))


def collapse_note(name: str, final: Mapping) -> str:
    """The warning for a recipe whose training accuracy ended near chance."""
    return f"{name}: final training accuracy {final['accuracy']:.3f}, near chance: collapsed?"


def notes(rows: Sequence[Mapping], cost: str, limit: float = DRIFT) -> List[str]:
    """The report's notes: collapses, calibrated costs, and rows whose natural-training
    reference, timed again after the fit, moved by more than ``limit``."""
    found = [collapse_note(row["recipe"], row["train_final"]) for row in rows
             if row["train_final"].get("accuracy", 1.0) < COLLAPSED]
    calibrated = [row["recipe"] for row in rows
                  if row.get("reference", "").startswith("calibrated")]
    if calibrated:
        found.append(f"Costs of {', '.join(calibrated)}: against natural training timed just "
                     "before each in the same shard process (--shard, one TensorFlow "
                     "thread; results.jsonl's `reference`); the others' against "
                     f"{REFERENCE}'s own fit.")
    for row in rows:
        after = row.get("reference_after_seconds")
        change = after and after[cost] / row["reference_seconds"][cost] - 1
        if after and abs(change) > limit:
            found.append(
                f"Natural training timed again after the fit took {abs(change):.0%} "
                f"{'more' if change > 0 else 'less'} {cost} time than before it: "
                f"{row['recipe']} (the load changed during the fit; that cost is uncertain "
                "by about as much).")
    return found


# AutoAttack on the grid's models ------------------------------------------------------


def _bools(text: str) -> np.ndarray:
    return np.array([char == "1" for char in text], bool)


def with_autoattack(rows: Mapping[str, Mapping], lines: Sequence[Mapping],
                    eps_keys: Sequence[str]) -> List[dict]:
    """Per recipe AutoAttack has run on, and eps: the grid's worst case and the per-image
    worst of the grid and AutoAttack, on AutoAttack's images (the first ``images[eps]``;
    a later line for a model and eps wins).

    Raises:
        ValueError: If AutoAttack's clean predictions differ from the grid's.
    """
    latest = {(line["model"], f"{float(line['eps']):g}"): line for line in lines}
    combined = []
    for name, row in rows.items():
        result = {"recipe": name, "ratio": row["ratio"], "images": {}, "grid": {},
                  "robust": {}}
        for key in eps_keys:
            line = latest.get((name, key))
            if line is None or key not in row["correct"]:
                continue
            count = len(line["clean"])
            clean = _bools(row["correct"]["clean"][:count])
            if not np.array_equal(clean, _bools(line["clean"])):
                raise ValueError(f"{name}, eps {key}: AutoAttack's clean predictions on the "
                                 f"first {count} test images differ from the grid's; they "
                                 "did not attack the same model or images.")
            grid = clean.copy()
            for text in row["correct"][key].values():
                grid &= _bools(text[:count])
            result["images"][key] = count
            result["grid"][key] = float(grid.mean())
            result["robust"][key] = float((grid & _bools(line["robust"])).mean())
        if result["robust"]:
            combined.append(result)
    return combined


def autoattack_table(combined: Sequence[Mapping], eps_keys: Sequence[str], cost: str) -> str:
    """Per eps the grid's worst case and the worst case with AutoAttack."""
    header = ["recipe", _cost_name(cost)]
    for key in eps_keys:
        header += [f"images (eps {key})", f"eps {key}: grid", f"eps {key}: with AutoAttack"]
    cells = []
    for row in by_cost(combined, cost):
        line = [row["recipe"], f"{row['ratio'][cost]:.2f}"]
        for key in eps_keys:
            line += ([str(row["images"][key]), _percent(row["grid"][key]),
                      _percent(row["robust"][key])] if key in row["robust"] else ["0", "", ""])
        cells.append(line)
    lines = table(header, cells) + [
        "", "With AutoAttack: per image, robust only if it survived the grid's attacks and "
        "the standard AutoAttack ensemble; grid: the grid's worst case on the same images.", ""]
    images = {key: [row["images"].get(key) for row in combined] for key in eps_keys}
    return "\n".join(lines + [f"- {line}" for line in statements(
        combined, eps_keys, cost, images)]) + "\n"


# The chart ---------------------------------------------------------------------------

FAMILY_COLOURS = {"natural training": "tab:gray", "input-gradient penalty": "tab:orange",
                  "adversarial training": "tab:blue",
                  "penalty at adversarial examples": "tab:purple"}
ACTIVATION_MARKERS = {"relu": "o", "gelu": "s"}  # others: "D"


def family(row: Mapping) -> Tuple[str, str]:
    """A row's kind of training (a key of ``FAMILY_COLOURS``) and activation.

    Example:
        >>> recipe = {"trainer": "AdversarialTrainingModel.n_fgsm",
        ...           "activation": "gelu", "kwargs": {"eps": 0.1, "c": 0.03}}
        >>> family({"settings": {"recipe": recipe}})
        ('penalty at adversarial examples', 'gelu')
    """
    recipe = row.get("settings", {}).get("recipe", {})
    trainer, activation = recipe.get("trainer", "natural"), recipe.get("activation", "relu")
    if trainer in ("natural", "gradreg"):
        return {"natural": "natural training",
                "gradreg": "input-gradient penalty"}[trainer], activation
    if recipe.get("kwargs", {}).get("c"):
        return "penalty at adversarial examples", activation
    return "adversarial training", activation


def plot(rows: Sequence[Mapping], eps_keys: Sequence[str], path: str, cost: str,
         checked: Sequence[Mapping] = (), images: Optional[int] = None) -> None:
    """The chart of ``rows`` by kind and activation, numbered as in the tables, with the
    accuracy with AutoAttack (``checked``: :func:`with_autoattack`) where it did all
    ``images`` images."""
    rank = {row["recipe"]: number for number, row in enumerate(by_cost(rows, cost), 1)}
    aa = {(row["recipe"], key): value for row in checked for key, value in row["robust"].items()
          if row["images"][key] == images}
    kinds, activations = zip(*map(family, rows))
    evaluation.plot_robustness_per_cost(
        path, [row["ratio"][cost] for row in rows],
        {key: [row["robust"].get(key) for row in rows] for key in eps_keys},
        [row["recipe"] for row in rows], numbers=[rank[row["recipe"]] for row in rows],
        groups=kinds, styles=activations, colours=FAMILY_COLOURS, markers=ACTIVATION_MARKERS,
        lower={key: [aa.get((row["recipe"], key)) for row in rows] for key in eps_keys},
        lower_label="with AutoAttack", cost_label=f"training cost (x natural, {cost} time)",
        accuracy_label="robust accuracy (%), worst case over attacks")


def write(rows: Dict[str, Mapping], settings: Mapping, out: str, command: str,
          drawn_only: bool = False) -> str:
    """Writes OUT/robustness_per_cost.md and .png; returns the Markdown.

    The header names ``command``: the one that made the rows, or with ``drawn_only`` the
    one that drew them from the stored lines.
    """
    eps_keys = [f"{eps:g}" for eps in settings["eval_eps"]]
    cost, ordered = settings["cost"], list(rows.values())
    text = (f"Robustness per cost: MNIST, paper's CNN, {settings['epochs']} epochs on "
            f"{settings['train_size']} images (batch {settings['batch_size']}, Adam "
            f"{settings['learning_rate']:g}, seed {settings['seed']}); robust = per-example "
            f"worst case of {', '.join(settings['eval_attacks'])} ({settings['eval_steps']}"
            f" steps) on the first {settings['test_size']} test images; cost = training "
            f"{cost} time over {REFERENCE}'s.\n\n"
            + ("Drawn from the stored result lines (training nothing) by" if drawn_only
               else "Command") + f": `{command}`\n\n")
    text += cost_table(ordered, eps_keys, notes(ordered, cost), cost, settings["test_size"])
    text += ("\n## Times (the whole fit, then the grid's attacks on the test images; each "
             "recipe in one process; the median epoch's CPU seconds, also over "
             f"{REFERENCE}'s own fit's)\n\n" + times_table(ordered, cost) + "\n")
    path = os.path.join(out, "autoattack", "results.jsonl")
    lines = []
    if os.path.exists(path):
        with open(path) as handle:
            lines = [json.loads(line) for line in handle if line.strip()]
    checked = with_autoattack(rows, lines, eps_keys)
    if checked:
        text += ("\n## Under AutoAttack (the recipes it has run on, the images it has "
                 "done)\n\n" + autoattack_table(checked, eps_keys, cost))
    with open(os.path.join(out, "robustness_per_cost.md"), "w") as file:
        file.write(text)
    try:
        plot(ordered, eps_keys, os.path.join(out, "robustness_per_cost.png"), cost, checked,
             settings["test_size"])
    except ImportError:
        print("matplotlib is not installed: no robustness_per_cost.png.")
    return text
