"""Robust accuracy against cost, drawn: the points and their Pareto front.

One panel per eps: each point (e.g. a training recipe) at its cost and robust
accuracy, numbered, with a key of the numbers below the panels; the front
(:func:`~keras_gradreg.evaluation.pareto_front`) as a step line; optionally a
second, lower accuracy per point (e.g. under a stronger attack) as a marker
below it. Needs matplotlib; pyplot and its backend are left untouched.
"""

from __future__ import annotations

import math
import os
from numbers import Integral
from typing import IO, TYPE_CHECKING, Dict, List, Mapping, Optional, Sequence, Union

from keras_gradreg.evaluation._frontier import accuracies
from keras_gradreg.evaluation._frontier import checked_costs
from keras_gradreg.evaluation._frontier import pareto_front

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

# Markers for the styles ``markers`` does not name, in the styles' sorted order.
_MARKERS = ("o", "s", "D", "P", "X", "*", "h", "p")
_LOWER_COLOUR = "tab:green"
_FRONT_COLOUR = "tab:red"


def _names(name: str, values: Optional[Sequence[str]], count: int) -> Optional[List[str]]:
    if values is None:
        return None
    if isinstance(values, str) or len(values) != count:
        got = repr(values) if isinstance(values, str) else len(values)
        raise ValueError(f"{name}: one per point ({count}), got {got}.")
    return [str(value) for value in values]


def _assign(names: Sequence[str], given: Mapping[str, str],
            palette: Sequence[str]) -> Dict[str, str]:
    """``given``, and for each of ``names`` it lacks the next of ``palette`` it does not
    use (cycling)."""
    free = [entry for entry in palette if entry not in given.values()] or list(palette)
    missing = [name for name in names if name not in given]
    return {**given, **{name: free[i % len(free)] for i, name in enumerate(missing)}}


def _key(numbers: Sequence[int], labels: Sequence[str], columns: int) -> List[str]:
    """The key's lines: ``number label`` entries by number, ``columns`` to a line."""
    entries = [f"{number:>2} {label}" for number, label in sorted(zip(numbers, labels))]
    width = max(map(len, entries), default=0)
    return ["   ".join(entry.ljust(width) for entry in entries[start:start + columns]).rstrip()
            for start in range(0, len(entries), columns)]


def plot_robustness_per_cost(
        path: Union[str, os.PathLike, IO[bytes]],
        costs: Sequence[float],
        robust: Mapping[str, Sequence[Optional[float]]],
        labels: Sequence[str],
        *,
        numbers: Optional[Sequence[int]] = None,
        groups: Optional[Sequence[str]] = None,
        styles: Optional[Sequence[str]] = None,
        colours: Optional[Mapping[str, str]] = None,
        markers: Optional[Mapping[str, str]] = None,
        lower: Optional[Mapping[str, Sequence[Optional[float]]]] = None,
        lower_label: str = "lower accuracy",
        cost_label: str = "training cost",
        accuracy_label: str = "robust accuracy (%)",
        key_columns: int = 4,
        dpi: int = 120) -> Figure:
    """Draws robust accuracy against cost, one panel per eps, with the Pareto front.

    Each point is drawn at its cost and accuracy (in percent) and numbered
    (1..n in the order given, unless ``numbers`` says otherwise); a key of
    ``number label`` lines sits below the panels. Points are coloured by
    group and marked by style, each explained in a legend on the first
    panel. The front at each eps
    (:func:`pareto_front`: no other point both cheaper and more robust) is a
    step line on to the largest cost. With ``lower``, a point that has a
    lower accuracy at that eps gets a vertical line down to a triangle at it.

    Args:
        path: Where the PNG goes: a file name or a binary file.
        costs: Cost of each point, finite and > 0 (e.g. training time over
            natural training's).
        robust: Eps key (the panel's title reads ``eps <key>``) -> robust
            accuracy of each point, a fraction in [0, 1]; None or NaN where
            not measured (the point is left out of that panel).
        labels: Name of each point, for the key.
        numbers: Number of each point, distinct integers >= 1 (e.g. its row
            in a table sorted otherwise); None: 1..n in the order given.
            Points are drawn in the order given whatever their numbers.
        groups: Group of each point (e.g. the kind of training), its colour;
            None: one colour, no legend entries.
        styles: Style of each point (e.g. the activation), its marker; None:
            circles, no legend entries.
        colours: Group -> matplotlib colour, in the legend's order; groups it
            lacks take the next of ``C0``-``C9`` it does not use.
        markers: Style -> matplotlib marker; styles it lacks take, in sorted
            order, the next of ``o s D P X * h p`` it does not use. The legend
            lists the styles sorted.
        lower: Eps key (one of ``robust``'s) -> a second, lower accuracy of
            each point (None or NaN: none), e.g. under a stronger attack.
        lower_label: The legend's name for ``lower``'s markers.
        cost_label: The x axis' label.
        accuracy_label: The first panel's y axis label.
        key_columns: Entries per line of the key.
        dpi: Resolution of the PNG.

    Returns:
        The ``matplotlib.figure.Figure`` drawn (already saved): one axis per
        eps key, in ``robust``'s order; the front is the line labelled
        ``"Pareto front"``.

    Raises:
        ValueError: If the lengths disagree, a cost is not finite and > 0, an
            accuracy is outside [0, 1], ``lower`` names an eps key ``robust``
            lacks or has an accuracy where ``robust`` has none, or there is
            no point or no eps key.
        ImportError: If matplotlib is not installed.

    Example:
        >>> import os, tempfile
        >>> path = os.path.join(tempfile.mkdtemp(), "robustness_per_cost.png")
        >>> figure = plot_robustness_per_cost(
        ...     path, [1.0, 1.6, 3.1], {"0.1": [0.0, 0.94, 0.96], "0.3": [0.0, 0.01, None]},
        ...     ["natural", "n_fgsm", "n_fgsm + penalty"])
        >>> os.path.getsize(path) > 0, [axis.get_title() for axis in figure.axes]
        (True, ['eps 0.1', 'eps 0.3'])
    """
    costs, robust, lower, numbers = _checked(costs, robust, labels, numbers, lower)
    groups, styles = _names("groups", groups, len(costs)), _names("styles", styles, len(costs))
    if key_columns < 1:
        raise ValueError(f"key_columns must be >= 1, got {key_columns}.")
    try:  # a bare Figure renders with Agg and leaves pyplot's backend untouched
        from matplotlib.figure import Figure
        from matplotlib.lines import Line2D
    except ImportError as error:
        raise ImportError("plot_robustness_per_cost draws with matplotlib, which is not "
                          "installed: pip install matplotlib") from error

    present = list(dict.fromkeys(groups or []))
    colours = _assign(present, dict(colours or {}), [f"C{i}" for i in range(10)])
    markers = _assign(sorted(set(styles or [])), dict(markers or {}), _MARKERS)
    looks = [(markers[styles[i]] if styles else "o", colours[groups[i]] if groups else "C0")
             for i in range(len(costs))]
    key_lines = _key(numbers, labels, key_columns)
    key_height = 0.22 * len(key_lines) + 0.2
    figure = Figure(figsize=(5.0 * len(robust), 4.5 + key_height))
    axes = figure.subplots(1, len(robust), squeeze=False)[0]
    for axis, (key, column) in zip(axes, robust.items()):
        _panel(axis, costs, column, numbers, looks, lower.get(key), lower_label)
        axis.margins(x=0.2)
        axis.set_title(f"eps {key}")
        axis.set_xlabel(cost_label)
        axis.set_ylim(-2, 102)
    axes[0].set_ylabel(accuracy_label)
    handles = [Line2D([], [], linestyle="", marker="o", color=colours[group], label=group)
               for group in colours if group in present]
    handles += [Line2D([], [], linestyle="", color="black", label=style,
                       marker=markers[style], fillstyle="none")
                for style in sorted(set(styles or []))]
    if handles:  # beside the first panel's own legend, if it has one
        previous = axes[0].get_legend()
        axes[0].legend(handles=handles, fontsize="x-small", loc="center right")
        if previous is not None:
            axes[0].add_artist(previous)
    figure.text(0.01, 0.01, "\n".join(key_lines), fontsize=8, family="monospace",
                va="bottom")
    figure.tight_layout(rect=(0, key_height / (4.5 + key_height), 1, 1))
    figure.savefig(path, dpi=dpi)
    return figure


