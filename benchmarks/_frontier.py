"""Robustness against cost: the Pareto front, its table, chart and summary.

Pure functions on result rows (dicts with ``recipe``, ``ratio["wall"]``,
``clean`` and ``robust[eps_key]``, as ``robustness_per_cost.py`` writes them
to ``results.jsonl``), kept apart from the benchmark's flags so that tests
can import them.
"""

from __future__ import annotations

import math
from typing import Dict, List, Mapping, Optional, Sequence, Tuple, Union


def pareto_front(costs: Sequence[float], scores: Sequence[float]) -> List[int]:
    """Indices of the points no other point beats, cheapest first.

    A point is beaten (dominated) when another costs no more and scores at
    least as much, and is strictly better in one of the two. Of identical
    points only the first listed is kept.

    Args:
        costs: Cost of each point (lower is better).
        scores: Score of each point (higher is better), same length.

    Returns:
        The indices of the front, by increasing cost (and so increasing
        score).

    Raises:
        ValueError: If the lengths differ.

    Example:
        >>> pareto_front([1.0, 2.0, 1.5, 3.0], [0.4, 0.9, 0.3, 0.8])
        [0, 1]
    """
    if len(costs) != len(scores):
        raise ValueError(
            f"{len(costs)} costs but {len(scores)} scores: one of each per "
            "point.")
    order = sorted(range(len(costs)), key=lambda i: (costs[i], -scores[i]))
    front, best = [], float("-inf")
    for index in order:
        if scores[index] > best:
            front.append(index)
            best = scores[index]
    return front


def front_at(rows: Sequence[dict], eps_key: str,
             cost: str = "wall") -> List[dict]:
    """The rows on the cost / robust-accuracy front at ``eps_key``.

    ``cost`` picks the ratio: ``"wall"`` (wall-clock) or ``"cpu"`` (process
    CPU time, the steadier one on a shared machine).
    """
    rows = [row for row in rows if eps_key in row["robust"]]
    indices = pareto_front([row["ratio"][cost] for row in rows],
                           [row["robust"][eps_key] for row in rows])
    return [rows[i] for i in indices]


def _percent(value: Optional[float]) -> str:
    return "" if value is None else f"{100 * value:.1f}"


def two_standard_errors(first: float, second: float, images: int) -> float:
    """Two standard errors of the difference of two accuracies, each on
    ``images`` test images, taken as independent (on the same images the
    error is smaller, so this errs on the side of calling a gap noise).

    Example:
        >>> round(100 * two_standard_errors(0.95, 0.94, 1000), 1)
        2.0
    """
    variance = (first * (1 - first) + second * (1 - second)) / images
    return 2 * math.sqrt(variance)


def _images(row: Mapping, key: str,
            images: Union[int, None]) -> Optional[int]:
    """The test images behind ``row``'s accuracy at ``key``: the row's own
    count (``row["images"][key]``, as the AutoAttack table has) or
    ``images``."""
    return row.get("images", {}).get(key, images)


def _within_noise(better: Mapping, worse: Mapping, key: str,
                  images: Optional[int]) -> Optional[str]:
    """A remark when ``better``'s lead over ``worse`` at ``key`` is under two
    standard errors, else None."""
    count = min(filter(None, [_images(better, key, images),
                              _images(worse, key, images)]), default=None)
    if not count:
        return None
    high, low = better["robust"][key], worse["robust"][key]
    margin = two_standard_errors(high, low, count)
    if high - low >= margin:
        return None
    return (f"{better['recipe']} leads {worse['recipe']} by "
            f"{100 * (high - low):.1f} points, within two standard errors "
            f"({100 * margin:.1f})")


