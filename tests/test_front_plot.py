"""The robustness-against-cost chart: what it draws, checked on the returned
Figure's artists against independent computations (the front by brute force),
and the inputs it refuses before drawing."""

import math
import sys

import numpy as np
import pytest

pytest.importorskip("matplotlib")
import matplotlib.image  # noqa: E402

from keras_gradreg import evaluation  # noqa: E402

COSTS = [1.0, 1.5, 2.0, 3.0, 1.2]
ROBUST = {"0.1": [0.30, 0.94, 0.92, 0.95, 0.30], "0.3": [0.0, None, 0.2, 0.3, float("nan")]}
LABELS = ["natural", "n_fgsm", "pgd", "n_fgsm + penalty", "natural, gelu"]


def _brute_force_front(costs, scores):
    """Indices no other point beats (costing no more, scoring no less, better in one
    of the two, or the same point listed earlier), cheapest first."""
    measured = [i for i, score in enumerate(scores) if not math.isnan(score)]
    kept = [i for i in measured if not any(
        costs[j] <= costs[i] and scores[j] >= scores[i]
        and (costs[j] < costs[i] or scores[j] > scores[i] or j < i)
        for j in measured if j != i)]
    return sorted(kept, key=lambda i: costs[i])


def _line(axis, label):
    found = [line for line in axis.get_lines() if line.get_label() == label]
    assert len(found) == 1, [line.get_label() for line in axis.get_lines()]
    return found[0]


def _points(axis):
    """(x, y) of the single-point marker lines that are not the lower ones."""
    return sorted((float(line.get_xdata()[0]), float(line.get_ydata()[0]))
                  for line in axis.get_lines()
                  if len(line.get_xdata()) == 1 and line.get_marker() != "v")


def test_writes_a_png_with_one_panel_per_eps(tmp_path):
    path = tmp_path / "chart.png"
    figure = evaluation.plot_robustness_per_cost(path, COSTS, ROBUST, LABELS, dpi=50)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = figure.get_size_inches()
    assert matplotlib.image.imread(path).shape[:2] == (round(50 * height),
                                                       round(50 * width))
    assert [axis.get_title() for axis in figure.axes] == ["eps 0.1", "eps 0.3"]
    assert width == 10.0
    first, second = figure.axes
    assert first.get_ylabel() == "robust accuracy (%)"
    assert second.get_xlabel() == "training cost"
    # Every measured point at its cost and accuracy in percent, numbered 1..n.
    for axis, key in zip(figure.axes, ROBUST):
        expected = sorted((cost, 100 * value) for cost, value in zip(COSTS, ROBUST[key])
                          if value is not None and not math.isnan(value))
        assert np.allclose(_points(axis), expected)
    assert [text.get_text() for text in first.texts] == ["1", "2", "3", "4", "5"]
    assert [text.get_text() for text in second.texts] == ["1", "3", "4"]
    key = figure.texts[0].get_text().splitlines()
    assert key[0].split() == ["1", "natural", "2", "n_fgsm", "3", "pgd", "4", "n_fgsm",
                              "+", "penalty"]
    assert key[1].split() == ["5", "natural,", "gelu"]
    assert first.get_legend() is not None  # the front's only: no groups, no styles
    assert [text.get_text() for text in first.get_legend().get_texts()] == ["Pareto front"]


