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


def front_at(rows: Sequence[Mapping], key: str, cost: str) -> List[Mapping]:
    """The rows on the cost / robust-accuracy front at eps ``key``."""
    rows = [row for row in rows if key in row["robust"]]
    return [rows[i] for i in evaluation.pareto_front(
        [row["ratio"][cost] for row in rows], [row["robust"][key] for row in rows])]


def _noise(better: Mapping, worse: Mapping, key: str, images: Optional[int]) -> Optional[str]:
    """A remark when ``better``'s lead over ``worse`` is within noise."""
    count = min(filter(None, [row.get("images", {}).get(key, images)
                              for row in (better, worse)]), default=None)
    high, low = better["robust"][key], worse["robust"][key]
    if not count or not evaluation.within_noise(high, low, count):
        return None
    return (f"{better['recipe']} leads {worse['recipe']} by {100 * (high - low):.1f} points, "
            "within two standard errors "
            f"({100 * evaluation.two_standard_errors(high, low, count):.1f})")


def statements(rows: Sequence[Mapping], eps_keys: Sequence[str], cost: str,
               images: Optional[int] = None) -> List[str]:
    """One sentence per eps naming the front, and where a step along it (or the most
    robust recipe's lead) is within two standard errors on ``images`` images."""
    lines = []
    for key in eps_keys:
        front = front_at(rows, key, cost)
        if not front:
            continue
        points = ", ".join(f"{row['recipe']} ({row['ratio'][cost]:.2f}x natural, "
                           f"{_percent(row['robust'][key])}%)" for row in front)
        remarks = [_noise(b, a, key, images) for a, b in zip(front, front[1:])]
        best = front[-1]
        others = sorted((row for row in rows if key in row["robust"] and row is not best),
                        key=lambda row: -row["robust"][key])
        if others and others[0] not in front:
            remarks.append(_noise(best, others[0], key, images))
        remarks = [remark for remark in remarks if remark]
        lines.append(f"eps {key}: on the front, by cost: {points}; most robust: "
                     f"{best['recipe']}" + (f" ({'; '.join(remarks)})" if remarks else "") + ".")
    return lines


def _cost_name(cost: str) -> str:
    return "cost x natural" + ("" if cost == "wall" else f" ({cost})")


def cost_table(rows: Sequence[Mapping], eps_keys: Sequence[str], notes: Sequence[str],
               cost: str, images: Optional[int]) -> str:
    """The table by cost (the front in bold), the statements and ``notes``."""
    on_front = {key: {row["recipe"] for row in front_at(rows, key, cost)} for key in eps_keys}
    cells = []
    for row in by_cost(rows, cost):
        line = [row["recipe"], f"{row['ratio'][cost]:.2f}", _percent(row["clean"])]
        for key in eps_keys:
            value = _percent(row["robust"].get(key))
            line.append(f"**{value}**" if value and row["recipe"] in on_front[key] else value)
        cells.append(line)
    lines = table(["recipe", _cost_name(cost), "clean"] + [f"eps {k}" for k in eps_keys], cells)
    lines += ["", "Bold: on the Pareto front (no recipe is both cheaper and more robust) at "
              "that eps.", ""] + [f"- {line}" for line in statements(rows, eps_keys, cost, images)]
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
                     "before each in the same worker process (--workers, one TensorFlow "
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
    return "\n".join(lines + [f"- {line}" for line in statements(combined, eps_keys, cost)]) + "\n"


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


def numbered(rows: Sequence[Mapping], cost: str,
             columns: int = 4) -> Tuple[Dict[str, int], List[str]]:
    """The chart's point numbers (the tables' order) and the key's lines."""
    numbers = {row["recipe"]: i + 1 for i, row in enumerate(by_cost(rows, cost))}
    entries = [f"{number:>2} {name}" for name, number in numbers.items()]
    width = max(map(len, entries), default=0)
    return numbers, ["   ".join(entry.ljust(width) for entry in
                                entries[start:start + columns]).rstrip()
                     for start in range(0, len(entries), columns)]