def statements(rows: Sequence[dict], eps_keys: Sequence[str],
               cost: str = "wall", images: Optional[int] = None) -> List[str]:
    """One plain sentence per eps naming the recipes on the front.

    Each front recipe is the most robust one at budgets from its own cost up
    to the next front recipe's. With ``images`` (the test images behind
    each accuracy; a row's own ``images[eps]`` counts take precedence), the
    sentence also says where a step along the front, or the most robust
    recipe's lead over the next most robust one, is within two standard
    errors: a gap the test set cannot tell from noise.

    Example:
        >>> rows = [{"recipe": "a", "ratio": {"wall": 1.0}, "robust": {"0.1": 0.5}},
        ...         {"recipe": "b", "ratio": {"wall": 2.0}, "robust": {"0.1": 0.9}},
        ...         {"recipe": "c", "ratio": {"wall": 3.0}, "robust": {"0.1": 0.89}}]
        >>> print(statements(rows, ["0.1"])[0])  # doctest: +NORMALIZE_WHITESPACE
        eps 0.1: on the front, by cost: a (1.00x natural, 50.0%),
        b (2.00x natural, 90.0%); most robust: b.
        >>> print(statements(rows, ["0.1"], images=1000)[0])
        ... # doctest: +NORMALIZE_WHITESPACE
        eps 0.1: on the front, by cost: a (1.00x natural, 50.0%),
        b (2.00x natural, 90.0%); most robust: b (b leads c by 1.0 points,
        within two standard errors (2.7)).
    """
    lines = []
    for key in eps_keys:
        front = front_at(rows, key, cost)
        if not front:
            continue
        points = ", ".join(
            f"{row['recipe']} ({row['ratio'][cost]:.2f}x natural, "
            f"{_percent(row['robust'][key])}%)" for row in front)
        remarks = [_within_noise(b, a, key, images)
                   for a, b in zip(front, front[1:])]
        best = front[-1]
        others = sorted((row for row in rows if key in row["robust"]
                         and row is not best),
                        key=lambda row: -row["robust"][key])
        if others and others[0] not in front:
            remarks.append(_within_noise(best, others[0], key, images))
        remarks = [remark for remark in remarks if remark]
        lines.append(f"eps {key}: on the front, by cost: {points}; "
                     f"most robust: {best['recipe']}"
                     + (f" ({'; '.join(remarks)})" if remarks else "") + ".")
    return lines


def by_cost(rows: Sequence[Mapping], cost: str = "wall") -> List[Mapping]:
    """``rows`` in the tables' order: by cost ratio, then recipe name.

    Example:
        >>> rows = [{"recipe": "b", "ratio": {"wall": 1.0}},
        ...         {"recipe": "a", "ratio": {"wall": 1.0}}]
        >>> [row["recipe"] for row in by_cost(rows)]
        ['a', 'b']
    """
    return sorted(rows, key=lambda r: (r["ratio"][cost], r["recipe"]))


def markdown(rows: Sequence[dict], eps_keys: Sequence[str],
             notes: Sequence[str] = (), cost: str = "wall",
             images: Optional[int] = None) -> str:
    """The table (sorted by cost), the front statements and ``notes``.

    Robust accuracies on the front at their eps are in bold; ``images`` (the
    test images behind each accuracy) goes to :func:`statements`.
    """
    on_front = {key: {row["recipe"] for row in front_at(rows, key, cost)}
                for key in eps_keys}
    cost_name = "cost x natural" + ("" if cost == "wall" else f" ({cost})")
    header = ["recipe", cost_name, "clean"] + [
        f"eps {key}" for key in eps_keys]
    lines = ["| " + " | ".join(header) + " |",
             "|" + "---|" * len(header)]
    for row in by_cost(rows, cost):
        cells = [row["recipe"], f"{row['ratio'][cost]:.2f}",
                 _percent(row["clean"])]
        for key in eps_keys:
            value = _percent(row["robust"].get(key))
            bold = value and row["recipe"] in on_front[key]
            cells.append(f"**{value}**" if bold else value)
        lines.append("| " + " | ".join(cells) + " |")
    lines += ["", "Bold: on the Pareto front (no recipe is both cheaper and "
              "more robust) at that eps.", ""]
    lines += [f"- {line}" for line in statements(rows, eps_keys, cost,
                                                  images)]
    if notes:
        lines += [""] + [f"- {note}" for note in notes]
    return "\n".join(lines) + "\n"


