"""The Pareto front and the noise test, against brute-force computations."""

import math

import numpy as np
import pytest

from keras_gradreg import evaluation


def _brute_force_front(costs, scores):
    """The front by its definition: every point no other point beats, where
    beating is costing no more and scoring no less, better in one of the
    two, or being an identical point listed earlier."""
    kept = []
    for i, (cost, score) in enumerate(zip(costs, scores)):
        if math.isnan(score):
            continue
        beaten = any(
            j != i and not math.isnan(scores[j]) and costs[j] <= cost
            and scores[j] >= score
            and (costs[j] < cost or scores[j] > score or j < i)
            for j in range(len(costs)))
        if not beaten:
            kept.append(i)
    return sorted(kept, key=lambda i: costs[i])


@pytest.mark.parametrize("seed", range(20))
def test_pareto_front_matches_the_definition(seed):
    rng = np.random.default_rng(seed)
    size = int(rng.integers(0, 30))
    costs = rng.integers(1, 6, size).astype(float).tolist()  # ties on purpose
    scores = rng.integers(0, 8, size).astype(float).tolist()
    for index in rng.choice(size, size // 5, replace=False) if size else []:
        scores[index] = float("nan")
    front = evaluation.pareto_front(costs, scores)
    assert front == _brute_force_front(costs, scores)
    assert [scores[i] for i in front] == sorted(scores[i] for i in front)


@pytest.mark.parametrize("costs, scores, front", [
    ([], [], []),
    ([2.0], [0.5], [0]),
    ([1.0, 1.0], [0.5, 0.5], [0]),  # identical: the first one
    ([1.0, 2.0], [0.5, 0.5], [0]),  # dearer, no better
    ([2.0, 1.0], [0.9, 0.1], [1, 0]),  # cheapest first
    ([1.0, 1.4, 2.3, 2.1, 1.5, 3.0, 1.4],
     [0.37, 0.90, 0.84, 0.88, 0.936, 0.91, 0.85], [0, 1, 4]),
])
def test_pareto_front_hand_computed(costs, scores, front):
    assert evaluation.pareto_front(costs, scores) == front


def test_pareto_fronts_one_per_column():
    costs = [1.0, 2.0, 3.0]
    columns = {"0.1": [0.3, 0.9, 0.8], "0.3": [0.0, float("nan"), 0.2]}
    assert evaluation.pareto_fronts(costs, columns) == {
        "0.1": [0, 1], "0.3": [0, 2]}


@pytest.mark.parametrize("costs, scores", [([1.0, 2.0], [0.5]),
                                           ([[1.0]], [[0.5]])])
def test_pareto_front_refuses_mismatched_points(costs, scores):
    with pytest.raises(ValueError, match="one of each per point|flat"):
        evaluation.pareto_front(costs, scores)


def test_two_standard_errors_is_the_binomial_one():
    rng = np.random.default_rng(0)
    first, second, images = 0.9, 0.8, 400
    # Simulated: the spread of the difference of two independent accuracies.
    draws = (rng.binomial(images, first, 20000)
             - rng.binomial(images, second, 20000)) / images
    assert evaluation.two_standard_errors(first, second, images) == (
        pytest.approx(2 * draws.std(), rel=0.03))
    with pytest.raises(ValueError, match="images"):
        evaluation.two_standard_errors(0.5, 0.5, 0)


def test_within_noise_compares_the_gap_with_two_standard_errors():
    margin = evaluation.two_standard_errors(0.95, 0.94, 1000)
    assert evaluation.within_noise(0.95, 0.94, 1000)
    assert not evaluation.within_noise(0.94 + margin + 1e-9, 0.94, 1000)