@pytest.mark.parametrize("seed", range(10))
def test_the_step_line_is_the_brute_force_front(tmp_path, seed):
    rng = np.random.default_rng(seed)
    size = int(rng.integers(1, 25))
    costs = rng.integers(1, 6, size).astype(float).tolist()  # ties on purpose
    columns = {}
    for key in ("0.1", "0.2"):
        scores = (rng.integers(0, 8, size) / 8).tolist()
        for index in rng.choice(size, size // 4, replace=False):
            scores[index] = float("nan")
        columns[key] = scores
    figure = evaluation.plot_robustness_per_cost(
        tmp_path / "chart.png", costs, columns, [f"r{i}" for i in range(size)], dpi=20)
    for axis, scores in zip(figure.axes, columns.values()):
        front = _brute_force_front(costs, scores)
        if not front:
            assert "Pareto front" not in [line.get_label() for line in axis.get_lines()]
            continue
        step = _line(axis, "Pareto front")
        assert step.get_drawstyle() == "steps-post"
        assert list(step.get_xdata()) == [costs[i] for i in front] + [max(costs)]
        tops = [100 * scores[i] for i in front]
        assert list(step.get_ydata()) == pytest.approx(tops + tops[-1:])


def test_groups_styles_numbers_and_the_lower_accuracy(tmp_path):
    figure = evaluation.plot_robustness_per_cost(
        tmp_path / "chart.png", COSTS, ROBUST, LABELS, numbers=[1, 3, 4, 5, 2],
        groups=["natural", "at", "at", "penalty", "natural"],
        styles=["relu", "relu", "relu", "gelu", "gelu"],
        colours={"penalty": "tab:purple", "natural": "tab:gray"}, markers={"relu": "o"},
        lower={"0.1": [None, 0.90, None, 0.93, None], "0.3": [0.0] + [None] * 4},
        lower_label="with AutoAttack", cost_label="cost", accuracy_label="acc", dpi=20)
    first, second = figure.axes
    legends = [child for child in first.get_children()
               if type(child).__name__ == "Legend"]
    labels = sorted([text.get_text() for text in legend.get_texts()] for legend in legends)
    # Groups in ``colours``' order, then the rest; styles sorted.
    assert labels == [["penalty", "natural", "at", "gelu", "relu"],
                      ["with AutoAttack", "Pareto front"]]
    colours = {line.get_label(): line.get_color() for line in first.get_legend().get_lines()}
    assert colours["natural"] == "tab:gray" and colours["at"] == "C0"
    markers = {line.get_label(): line.get_marker()
               for line in first.get_legend().get_lines()}
    assert markers["relu"] == "o" and markers["gelu"] == "s"  # the next one unused
    assert [text.get_text() for text in first.texts] == ["1", "3", "4", "5", "2"]
    assert figure.texts[0].get_text().split()[:4] == ["1", "natural", "2", "natural,"]
    # A vertical line from each point down to its lower accuracy, then a triangle.
    drops = [(list(line.get_xdata()), list(line.get_ydata()))
             for line in first.get_lines() if len(line.get_xdata()) == 2]
    assert drops == [([1.5, 1.5], [94.0, 90.0]), ([3.0, 3.0], [95.0, 93.0])]
    assert [(line.get_xdata()[0], line.get_ydata()[0]) for line in first.get_lines()
            if line.get_marker() == "v"] == [(1.5, 90.0), (3.0, 93.0)]
    assert len([line for line in second.get_lines() if line.get_marker() == "v"]) == 1
    assert first.get_ylabel() == "acc" and second.get_ylabel() == ""


@pytest.mark.parametrize("change, message", [
    ({"costs": COSTS[:-1]}, "4 costs but 5 labels"),
    ({"costs": [0.0] + COSTS[1:]}, r"costs\[0\]: 0.0; costs must be finite and > 0"),
    ({"costs": [-1.0] + COSTS[1:]}, "finite and > 0"),
    ({"costs": [math.inf] + COSTS[1:]}, "finite and > 0"),
    ({"costs": [math.nan] + COSTS[1:]}, "finite and > 0"),
    ({"costs": ["1"] + COSTS[1:]}, "finite and > 0"),
    ({"labels": []}, "one name per point"),
    ({"robust": {}}, "no eps key"),
    ({"robust": {"0.1": [0.3, 0.9]}}, r"robust\['0.1'\]: one accuracy per point \(5\), got 2"),
    ({"robust": {"0.1": [30.0, 94.0, 92.0, 95.0, 30.0]}}, r"not an accuracy in \[0, 1\]"),
    ({"robust": {"0.1": [-0.1, 0.9, 0.9, 0.9, 0.9]}}, r"in \[0, 1\]"),
    ({"robust": {"0.1": ["0.3", 0.9, 0.9, 0.9, 0.9]}}, "is not a number"),
    ({"lower": {"0.2": [None] * 5}}, "lower has eps key '0.2'"),
    ({"lower": {"0.3": [None, 0.0, None, None, None]}}, "robust has no accuracy there"),
    ({"lower": {"0.1": [1.5] + [None] * 4}}, r"in \[0, 1\]"),
    ({"groups": ["a"] * 4}, "groups: one per point"),
    ({"styles": "relu"}, "styles: one per point"),
    ({"numbers": [1, 1, 2, 3, 4]}, "numbers: one distinct integer"),
    ({"numbers": [0, 1, 2, 3, 4]}, "numbers: one distinct integer"),
    ({"key_columns": 0}, "key_columns must be >= 1"),
])
def test_bad_inputs_are_refused_before_drawing(tmp_path, change, message):
    arguments = {"costs": COSTS, "robust": ROBUST, "labels": LABELS, **change}
    path = tmp_path / "chart.png"
    with pytest.raises(ValueError, match=message):
        evaluation.plot_robustness_per_cost(path, **arguments)
    assert not path.exists()


def test_without_matplotlib_the_error_says_how_to_install_it(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib.figure", None)  # import fails
    with pytest.raises(ImportError, match="pip install matplotlib"):
        evaluation.plot_robustness_per_cost(tmp_path / "chart.png", COSTS, ROBUST, LABELS)
    assert not (tmp_path / "chart.png").exists()
