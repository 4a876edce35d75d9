"""Tests of evaluation.compare_worst_case against a per-example count by hand."""

import numpy as np
import pytest

from keras_gradreg import evaluation
from keras_gradreg.evaluation import Results


def _results(model, clean, robust, eps=(0.1, 0.2)):
    """Worst-case-only results of one model: ``robust[eps_key][attack]`` arrays."""
    attacks = sorted({name for by_attack in robust.values() for name in by_attack})
    correct = {("clean", model): np.asarray(clean, bool)}
    for key, by_attack in robust.items():
        for name, values in by_attack.items():
            correct[("white_box", model, name, key)] = np.asarray(values, bool)
    return Results.from_correct(correct, [model], attacks, list(eps), eps[0],
                                {"attacks": {name: {} for name in attacks},
                                 "worst_case_only": True})


@pytest.mark.parametrize("seed", range(5))
def test_counts_equal_a_loop_over_examples(seed):
    rng = np.random.default_rng(seed)
    n, prefix = 40, 25
    clean = rng.random(n) < 0.8
    earlier = _results("net", clean, {
        k: {"pgd": rng.random(n) < 0.6, "fgsm": rng.random(n) < 0.7} for k in ("0.1", "0.2")})
    later = _results("model", clean[:prefix], {
        k: {"autoattack": rng.random(prefix) < 0.5} for k in ("0.1", "0.2")})
    rows = evaluation.compare_worst_case(later, earlier, {"model": "net"})
    assert [(row["model"], row["eps"]) for row in rows] == [("model", "0.1"), ("model", "0.2")]
    for row in rows:
        k = row["eps"]
        now = [clean[i] and later.correct("model", "autoattack", k)[i] for i in range(prefix)]
        then = [clean[i] and earlier.correct("net", "pgd", k)[i]
                and earlier.correct("net", "fgsm", k)[i] for i in range(prefix)]
        assert row["examples"] == prefix
        assert row["results"] == pytest.approx(sum(now) / prefix)
        assert row["earlier"] == pytest.approx(sum(then) / prefix)
        assert row["both"] == pytest.approx(sum(a and b for a, b in zip(now, then)) / prefix)
        assert row["missed"] == sum(a and not b for a, b in zip(now, then))


def test_default_pairs_are_the_shared_names_and_eps_only_shared_ones():
    clean = [1, 1, 0]
    earlier = _results("m", clean, {"0.1": {"pgd": [1, 0, 0]}}, eps=(0.1,))
    later = _results("m", clean, {"0.1": {"aa": [0, 0, 0]}, "0.3": {"aa": [0, 0, 0]}},
                     eps=(0.1, 0.3))
    rows = evaluation.compare_worst_case(later, earlier)
    assert [(row["eps"], row["missed"]) for row in rows] == [("0.1", 0)]
    other = _results("other", clean, {"0.1": {"pgd": [1, 0, 0]}}, eps=(0.1,))
    assert evaluation.compare_worst_case(later, other) == []


@pytest.mark.parametrize("earlier_clean, models, message", [
    ([1, 0, 1], None, "clean predictions differ"),
    ([1, 1], None, "fewer than 3"),
    ([1, 1, 0], {"m": "absent"}, "must be a model"),
    ([1, 1, 0], {"absent": "m"}, "must be a model"),
])
def test_refuses_results_that_are_not_comparable(earlier_clean, models, message):
    later = _results("m", [1, 1, 0], {"0.1": {"aa": [1, 0, 0]}}, eps=(0.1,))
    earlier = _results("m", earlier_clean, {"0.1": {"pgd": [1] * len(earlier_clean)}},
                       eps=(0.1,))
    with pytest.raises(ValueError, match=message):
        evaluation.compare_worst_case(later, earlier, models)
