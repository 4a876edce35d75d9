"""Robustness against cost in words and as a Markdown table.

Which points (training recipes, say) are on the Pareto front at each eps
(:func:`keras_gradreg.evaluation.pareto_front`), and which steps along it
are within two standard errors on the test set: one sentence per eps
(:func:`front_statements`), and the points as a table by cost with the front
in bold (:func:`robustness_per_cost_table`). The chart of the same numbers is
:func:`keras_gradreg.evaluation.plot_robustness_per_cost`.
"""

from __future__ import annotations

import math
from typing import List, Mapping, Optional, Sequence, Union

from keras_gradreg.evaluation._frontier import accuracies
from keras_gradreg.evaluation._frontier import checked_costs
from keras_gradreg.evaluation._frontier import pareto_front
from keras_gradreg.evaluation._frontier import two_standard_errors
from keras_gradreg.evaluation._frontier import within_noise
from keras_gradreg.evaluation._markdown import markdown_table

Images = Union[None, int, Mapping[str, Sequence[Optional[int]]]]


def _percent(value: float) -> str:
    return "" if math.isnan(value) else f"{100 * value:.1f}"


def _checked(costs, robust, labels, clean=None):
    """The inputs as floats (NaN: not measured), or a ValueError."""
    if isinstance(labels, str):
        raise ValueError(f"labels: one name per point, got {labels!r}.")
    count = len(labels)
    costs = checked_costs(costs, count)
    robust = {key: accuracies(f"robust[{key!r}]", column, count)
              for key, column in robust.items()}
    return (costs, robust, [str(label) for label in labels],
            None if clean is None else accuracies("clean", clean, count))


def _measured(column: Sequence[float]) -> List[int]:
    return [i for i, value in enumerate(column) if not math.isnan(value)]


def _front(costs, robust, key) -> List[int]:
    """The indices on the front at ``key``, cheapest first (NaN: not measured)."""
    return pareto_front(costs, robust[key])


def _images(images: Images, key: str, index: int) -> Optional[int]:
    if images is None or isinstance(images, int):
        return images
    return images[key][index]


def _noise(labels, robust, images: Images, key: str, better: int,
           worse: int) -> Optional[str]:
    """A remark when ``better``'s lead over ``worse`` at ``key`` is within noise."""
    count = min(filter(None, (_images(images, key, i) for i in (better, worse))),
                default=None)
    high, low = robust[key][better], robust[key][worse]
    if not count or not within_noise(high, low, count):
        return None
    return (f"{labels[better]} leads {labels[worse]} by {100 * (high - low):.1f} points, "
            f"within two standard errors ({100 * two_standard_errors(high, low, count):.1f})")


def front_statements(costs: Sequence[float],
                     robust: Mapping[str, Sequence[Optional[float]]],
                     labels: Sequence[str], images: Images = None,
                     cost_unit: str = "x") -> List[str]:
    """One sentence per eps: the points on the front by cost, the most robust,
    and every step along the front (and the most robust point's lead over the
    runner-up off the front) that is within two standard errors.

    Args:
        costs: Each point's cost (e.g. training time over natural training's).
        robust: eps key -> each point's robust accuracy, a fraction (None or NaN: not
            measured at that eps).
        labels: Each point's name.
        images: The test images behind each accuracy, for the noise test: one
            count for all, or eps key -> a count per point (None or 0: unknown);
            None: no noise remarks.
        cost_unit: Written after each cost, e.g. ``"x natural"``.

    Returns:
        A sentence per eps that has a measured point, in ``robust``'s order.

    Raises:
        ValueError: If ``labels`` or a column is not one per point, a cost is
            not finite and > 0, or an accuracy is not in [0, 1] (a
            percentage given for a fraction).

    Example:
        >>> line, = front_statements([1.0, 2.0, 3.0], {"0.1": [0.2, 0.90, 0.91]},
        ...                          ["a", "b", "c"], images=1000)
        >>> line.split(";")[0]
        'eps 0.1: on the front, by cost: a (1.00x, 20.0%), b (2.00x, 90.0%), c (3.00x, 91.0%)'
        >>> line.split("; most robust: ")[1]
        'c (c leads b by 1.0 points, within two standard errors (2.6)).'
    """
    costs, robust, labels, _ = _checked(costs, robust, labels)
    lines = []
    for key in robust:
        front = _front(costs, robust, key)
        if not front:
            continue
        points = ", ".join(f"{labels[i]} ({costs[i]:.2f}{cost_unit}, "
                           f"{_percent(robust[key][i])}%)" for i in front)
        remarks = [_noise(labels, robust, images, key, b, a) for a, b in zip(front, front[1:])]
        best = front[-1]
        others = sorted((i for i in _measured(robust[key]) if i != best),
                        key=lambda i: -robust[key][i])
        if others and others[0] not in front:
            remarks.append(_noise(labels, robust, images, key, best, others[0]))
        remarks = [remark for remark in remarks if remark]
        lines.append(f"eps {key}: on the front, by cost: {points}; most robust: "
                     f"{labels[best]}" + (f" ({'; '.join(remarks)})" if remarks else "")
                     + ".")
    return lines


def robustness_per_cost_table(costs: Sequence[float],
                              robust: Mapping[str, Sequence[Optional[float]]],
                              labels: Sequence[str],
                              clean: Optional[Sequence[float]] = None,
                              cost_name: str = "cost",
                              label_name: str = "recipe") -> List[str]:
    """The points as Markdown table lines by cost (then label), robust
    accuracy in percent per eps, bold where the point is on that eps' front.

    Args:
        costs: Each point's cost.
        robust: eps key -> each point's robust accuracy (None or NaN: not measured,
            an empty cell).
        labels: Each point's name, the first column.
        clean: Each point's clean accuracy, a column after the cost if given.
        cost_name: The cost column's heading.
        label_name: The first column's heading, and what the points are in
            the sentence on bold.

    Returns:
        The table's lines (header, separator, a row per point), then an empty
        line and the sentence that says what bold means.

    Raises:
        ValueError: If ``labels``, ``clean`` or a column is not one per point,
            a cost is not finite and > 0, or an accuracy is not in [0, 1].

    Example:
        >>> print("\\n".join(robustness_per_cost_table(
        ...     [2.0, 1.0], {"0.1": [0.9, 0.2]}, ["fast", "natural"])))
        | recipe | cost | eps 0.1 |
        |---|---|---|
        | natural | 1.00 | **20.0** |
        | fast | 2.00 | **90.0** |
        <BLANKLINE>
        Bold: on the Pareto front (no recipe is both cheaper and more robust) at that eps.
    """
    costs, robust, labels, clean = _checked(costs, robust, labels, clean)
    on_front = {key: set(_front(costs, robust, key)) for key in robust}
    cells = []
    for i in sorted(range(len(costs)), key=lambda i: (costs[i], labels[i])):
        line = [labels[i], f"{costs[i]:.2f}"] + ([] if clean is None else [_percent(clean[i])])
        for key in robust:
            value = _percent(robust[key][i])
            line.append(f"**{value}**" if value and i in on_front[key] else value)
        cells.append(line)
    header = [label_name, cost_name] + ([] if clean is None else ["clean"])
    return markdown_table(header + [f"eps {key}" for key in robust], cells) + [
        "", f"Bold: on the Pareto front (no {label_name} is both cheaper and more robust) "
        "at that eps."]