def fully_checked(checked: Sequence[Mapping], eps_key: str,
                  images: Optional[int]) -> List[Mapping]:
    """The rows of ``checked`` (grid rows combined with AutoAttack) where
    AutoAttack has done all ``images`` test images at ``eps_key``.

    Example:
        >>> rows = [{"recipe": "a", "images": {"0.1": 1000}, "robust": {"0.1": 0.9}},
        ...         {"recipe": "b", "images": {"0.1": 200}, "robust": {"0.1": 0.8}}]
        >>> [row["recipe"] for row in fully_checked(rows, "0.1", 1000)]
        ['a']
    """
    return [row for row in checked if eps_key in row["robust"]
            and row["images"][eps_key] == images]


def numbered(rows: Sequence[Mapping], cost: str = "wall",
             columns: int = 4) -> Tuple[Dict[str, int], List[str]]:
    """The chart's point labels: a number per recipe in the tables' order
    (:func:`by_cost`), and the key's lines, ``columns`` recipes a line.

    Example:
        >>> rows = [{"recipe": "b", "ratio": {"wall": 2.0}},
        ...         {"recipe": "a", "ratio": {"wall": 1.0}}]
        >>> numbered(rows, columns=1)
        ({'a': 1, 'b': 2}, [' 1 a', ' 2 b'])
    """
    numbers = {row["recipe"]: index + 1
               for index, row in enumerate(by_cost(rows, cost))}
    entries = [f"{number:>2} {name}" for name, number in numbers.items()]
    width = max(map(len, entries), default=0)
    lines = ["   ".join(entry.ljust(width) for entry in
                        entries[start:start + columns]).rstrip()
             for start in range(0, len(entries), columns)]
    return numbers, lines


# The chart's colour per kind of training (:func:`family`).
FAMILY_COLOURS = {
    "natural training": "tab:gray",
    "input-gradient penalty": "tab:orange",
    "adversarial training": "tab:blue",
    "penalty at adversarial examples": "tab:purple",
}
# The chart's marker per activation; others get "D".
ACTIVATION_MARKERS = {"relu": "o", "gelu": "s"}


def family(row: Mapping) -> Tuple[str, str]:
    """A result row's kind of training (a key of ``FAMILY_COLOURS``) and
    activation, from the recipe settings it was trained with.

    Example:
        >>> def row(trainer, **kwargs):
        ...     recipe = {"trainer": trainer, "activation": "gelu", "kwargs": kwargs}
        ...     return {"settings": {"recipe": recipe}}
        >>> family(row("natural"))
        ('natural training', 'gelu')
        >>> family(row("gradreg", c=0.1))[0]
        'input-gradient penalty'
        >>> family(row("AdversarialTrainingModel.n_fgsm", eps=0.1))[0]
        'adversarial training'
        >>> family(row("AdversarialTrainingModel.n_fgsm", eps=0.1, c=0.03))[0]
        'penalty at adversarial examples'
        >>> family({"recipe": "old row, no settings"})
        ('natural training', 'relu')
    """
    recipe = row.get("settings", {}).get("recipe", {})
    trainer = recipe.get("trainer", "natural")
    activation = recipe.get("activation", "relu")
    if trainer == "natural":
        return "natural training", activation
    if trainer == "gradreg":
        return "input-gradient penalty", activation
    if recipe.get("kwargs", {}).get("c"):
        return "penalty at adversarial examples", activation
    return "adversarial training", activation