def _panel(axis, rows, key: str, cost: str, numbers, checked, images, largest) -> None:
    """One eps: numbered points, AutoAttack's markers, the front as a step line."""
    shown = [row for row in rows if key in row["robust"]]
    for row in shown:
        ratio, accuracy = row["ratio"][cost], 100 * row["robust"][key]
        kind, activation = family(row)
        axis.plot(ratio, accuracy, ACTIVATION_MARKERS.get(activation, "D"),
                  color=FAMILY_COLOURS[kind], markersize=5)
        axis.annotate(str(numbers[row["recipe"]]), (ratio, accuracy), fontsize=7,
                      xytext=(3, 3), textcoords="offset points")
    done = [row for row in checked if key in row["robust"] and row["images"][key] == images]
    for number, row in enumerate(done):
        ratio, grid, robust = row["ratio"][cost], 100 * row["grid"][key], 100 * row["robust"][key]
        axis.plot([ratio, ratio], [grid, robust], color="tab:green", linewidth=0.8)
        axis.plot(ratio, robust, "v", color="tab:green",
                  label=None if number else "with AutoAttack")
    front = front_at(shown, key, cost)
    if front:
        accuracies = [100 * row["robust"][key] for row in front]
        axis.step([row["ratio"][cost] for row in front] + [largest],
                  accuracies + accuracies[-1:], where="post", color="tab:red",
                  label="Pareto front")
    if front or done:
        axis.legend(fontsize="small", loc="best")
    axis.margins(x=0.2)
    axis.set_title(f"eps {key}")
    axis.set_xlabel(f"training cost (x natural, {cost} time)")
    axis.set_ylim(-2, 102)


def plot(rows: Sequence[Mapping], eps_keys: Sequence[str], path: str, cost: str,
         checked: Sequence[Mapping] = (), images: Optional[int] = None) -> None:
    """Robust accuracy against cost, one panel per eps: numbered points coloured by kind,
    marked by activation, the front as a step line, and where AutoAttack did all
    ``images`` images a marker at the accuracy with it (``checked``: :func:`with_autoattack`)."""
    from matplotlib.figure import Figure  # Agg, pyplot's backend untouched
    from matplotlib.lines import Line2D

    numbers, key_lines = numbered(rows, cost)
    key_height = 0.22 * len(key_lines) + 0.2
    figure = Figure(figsize=(5.0 * len(eps_keys), 4.5 + key_height))
    axes = figure.subplots(1, len(eps_keys), squeeze=False)[0]
    largest = max(row["ratio"][cost] for row in rows)
    for axis, key in zip(axes, eps_keys):
        _panel(axis, rows, key, cost, numbers, checked, images, largest)
    axes[0].set_ylabel("robust accuracy (%), worst case over attacks")
    kinds = sorted({family(row)[0] for row in rows}, key=list(FAMILY_COLOURS).index)
    handles = [Line2D([], [], linestyle="", marker="o", color=FAMILY_COLOURS[kind],
                      label=kind) for kind in kinds]
    handles += [Line2D([], [], linestyle="", color="black", label=activation,
                       marker=ACTIVATION_MARKERS.get(activation, "D"), fillstyle="none")
                for activation in sorted({family(row)[1] for row in rows})]
    previous = axes[0].get_legend()
    axes[0].legend(handles=handles, fontsize="x-small", loc="center right")
    if previous is not None:
        axes[0].add_artist(previous)
    figure.text(0.01, 0.01, "\n".join(key_lines), fontsize=8, family="monospace",
                va="bottom")
    figure.tight_layout(rect=(0, key_height / (4.5 + key_height), 1, 1))
    figure.savefig(path, dpi=120)


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
             "recipe in one worker; the median epoch's CPU seconds, also over "
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
