"""Robustness against cost: the Pareto front and whether a gap is noise.

Plain NumPy on numbers (no graph, no model): which training recipes are
worth their cost (no other recipe is both cheaper and more robust), per eps,
and whether the lead of one accuracy over another on a test set of a given
size is more than two standard errors.

Example:
    >>> costs = [1.0, 1.5, 2.0, 3.0]
    >>> robust = {"0.1": [0.30, 0.94, 0.92, 0.95], "0.3": [0.0, 0.01, 0.2, 0.3]}
    >>> pareto_fronts(costs, robust)
    {'0.1': [0, 1, 3], '0.3': [0, 1, 2, 3]}
    >>> within_noise(0.95, 0.94, 1000)  # 1 point on 1,000 images: noise
    True
"""

from __future__ import annotations

import math
from numbers import Real
from typing import Dict, List, Mapping, Optional, Sequence

import numpy as np


def pareto_front(costs: Sequence[float], scores: Sequence[float]) -> List[int]:
    """Indices of the points no other point beats, cheapest first.

    A point is beaten (dominated) when another costs no more and scores at
    least as much, and is strictly better in one of the two. Of identical
    points only the first listed is kept. Points whose score is NaN (not
    measured) are left out.

    Args:
        costs: Cost of each point (lower is better), e.g. training time over
            natural training's.
        scores: Score of each point (higher is better), e.g. robust
            accuracy; same length.

    Returns:
        The indices of the front, by increasing cost (and so increasing
        score).

    Raises:
        ValueError: If the lengths differ or the inputs are not flat.

    Example:
        >>> pareto_front([1.0, 2.0, 1.5, 3.0], [0.4, 0.9, 0.3, 0.8])
        [0, 1]
    """
    costs = np.asarray(costs, dtype=np.float64)
    scores = np.asarray(scores, dtype=np.float64)
    if costs.ndim != 1 or scores.ndim != 1:
        raise ValueError("costs and scores must be flat sequences of numbers.")
    if len(costs) != len(scores):
        raise ValueError(
            f"{len(costs)} costs but {len(scores)} scores: one of each per "
            "point.")
    measured = np.flatnonzero(~np.isnan(scores))
    # Cheapest first, the higher score first among equal costs; stable, so
    # the first of identical points leads.
    order = measured[np.lexsort((-scores[measured], costs[measured]))]
    front, best = [], -np.inf
    for index in order:
        if scores[index] > best:
            front.append(int(index))
            best = scores[index]
    return front


def pareto_fronts(costs: Sequence[float],
                  scores: Mapping[str, Sequence[float]]) -> Dict[str, List[int]]:
    """The front of each score column, e.g. robust accuracy per eps.

    Args:
        costs: Cost of each point.
        scores: Column name -> score of each point (NaN: not measured).

    Returns:
        Column name -> the indices of its front, cheapest first
        (:func:`pareto_front`).

    Example:
        >>> pareto_fronts([1.0, 2.0], {"0.1": [0.5, 0.9], "0.3": [0.1, float("nan")]})
        {'0.1': [0, 1], '0.3': [0]}
    """
    return {key: pareto_front(costs, column) for key, column in scores.items()}


def two_standard_errors(first: float, second: float, images: int) -> float:
    """Two standard errors of the difference of two accuracies.

    Each accuracy is on ``images`` test images, taken as independent (on the
    same images the error is smaller, so this errs on the side of calling a
    gap noise).

    Args:
        first: One accuracy, a fraction in [0, 1].
        second: The other.
        images: Test images behind each, >= 1.

    Returns:
        ``2 * sqrt((p1 (1 - p1) + p2 (1 - p2)) / images)``, a fraction.

    Raises:
        ValueError: If ``images`` is below 1.

    Example:
        >>> round(100 * two_standard_errors(0.95, 0.94, 1000), 1)
        2.0
    """
    if images < 1:
        raise ValueError(f"images must be >= 1, got {images}.")
    variance = (first * (1 - first) + second * (1 - second)) / images
    return 2 * math.sqrt(variance)


def within_noise(high: float, low: float, images: int) -> bool:
    """Whether ``high``'s lead over ``low`` is under two standard errors
    (:func:`two_standard_errors`): a gap the test set cannot tell from noise.

    Example:
        >>> within_noise(0.95, 0.94, 1000), within_noise(0.95, 0.85, 1000)
        (True, False)
    """
    return high - low < two_standard_errors(high, low, images)


# The inputs of the front's table, sentences and chart, checked ---------------


def accuracies(name: str, values: Sequence[Optional[float]], count: int) -> List[float]:
    """``values`` as floats (None: NaN), each NaN or in [0, 1], ``count`` of them."""
    if isinstance(values, (str, bytes)) or len(values) != count:
        got = repr(values) if isinstance(values, (str, bytes)) else len(values)
        raise ValueError(f"{name}: one accuracy per point ({count}), got {got}.")
    found = []
    for index, value in enumerate(values):
        if not (value is None or isinstance(value, Real)):
            raise ValueError(f"{name}[{index}]: {value!r} is not a number.")
        value = math.nan if value is None else float(value)
        if not (math.isnan(value) or 0.0 <= value <= 1.0):
            raise ValueError(f"{name}[{index}]: {value} is not an accuracy in [0, 1] (a "
                             "fraction, not a percentage; None or NaN: not measured).")
        found.append(value)
    return found


def checked_costs(costs: Sequence[float], count: int) -> List[float]:
    """``costs`` as floats, ``count`` of them, each finite and > 0."""
    if len(costs) != count:
        raise ValueError(f"{len(costs)} costs but {count} labels: one of each per point.")
    for index, cost in enumerate(costs):
        if not (isinstance(cost, Real) and math.isfinite(cost) and cost > 0):
            raise ValueError(f"costs[{index}]: {cost!r}; costs must be finite and > 0.")
    return [float(cost) for cost in costs]
