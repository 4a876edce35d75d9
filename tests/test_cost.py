"""Tests of keras_gradreg.evaluation's training_cost and attack_cost.

No assertion is on real speed: the bookkeeping (what is timed, ratios taken
within rounds, medians) is checked with a scripted timer whose numbers are
known, against values recomputed here from the scripted per-round timings.
"""

import itertools
import statistics

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_gradreg import attacks
from keras_gradreg import evaluation
from keras_gradreg.evaluation import _cost


class CountedNet(keras.Model):
    """A tiny Dense net that counts its calls (traces included)."""

    def __init__(self, width=4, classes=3, **kwargs):
        super().__init__(**kwargs)
        self.calls = 0
        self.hidden = keras.layers.Dense(width, activation="tanh")
        self.out = keras.layers.Dense(classes)

    def call(self, inputs, training=None):
        self.calls += 1
        return self.out(self.hidden(inputs))


def _model(width=4, compiled=True):
    model = CountedNet(width)
    if compiled:
        model.compile(keras.optimizers.SGD(0.01),
                      keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    return model


def _data(n=16, batch=4):
    """A finite dataset of 4 batches: training_cost must repeat it."""
    rng = np.random.default_rng(0)
    x = rng.uniform(0, 1, (n, 5)).astype("float32")
    y = rng.integers(0, 3, n).astype("int32")
    return tf.data.Dataset.from_tensor_slices((x, y)).batch(batch)


def _scripted_timer(monkeypatch, walls, cpus):
    """Replaces the timer: each call runs ``run`` and returns the next scripted
    ``{"wall", "cpu"}``; returns the list of timed calls."""
    script, calls = iter(zip(walls, cpus)), []

    def timed(run):
        run()
        wall, cpu = next(script)
        calls.append((wall, cpu))
        return {"wall": wall, "cpu": cpu}

    monkeypatch.setattr(_cost, "timed", timed)
    return calls


def _per_round(values, names, rounds):
    """Scripted values in round-robin order -> each name's values per round."""
    return {name: [values[r * len(names) + i] for r in range(rounds)]
            for i, name in enumerate(names)}


def test_ratios_are_taken_within_rounds(monkeypatch):
    names, rounds = ["a", "b", "c"], 3
    # Round-robin order: a, b, c in round 1, then round 2, ... The ratio of the
    # medians (b: 8 / a: 2 = 4) differs from the median of the ratios (2).
    walls = [1.0, 2.0, 3.0, 10.0, 11.0, 5.0, 2.0, 8.0, 1.0]
    cpus = [2.0, 1.0, 4.0, 4.0, 12.0, 2.0, 1.0, 5.0, 3.0]
    _scripted_timer(monkeypatch, walls, cpus)
    models = {name: _model() for name in names}
    cost = evaluation.training_cost(models, _data(), steps=2, rounds=rounds,
                                    warmup_steps=1, references=["a", "c"], verbose=0)

    wall, cpu = _per_round(walls, names, rounds), _per_round(cpus, names, rounds)
    assert list(cost) == names
    for name in names:
        assert cost[name]["seconds_per_epoch"] == {
            "median": statistics.median(wall[name]), "min": min(wall[name]),
            "max": max(wall[name]), "all": wall[name]}
        assert cost[name]["cpu_seconds_per_epoch"]["all"] == cpu[name]
        assert list(cost[name]["ratio_to"]) == ["a", "c"]
        for reference in ("a", "c"):
            for kind, own in (("wall", wall), ("cpu", cpu)):
                expected = [t / r for t, r in zip(own[name], own[reference])]
                ratios = cost[name]["ratio_to"][reference][kind]
                assert ratios["all"] == pytest.approx(expected)
                assert ratios["median"] == pytest.approx(statistics.median(expected))
                assert ratios["min"] == pytest.approx(min(expected))
    assert cost["b"]["ratio_to"]["a"]["wall"]["median"] == pytest.approx(2.0)
    assert cost["b"]["seconds_per_epoch"]["median"] / cost["a"]["seconds_per_epoch"][
        "median"] == pytest.approx(4.0)


@pytest.mark.parametrize("steps, rounds, warmup_steps", [(1, 1, 0), (2, 3, 1), (3, 2, 2)])
def test_an_epoch_is_steps_calls_of_the_train_step(steps, rounds, warmup_steps):
    """One tracing fit of max(warmup_steps, 1) steps, then steps per epoch
    (the finite dataset of 4 batches is repeated as needed)."""
    models = {"small": _model(4), "wide": _model(16)}
    cost = evaluation.training_cost(models, _data(), steps, rounds, warmup_steps,
                                    verbose=0)
    for name, model in models.items():
        assert int(model.optimizer.iterations) == max(warmup_steps, 1) + steps * rounds
        assert len(cost[name]["seconds_per_epoch"]["all"]) == rounds
        assert min(cost[name]["seconds_per_epoch"]["all"]) > 0
    assert list(cost["wide"]["ratio_to"]) == ["small"]  # the first model by default


def test_a_reference_has_ratio_exactly_one_to_itself():
    models = {"a": _model(4), "b": _model(8)}
    cost = evaluation.training_cost(models, _data(), steps=1, rounds=3, warmup_steps=0,
                                    references="b", verbose=0)
    for kind in ("wall", "cpu"):
        assert cost["b"]["ratio_to"]["b"][kind]["all"] == [1.0, 1.0, 1.0]
        assert cost["b"]["ratio_to"]["b"][kind]["median"] == 1.0
    assert list(cost["a"]["ratio_to"]) == ["b"]


def test_no_references_gives_no_ratios(monkeypatch):
    _scripted_timer(monkeypatch, [1.0, 2.0], [1.0, 2.0])
    cost = evaluation.training_cost({"a": _model(), "b": _model()}, _data(), steps=1,
                                    rounds=1, references=[], verbose=0)
    assert cost["a"]["ratio_to"] == {} and cost["b"]["seconds_per_epoch"]["all"] == [2.0]


def test_verbose_prints_a_line_per_model_and_per_round(capsys):
    evaluation.training_cost({"a": _model(), "b": _model()}, _data(), steps=1, rounds=2,
                             warmup_steps=0)
    lines = capsys.readouterr().out.splitlines()
    assert [line for line in lines if "tracing" in line] == ["  a: tracing", "  b: tracing"]
    rounds = [line for line in lines if "round" in line]
    assert len(rounds) == 2 and rounds[1].startswith("  round 2/2: a ")


@pytest.mark.parametrize("change, error, message", [
    ({"models": "uncompiled"}, ValueError, "Model 'raw' is not compiled"),
    ({"models": "none"}, ValueError, "at least one model"),
    ({"references": ["a", "z"]}, ValueError, r"Unknown references \['z'\]"),
    ({"references": "z"}, ValueError, r"Unknown references \['z'\]"),
    ({"steps": 0}, ValueError, "steps must be >= 1, got 0"),
    ({"steps": 1.5}, ValueError, "steps must be an integer >= 1"),
    ({"rounds": 0}, ValueError, "rounds must be >= 1, got 0"),
    ({"warmup_steps": -1}, ValueError, "warmup_steps must be >= 0"),
    ({"data": "arrays"}, TypeError, "tf.data.Dataset"),
])
def test_training_cost_refuses_bad_arguments_before_any_model_call(change, error, message):
    first = _model()  # listed first: with a late check it would be traced
    models = {"uncompiled": {"a": first, "raw": _model(compiled=False)}, "none": {},
              None: {"a": first}}[change.pop("models", None)]
    data = {"arrays": (np.zeros((4, 5)), np.zeros(4)), None: _data()}[
        change.pop("data", None)]
    with pytest.raises(error, match=message):
        evaluation.training_cost(models, data, **{"steps": 1, "rounds": 1, **change},
                                 verbose=0)
    assert first.calls == 0 and int(first.optimizer.iterations) == 0


@pytest.fixture
def registered(monkeypatch):
    """Two fake registered attacks that log their calls: ``shift`` takes some
    options (no ``queries``), ``plain`` none."""
    log = []

    def shift(model, x, y, eps, steps=10, batch_size=None, clip_max=1.0):
        log.append(("shift", len(x), {"steps": steps, "batch_size": batch_size}))
        return np.clip(np.asarray(x) + eps, 0.0, clip_max)

    def plain(model, x, y, eps):
        log.append(("plain", len(x), {}))
        return np.asarray(x)

    monkeypatch.setitem(attacks.ATTACKS, "shift", shift)
    monkeypatch.setitem(attacks.ATTACKS, "plain", plain)
    return log


@pytest.mark.parametrize("batch_size", [None, 3])
def test_attack_cost_traces_on_two_then_times_every_example(monkeypatch, registered,
                                                            batch_size):
    rounds, n, names = 3, 6, ["shift", "plain"]
    walls, cpus = [0.5, 2.0, 1.5, 3.0, 4.0, 1.0], [0.3, 0.6, 0.9, 1.2, 1.5, 1.8]
    timer_calls = _scripted_timer(monkeypatch, walls, cpus)
    original = _cost.timed

    def timed(run):  # logs where each timed call starts
        registered.append("timed")
        return original(run)

    monkeypatch.setattr(_cost, "timed", timed)
    x = np.random.default_rng(0).uniform(0, 1, (n, 5)).astype("float32")
    extra = {} if batch_size is None else {"batch_size": batch_size}
    cost = evaluation.attack_cost(_model(), x, np.zeros(n), names, 0.1, rounds=rounds,
                                  verbose=0, steps=2, queries=7, clip_max=1.0, **extra)

    options = {"steps": 2, "batch_size": batch_size or n}
    timed_call = ["timed", ("shift", n, options), "timed", ("plain", n, {})]
    assert registered == [("shift", 2, options), ("plain", 2, {})] + timed_call * rounds
    assert len(timer_calls) == rounds * len(names)
    wall, cpu = _per_round(walls, names, rounds), _per_round(cpus, names, rounds)
    assert list(cost) == names
    for name in names:
        speed = [n / t for t in wall[name]]
        assert cost[name]["examples_per_second"]["all"] == pytest.approx(speed)
        assert cost[name]["examples_per_second"]["median"] == pytest.approx(
            statistics.median(speed))
        assert cost[name]["cpu_seconds_per_example"]["all"] == pytest.approx(
            [t / n for t in cpu[name]])


def test_attack_cost_prints_a_line_per_round(registered, capsys):
    evaluation.attack_cost(_model(), np.zeros((3, 5), "float32"), np.zeros(3),
                           ["plain", "shift"], 0.1, rounds=2)
    lines = capsys.readouterr().out.splitlines()
    assert [line.split(":")[0] for line in lines] == ["  round 1/2", "  round 2/2"]
    assert ", shift " in lines[1]


def test_attack_cost_runs_every_attack_of_the_registry():
    """One tiny image network with 4 classes (APGD-T's targeted DLR needs
    them), every attack family with few steps and queries."""
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((6, 6, 1)), keras.layers.Conv2D(2, 3),
                              keras.layers.Flatten(), keras.layers.Dense(4)])
    x = np.random.default_rng(0).uniform(0, 1, (4, 6, 6, 1)).astype("float32")
    y = np.argmax(model.predict(x, verbose=0), axis=-1)
    cost = evaluation.attack_cost(model, x, y, list(attacks.ATTACKS), 0.1, rounds=1,
                                  verbose=0, steps=2, queries=3, clip_min=0.0, clip_max=1.0,
                                  seed=0)
    assert list(cost) == list(attacks.ATTACKS)
    for row in cost.values():
        assert len(row["examples_per_second"]["all"]) == 1
        assert row["examples_per_second"]["min"] > 0
        assert row["cpu_seconds_per_example"]["min"] >= 0