def plot(rows: Sequence[dict], eps_keys: Sequence[str], path: str,
         cost: str = "wall", checked: Sequence[Mapping] = (),
         images: Optional[int] = None) -> None:
    """Writes robust accuracy against cost, one panel per eps, with fronts.

    Each point is labelled with its recipe's number in the tables' order,
    and the key under the panels names them (:func:`numbered`); its colour
    is the kind of training and its marker the activation (:func:`family`,
    a legend in the first panel); the front
    is a step line (the best robust accuracy available at each budget).
    ``checked`` rows (the grid's rows combined with AutoAttack,
    ``_with_autoattack.combine``) add a marker at the accuracy with
    AutoAttack, joined to the grid's point, where AutoAttack has done all
    ``images`` test images of the grid (on fewer the two would not be on
    the same images).
    """
    # A bare Figure renders with Agg and leaves pyplot's backend untouched.
    from matplotlib.figure import Figure

    numbers, key_lines = numbered(rows, cost)
    key_height = 0.22 * len(key_lines) + 0.2
    figure = Figure(figsize=(5.0 * len(eps_keys), 4.5 + key_height))
    axes = figure.subplots(1, len(eps_keys), squeeze=False)[0]
    largest = max(row["ratio"][cost] for row in rows)
    for axis, key in zip(axes, eps_keys):
        shown = [row for row in rows if key in row["robust"]]
        for row in shown:
            ratio, accuracy = row["ratio"][cost], 100 * row["robust"][key]
            kind, activation = family(row)
            axis.plot(ratio, accuracy, ACTIVATION_MARKERS.get(activation, "D"),
                      color=FAMILY_COLOURS[kind], markersize=5)
            axis.annotate(str(numbers[row["recipe"]]), (ratio, accuracy),
                          fontsize=7, xytext=(3, 3),
                          textcoords="offset points")
        done = fully_checked(checked, key, images)
        for number, row in enumerate(done):
            ratio = row["ratio"][cost]
            grid, robust = 100 * row["grid"][key], 100 * row["robust"][key]
            axis.plot([ratio, ratio], [grid, robust], color="tab:green",
                      linewidth=0.8)
            axis.plot(ratio, robust, "v", color="tab:green",
                      label=None if number else "with AutoAttack")
        front = front_at(shown, key, cost)
        if front:
            costs = [row["ratio"][cost] for row in front] + [largest]
            accuracies = [100 * row["robust"][key] for row in front]
            axis.step(costs, accuracies + accuracies[-1:], where="post",
                      color="tab:red", label="Pareto front")
        if front or done:
            axis.legend(fontsize="small", loc="best")
        axis.margins(x=0.2)
        axis.set_title(f"eps {key}")
        axis.set_xlabel(f"training cost (x natural, {cost} time)")
        axis.set_ylim(-2, 102)
    axes[0].set_ylabel("robust accuracy (%), worst case over attacks")
    _legend_of_kinds(axes[0], rows)
    figure.text(0.01, 0.01, "\n".join(key_lines), fontsize=8,
                family="monospace", va="bottom")
    figure.tight_layout(rect=(0, key_height / (4.5 + key_height), 1, 1))
    figure.savefig(path, dpi=120)


def _legend_of_kinds(axis, rows: Sequence[Mapping]) -> None:
    """A second legend, lower right: the kinds and activations in ``rows``."""
    from matplotlib.lines import Line2D

    kinds = sorted({family(row)[0] for row in rows}, key=list(FAMILY_COLOURS).index)
    activations = sorted({family(row)[1] for row in rows})
    handles = [Line2D([], [], linestyle="", marker="o", color=FAMILY_COLOURS[kind],
                      label=kind) for kind in kinds]
    handles += [Line2D([], [], linestyle="", color="black", label=activation,
                       marker=ACTIVATION_MARKERS.get(activation, "D"),
                       fillstyle="none") for activation in activations]
    previous = axis.get_legend()
    axis.legend(handles=handles, fontsize="x-small", loc="center right")
    if previous is not None:
        axis.add_artist(previous)