def _checked(costs, robust, labels, numbers, lower):
    """The inputs as lists of floats (NaN: not measured) and numbers, or a ValueError."""
    count = len(labels)
    if isinstance(labels, str) or count == 0:
        raise ValueError(f"labels: one name per point, got {labels!r}.")
    costs = checked_costs(costs, count)
    if not robust:
        raise ValueError("robust holds no eps key: nothing to draw.")
    robust = {key: accuracies(f"robust[{key!r}]", column, count)
              for key, column in robust.items()}
    lower = {key: accuracies(f"lower[{key!r}]", column, count)
             for key, column in (lower or {}).items()}
    for key, column in lower.items():
        if key not in robust:
            raise ValueError(f"lower has eps key {key!r}, robust does not: {list(robust)}.")
        for index, value in enumerate(column):
            if not math.isnan(value) and math.isnan(robust[key][index]):
                raise ValueError(f"lower[{key!r}][{index}] is {value} but robust has no "
                                 "accuracy there to draw it below.")
    numbers = list(range(1, count + 1)) if numbers is None else list(numbers)
    if (len(numbers) != count or len(set(numbers)) != count
            or not all(isinstance(n, Integral) and n >= 1 for n in numbers)):
        raise ValueError(f"numbers: one distinct integer >= 1 per point ({count}), got "
                         f"{numbers}.")
    return costs, robust, lower, numbers


def _panel(axis: Axes, costs: List[float], column: List[float], numbers: List[int],
           looks: List[tuple], lower: Optional[List[float]], lower_label: str) -> None:
    """One eps: the numbered points, ``lower``'s markers, the front as a step line."""
    shown = [i for i, value in enumerate(column) if not math.isnan(value)]
    for i in shown:
        marker, colour = looks[i]
        axis.plot(costs[i], 100 * column[i], marker, color=colour, markersize=5)
        axis.annotate(str(numbers[i]), (costs[i], 100 * column[i]), fontsize=7,
                      xytext=(3, 3), textcoords="offset points")
    below = [i for i in shown if lower is not None and not math.isnan(lower[i])]
    for number, i in enumerate(below):
        axis.plot([costs[i], costs[i]], [100 * column[i], 100 * lower[i]],
                  color=_LOWER_COLOUR, linewidth=0.8)
        axis.plot(costs[i], 100 * lower[i], "v", color=_LOWER_COLOUR,
                  label=None if number else lower_label)
    front = pareto_front(costs, column)
    if front:  # on to the largest cost of all points, measured here or not
        accuracies = [100 * column[i] for i in front]
        axis.step([costs[i] for i in front] + [max(costs)], accuracies + accuracies[-1:],
                  where="post", color=_FRONT_COLOUR, label="Pareto front")
        axis.legend(fontsize="small", loc="best")