@pytest.mark.parametrize("change, message", [
    ({"attacks": ["fgsm", "deepfool"]}, r"Unknown attacks \['deepfool'\]. Use some of \["),
    ({"rounds": 0}, "rounds must be >= 1"),
    ({"x": np.zeros((0, 5), "float32"), "y": np.zeros(0)}, "at least one example"),
])
def test_attack_cost_refuses_bad_arguments_before_any_attack(registered, change, message):
    model = _model()
    arguments = {"x": np.zeros((4, 5), "float32"), "y": np.zeros(4),
                 "attacks": ["shift", "plain"], "rounds": 1, **change}
    with pytest.raises(ValueError, match=message) as raised:
        evaluation.attack_cost(model, eps=0.1, verbose=0, **arguments)
    assert registered == [] and model.calls == 0
    if "attacks" in change:
        assert all(name in str(raised.value) for name in attacks.ATTACKS)


def test_timed_and_summarize():
    timing = evaluation.timed(lambda: sum(itertools.repeat(1, 1000)))
    assert set(timing) == {"wall", "cpu"} and timing["wall"] >= 0
    assert evaluation.summarize([4.0, 1.0, 2.0]) == {
        "median": 2.0, "min": 1.0, "max": 4.0, "all": [4.0, 1.0, 2.0]}
    with pytest.raises(ValueError, match="at least one value"):
        evaluation.summarize([])
