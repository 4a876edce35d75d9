"""The robustness-per-cost grid under AutoAttack, per example.

``benchmarks/long_runs.sh gridaa`` runs ``autoattack_eval.py`` on some of the
grid's saved models (``OUT/<recipe>.keras``) and writes its result lines to
``OUT/autoattack/results.jsonl``. Both runs see the first test images in
order, so per example the grid's worst case (its attacks) and AutoAttack's
result can be combined: an image is robust only if it survived both. This
module does that for the images AutoAttack has done so far and writes the
table ``robustness_per_cost.py`` appends to its report.
"""

from __future__ import annotations

import json
import os
from typing import Dict, List, Mapping, Sequence

import numpy as np

import _frontier

FOLDER = "autoattack"  # under the grid's OUT, as long_runs.sh gridaa writes
RESULTS = "results.jsonl"


def read_lines(out: str) -> List[dict]:
    """AutoAttack's result lines for the grid in ``out`` (none: [])."""
    path = os.path.join(out, FOLDER, RESULTS)
    if not os.path.exists(path):
        return []
    with open(path) as handle:
        return [json.loads(text) for text in handle if text.strip()]


def _bits(text: str, count: int) -> np.ndarray:
    return np.array([char == "1" for char in text[:count]], bool)


def _done_from_start(lines: Sequence[Mapping]) -> Dict[str, list]:
    """The chunks of one (model, eps) that follow on from image 0, joined:
    ``{"clean": [...], "robust": [...]}`` (a later line for the same
    chunk replaces an earlier one)."""
    chunks = {line["start"]: line for line in lines}
    joined = {"clean": [], "robust": []}
    start = 0
    while start in chunks:
        line = chunks[start]
        joined["clean"] += line["clean"]
        joined["robust"] += line["robust"]
        start = line["stop"]
    return joined


def combine(rows: Mapping[str, Mapping], lines: Sequence[Mapping],
            eps_keys: Sequence[str]) -> List[dict]:
    """Per recipe AutoAttack has done, and eps: the grid's worst case,
    AutoAttack's robust accuracy and the per-example worst of both, on the
    images AutoAttack has done (the first ``images[eps]`` test images).

    Raises:
        ValueError: If AutoAttack's clean predictions differ from the grid's
            on the same images (then they did not attack the same model or
            images, and nothing can be combined).

    Example:
        >>> row = {"ratio": {"wall": 1.5}, "correct": {
        ...     "clean": "1110", "0.1": {"apgd_ce": "1100", "pgd": "1000"}}}
        >>> line = dict(model="r", eps=0.1, start=0, stop=3, clean=[1, 1, 1],
        ...             robust=[1, 1, 0])
        >>> combined = combine({"r": row}, [line], ["0.1"])[0]
        >>> combined["images"], combined["grid"], combined["robust"]
        ({'0.1': 3}, {'0.1': 0.333...}, {'0.1': 0.333...})
    """
    combined = []
    for name, row in rows.items():
        result = {"recipe": name, "ratio": row["ratio"], "images": {},
                  "grid": {}, "autoattack": {}, "robust": {}}
        for key in eps_keys:
            done = _done_from_start([
                line for line in lines if line["model"] == name
                and f"{float(line['eps']):g}" == key])
            count = len(done["robust"])
            if not count or key not in row["correct"]:
                continue
            clean = _bits(row["correct"]["clean"], count)
            if not np.array_equal(clean, np.array(done["clean"], bool)):
                raise ValueError(
                    f"{name}, eps {key}: AutoAttack's clean predictions on the "
                    f"first {count} test images differ from the grid's; they "
                    "did not attack the same model or images.")
            grid = clean.copy()
            for text in row["correct"][key].values():
                grid &= _bits(text, count)
            autoattack = np.array(done["robust"], bool)
            result["images"][key] = count
            result["grid"][key] = float(grid.mean())
            result["autoattack"][key] = float(autoattack.mean())
            result["robust"][key] = float((grid & autoattack).mean())
        if result["robust"]:
            combined.append(result)
    return combined


def markdown(combined: Sequence[Mapping], eps_keys: Sequence[str],
             cost: str = "wall") -> str:
    """The grid under AutoAttack: per eps, the grid's worst case and the
    worst case with AutoAttack on the same images, and the front statements
    on the latter (with each row's image count for the noise remarks)."""
    if not combined:
        return ""
    cost_name = "cost x natural" + ("" if cost == "wall" else f" ({cost})")
    header = ["recipe", cost_name]
    for key in eps_keys:
        header += [f"images (eps {key})", f"eps {key}: grid",
                   f"eps {key}: with AutoAttack"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in _frontier.by_cost(combined, cost):
        cells = [row["recipe"], f"{row['ratio'][cost]:.2f}"]
        for key in eps_keys:
            if key in row["robust"]:
                cells += [str(row["images"][key]),
                          f"{100 * row['grid'][key]:.1f}",
                          f"{100 * row['robust'][key]:.1f}"]
            else:
                cells += ["0", "", ""]
        lines.append("| " + " | ".join(cells) + " |")
    lines += [
        "", "With AutoAttack: per image, robust only if it survived the "
        "grid's attacks and the standard AutoAttack ensemble; grid: the "
        "grid's worst case on the same images.", ""]
    lines += [f"- {line}" for line in _frontier.statements(combined, eps_keys,
                                                            cost)]
    return "\n".join(lines) + "\n"
