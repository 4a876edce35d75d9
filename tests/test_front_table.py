"""Tests of evaluation.front_statements and robustness_per_cost_table, against a
brute-force front and the two-standard-error rule computed here."""

import math
import re

import numpy as np
import pytest

from keras_gradreg import evaluation


def _brute_front(costs, column):
    """Indices no other measured point beats (cheaper or equal and at least as
    robust, better in one), the first of identical points kept; by cost."""
    points = [i for i, v in enumerate(column) if v is not None]
    kept = []
    for i in points:
        beaten = any((costs[j] <= costs[i] and column[j] >= column[i]
                      and (costs[j] < costs[i] or column[j] > column[i]))
                     or (costs[j] == costs[i] and column[j] == column[i] and j < i)
                     for j in points if j != i)
        if not beaten:
            kept.append(i)
    return sorted(kept, key=lambda i: costs[i])


def _grid(seed, count=9):
    rng = np.random.default_rng(seed)
    costs = [float(c) for c in np.round(rng.uniform(1, 5, count), 2)]
    robust = {key: [None if rng.random() < 0.2 else float(np.round(rng.random(), 3))
                    for _ in range(count)] for key in ("0.1", "0.3")}
    return costs, robust, [f"r{i}" for i in range(count)]


@pytest.mark.parametrize("seed", range(8))
def test_the_table_bolds_the_brute_force_front_and_orders_by_cost(seed):
    costs, robust, labels = _grid(seed)
    clean = [0.99] * len(costs)
    lines = evaluation.robustness_per_cost_table(costs, robust, labels, clean, "cost x")
    assert lines[0] == "| recipe | cost x | clean | eps 0.1 | eps 0.3 |"
    rows = [line.strip("|").split(" | ") for line in lines[2:-2]]
    assert [row[0].strip() for row in rows] == [
        labels[i] for i in sorted(range(len(costs)), key=lambda i: (costs[i], labels[i]))]
    for column, key in ((3, "0.1"), (4, "0.3")):
        bold = {labels.index(row[0].strip()) for row in rows if row[column].startswith("**")}
        assert bold == set(_brute_front(costs, robust[key]))
        for row in rows:
            value = robust[key][labels.index(row[0].strip())]
            assert row[column].strip().strip("*") == (
                "" if value is None else f"{100 * value:.1f}")
    assert lines[-1].startswith("Bold: on the Pareto front (no recipe is")


@pytest.mark.parametrize("seed", range(8))
def test_statements_name_the_brute_force_front_and_the_noise_by_hand(seed):
    costs, robust, labels = _grid(seed)
    images = 200
    lines = evaluation.front_statements(costs, robust, labels, images, cost_unit="x n")
    assert len(lines) == 2
    for key, line in zip(robust, lines):
        front = _brute_front(costs, robust[key])
        named = re.findall(r"(r\d+) \(([\d.]+)x n, ([\d.]+)%\)", line.split("; most")[0])
        assert [labels.index(name) for name, _, _ in named] == front
        best = front[-1]
        assert f"; most robust: {labels[best]}" in line
        expected = []
        pairs = list(zip(front[1:], front))
        runner = max((i for i, v in enumerate(robust[key]) if v is not None and i != best),
                     key=lambda i: (robust[key][i], -i), default=None)
        if runner is not None and runner not in front:
            pairs.append((best, runner))
        for high, low in pairs:
            a, b = robust[key][high], robust[key][low]
            error = 2 * math.sqrt((a * (1 - a) + b * (1 - b)) / images)
            if a - b < error:
                expected.append(f"{labels[high]} leads {labels[low]} by "
                                f"{100 * (a - b):.1f} points")
        assert re.findall(r"r\d+ leads r\d+ by [\d.]+ points", line) == expected


def test_per_point_images_and_no_images():
    costs, labels = [1.0, 2.0], ["a", "b"]
    robust = {"0.1": [0.50, 0.52]}
    assert "within two standard errors" not in evaluation.front_statements(
        costs, robust, labels)[0]
    # The smaller count of the two decides: 10 images make 2 points noise.
    assert "b leads a by 2.0 points" in evaluation.front_statements(
        costs, robust, labels, {"0.1": [10, None]})[0]
    assert evaluation.front_statements(costs, {"0.1": [None, None]}, labels) == []


@pytest.mark.parametrize("function", [evaluation.front_statements,
                                      evaluation.robustness_per_cost_table])
@pytest.mark.parametrize("costs, robust, labels, message", [
    ([1.0, 2.0], {"0.1": [0.5]}, ["a", "b"], "one accuracy per point"),
    ([1.0, 2.0], {"0.1": [0.5, 0.6]}, ["a"], "one of each per point"),
    ([1.0], {"0.1": [0.5]}, "a", "one name per point"),
    ([1.0, 2.0], {"0.1": [0.5, 94.0]}, ["a", "b"], "not a percentage"),
    ([1.0, float("nan")], {"0.1": [0.5, 0.6]}, ["a", "b"], "finite and > 0"),
    ([1.0, 2.0], {"0.1": [0.5, "x"]}, ["a", "b"], "is not a number"),
])
def test_refuses_bad_points_before_writing_anything(function, costs, robust, labels,
                                                    message):
    with pytest.raises(ValueError, match=message):
        function(costs, robust, labels)


def test_the_clean_column_is_checked_and_nan_is_not_measured():
    with pytest.raises(ValueError, match="clean: one accuracy per point"):
        evaluation.robustness_per_cost_table([1.0], {"0.1": [0.5]}, ["a"], [0.9, 0.9])
    lines = evaluation.robustness_per_cost_table(
        [1.0, 2.0], {"0.1": [float("nan"), 0.5]}, ["a", "b"], [0.9, 0.8])
    assert lines[2:4] == ["| a | 1.00 | 90.0 |  |", "| b | 2.00 | 80.0 | **50.0** |"]
