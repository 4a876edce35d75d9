"""Where each step of ``benchmarks/long_runs.sh`` stands: ``long_runs.sh status``.

Reads only the files the steps write (no TensorFlow import), so it answers in
a second while the runs go on:

* a model: trained (its ``.keras`` file exists), in training (``epochs_done``
  of its checkpoint's ``progress.json``) or not started;
* AutoAttack: units (chunk x model x eps) done of those the step runs, and
  those a worker has claimed and not finished (running, or left by a
  stopped run: the next run clears them);
* a grid: the recipes with a result line, and those in training or in
  evaluation ((eps, attack) pairs done, from the checkpoint's
  ``evaluation.json``).

The AutoAttack settings (images, chunk, radii) come from ``long_runs.sh``.

Example:
    >>> import tempfile
    >>> folder = tempfile.mkdtemp()
    >>> open(os.path.join(folder, "natural.keras"), "w").close()
    >>> model_states(folder, ["natural", "fgsm_rs_at"])
    ['natural: trained', 'fgsm_rs_at: not started']
"""

from __future__ import annotations

import json
import os
import sys
from typing import Dict, List, Sequence


def _epochs_done(backup: str) -> int:
    """Finished epochs of the checkpoint in ``backup`` (0 without one)."""
    try:
        with open(os.path.join(backup, "progress.json")) as handle:
            return int(json.load(handle).get("epochs_done", 0))
    except (OSError, ValueError):
        return 0


def _json_lines(path: str) -> List[dict]:
    if not os.path.exists(path):
        return []
    with open(path) as handle:
        return [json.loads(text) for text in handle if text.strip()]


def model_states(folder: str, names: Sequence[str]) -> List[str]:
    """One line per model of an experiment folder (``examples/mnist.py --out``)."""
    lines = []
    for name in names:
        if os.path.exists(os.path.join(folder, f"{name}.keras")):
            state = "trained"
        elif os.path.isdir(os.path.join(folder, "backup", name)):
            state = f"in training, {_epochs_done(os.path.join(folder, 'backup', name))} epochs done"
        else:
            state = "not started"
        lines.append(f"{name}: {state}")
    return lines


def autoattack_units(folder: str, models: Sequence[str], eps_count: int,
                     num_examples: int, chunk: int) -> str:
    """``"N of M units done"`` for AutoAttack on ``models`` in ``folder``,
    then the units claimed by a worker and not yet done (``--workers``)."""
    wanted = set(models)

    def unit(line: dict) -> tuple:
        return line["model"], float(line["eps"]), line["start"]

    lines = [line for line in _json_lines(os.path.join(folder, "results.jsonl"))
             if line["model"] in wanted]
    done = {unit(line) for line in lines}
    total = len(models) * eps_count * -(-num_examples // chunk)
    per_model = {name: sum(1 for key in done if key[0] == name) for name in models}
    detail = ", ".join(f"{name} {count}" for name, count in per_model.items())
    running = [line for line in _json_lines(os.path.join(folder, "claims.jsonl"))
               if "model" in line and line["model"] in wanted
               and unit(line) not in done]
    text = f"{len(done)} of {total} units done ({detail})"
    text += _pace(lines, len(models) * eps_count, num_examples)
    if running:
        text += "\n  claimed, not done (running, or left by a stopped run):"
        text += "".join(
            f"\n    {line['model']} eps {line['eps']:g} images "
            f"{line['start']}-{line.get('stop', '?')}, worker {line.get('worker')}"
            for line in running)
    return text


def _pace(lines: Sequence[dict], pairs: int, num_examples: int) -> str:
    """What the (model, eps) pairs started would take to finish, at their
    seconds per image so far (one worker's time; ``--workers`` share it)."""
    pace: Dict[tuple, List[float]] = {}
    for line in lines:
        if "wall_s" in line and "stop" in line:
            seconds_images = pace.setdefault((line["model"], float(line["eps"])), [0.0, 0])
            seconds_images[0] += line["wall_s"]
            seconds_images[1] += line["stop"] - line["start"]
    if not pace:
        return ""
    left = sum(seconds / images * max(num_examples - images, 0)
               for seconds, images in pace.values())
    return (f"\n  at the pace so far: {left / 3600:.1f} h of one worker's time left"
            f" for the {len(pace)} of {pairs} (model, eps) pairs started"
            + ("" if len(pace) == pairs else "; the others come on top"))


def _pairs_done(backup: str) -> int:
    """(eps, attack) pairs an evaluation checkpointed in ``backup``."""
    try:
        with open(os.path.join(backup, "evaluation.json")) as handle:
            pieces = json.load(handle)["pieces"]
    except (OSError, ValueError, KeyError):
        return 0
    return sum(len(attacks) for attacks in pieces.values())


def grid_recipes(folder: str) -> List[str]:
    """The recipes with a result line (each once, though a re-timed one has
    two), then those in training or in evaluation."""
    lines = _json_lines(os.path.join(folder, "results.jsonl"))
    done = list(dict.fromkeys(line["recipe"] for line in lines))
    report = [f"{len(done)} recipes done: {', '.join(done) or '-'}"]
    backup = os.path.join(folder, "backup")
    if os.path.isdir(backup):
        for name in sorted(os.listdir(backup)):
            if name in done:
                continue
            pairs = _pairs_done(os.path.join(backup, name))
            report.append(
                f"in evaluation: {name}, {pairs} (eps, attack) pairs done"
                if pairs else f"in training: {name}, "
                f"{_epochs_done(os.path.join(backup, name))} epochs done")
    return report


def main(argv: Sequence[str]) -> None:
    """``RUNS MODELS AA_RECIPES IMAGES CHUNK EPS``: the folder, the two comma
    lists of long_runs.sh and its AutoAttack settings (EPS a comma list)."""
    runs, models, aa_recipes, images, chunk, eps = argv
    models, aa_recipes = models.split(","), aa_recipes.split(",")
    images, chunk, eps_count = int(images), int(chunk), len(eps.split(","))
    ten = os.path.join(runs, "mnist_10ep_aa")
    grid = os.path.join(runs, "robustness_per_cost")
    print("models (10-epoch MNIST):", *model_states(ten, models), sep="\n  ")
    print("autoattack:", autoattack_units(os.path.join(ten, "autoattack"), models,
                                           eps_count, images, chunk))
    print("grid (3 epochs):", *grid_recipes(grid), sep="\n  ")
    print("gridaa:", autoattack_units(os.path.join(grid, "autoattack"), aa_recipes,
                                       eps_count, images, chunk))
    print("grid10:", *grid_recipes(os.path.join(runs, "robustness_per_cost_10ep")),
          sep="\n  ")


if __name__ == "__main__":
    main(sys.argv[1:])
