"""Smoke and unit tests of benchmarks/step_time.py (no timing assertions).

The benchmark runs end to end on a tiny network in seconds, so that it cannot
rot; its bookkeeping (ratios within rounds, medians) is checked against
numbers recomputed here from the raw timings it writes.
"""

import json
import pathlib
import statistics

import keras
import numpy as np
import pytest
from absl import app
from absl import flags

import keras_gradreg

from _data import write_mnist  # noqa: E402  (tests/ is on sys.path)
from _scripts import load_script  # noqa: E402

BENCHMARKS = pathlib.Path(__file__).resolve().parents[1] / "benchmarks"


step_time = load_script(BENCHMARKS / "step_time.py")


def _tiny_network():
    return keras.Sequential([
        keras.Input((6, 6, 1)),
        keras.layers.Conv2D(2, 3, activation="relu"),
        keras.layers.Flatten(),
        keras.layers.Dense(4),  # APGD-T's targeted DLR needs 4 classes
    ])


TINY = step_time.Network(_tiny_network, (6, 6, 1), 4, eps=0.1, clip_max=1.0)


def _run_main(monkeypatch, **values):
    monkeypatch.setitem(step_time.NETWORKS, "tiny", TINY)
    flag_values = flags.FlagValues()
    step_time.define_flags(flag_values)
    flag_values(["step_time"] + [f"--{k}={v}" for k, v in values.items()])
    step_time.main(["step_time"], flag_values)


# One model per kind of train step (pgd10 and pgd40 are pgd7 with more steps,
# n_fgsm is fgsm_rs with other settings; test_build_model_uses_the_recipes
# builds them); every attack.
SMOKE_MODELS = ("natural", "gradreg", "gradreg_fd", "gradreg_pf0.5",
                "fgsm_rs", "pgd7")


def test_main_runs_every_kind_of_model_and_every_attack(monkeypatch,
                                                        tmp_path):
    _run_main(monkeypatch, networks="tiny", models=",".join(SMOKE_MODELS[1:]),
              rounds=2, steps_per_epoch=1,
              batch_size=8, attack_steps=2, queries=3, warmup_steps=1,
              out=tmp_path)
    results = json.loads((tmp_path / "step_time.json").read_text())
    table = (tmp_path / "step_time.md").read_text()

    assert [row["model"] for row in results["training"]] == list(
        SMOKE_MODELS)
    assert set(SMOKE_MODELS) | {"pgd10", "pgd40", "n_fgsm"} == set(
        step_time.MODELS)
    natural = results["training"][0]["seconds_per_epoch"]["all"]
    gradreg = results["training"][1]["seconds_per_epoch"]["all"]
    for row in results["training"]:
        seconds = row["seconds_per_epoch"]["all"]
        assert len(seconds) == 2 and min(seconds) > 0
        assert row["seconds_per_epoch"]["median"] == pytest.approx(
            statistics.median(seconds))
        ratios = [t / n for t, n in zip(seconds, natural)]
        assert row["ratio_to_natural"]["all"] == pytest.approx(ratios)
        assert row["ratio_to_natural"]["median"] == pytest.approx(
            statistics.median(ratios))
        assert row["ratio_to_gradreg"]["all"] == pytest.approx(
            [t / g for t, g in zip(seconds, gradreg)])
        assert f"| tiny | {row['model']} | 1 |" in table
    assert results["training"][0]["cpu_ratio_to_natural"]["all"] == [1.0, 1.0]

    assert [row["attack"] for row in results["attacks"]] == list(
        step_time.ATTACKS)
    steps = {row["attack"]: row["steps"] for row in results["attacks"]}
    assert steps == {"fgsm": 1, "bim": 2, "cw": 2, "pgd": 2, "apgd": 2,
                     "apgd_t": 2, "fab_t": 2, "square": 1, "autoattack": 2}
    queries = {row["attack"]: row["queries"] for row in results["attacks"]}
    assert queries == {name: 3 if name in ("square", "autoattack") else None
                       for name in step_time.ATTACKS}
    assert "| tiny | untrained | square | 0.1 | 1 | 3 |" in table
    for row in results["attacks"]:
        assert row["examples_per_second"]["min"] > 0
    assert results["machine"]["cores"] >= 1
    assert results["settings"]["steps_per_epoch"] == {"tiny": 1}


def test_natural_is_always_timed_first(monkeypatch, tmp_path):
    _run_main(monkeypatch, networks="tiny", models="pgd7", rounds=1,
              steps_per_epoch=1, batch_size=4, attacks="", warmup_steps=0,
              jit_compile="false", out=tmp_path)
    results = json.loads((tmp_path / "step_time.json").read_text())
    assert [row["model"] for row in results["training"]] == [
        "natural", "pgd7"]
    assert "ratio_to_gradreg" not in results["training"][1]
    assert "| tiny | pgd7 | 1 |" in (tmp_path / "step_time.md").read_text()
    assert results["attacks"] == []
    assert results["settings"]["jit_compile"] is False


@pytest.mark.parametrize("flag_values, message", [
    ({"models": "natural,pgd3"}, "Unknown models"),
    ({"networks": "imagenet"}, "Unknown networks"),
    ({"attacks": "deepfool"}, "Unknown attacks"),
    ({"steps_per_epoch": "2,3"}, "one per network"),
    ({"steps_per_epoch": "many"}, "must be integers"),
    ({"rounds": 0}, "--rounds=0: 0 is not a positive integer"),
    ({"warmup_steps": -1}, "--warmup_steps=-1: -1 is not a non-negative integer"),
    ({"attack_model": "m.keras", "networks": "tiny,mnist"},
     "one --networks value"),
])
def test_bad_flags_raise_usage_errors(monkeypatch, flag_values, message):
    with pytest.raises((app.UsageError, flags.IllegalFlagValueError), match=message):
        _run_main(monkeypatch, **{"networks": "tiny", **flag_values})


def test_attacks_are_timed_on_examples_classified_correctly(tmp_path):
    """Untrained: random inputs labelled with the network's predictions.
    A saved model: the first test images it classifies correctly."""
    network = step_time.NETWORKS["mnist"]
    model, x, y = step_time.attack_batch(network, 6, seed=0)
    np.testing.assert_array_equal(np.argmax(model(x), -1), y)

    keras.utils.set_random_seed(0)
    saved = network.build()
    path = str(tmp_path / "m.keras")
    saved.save(path)
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (20, 28, 28))
    predicted = np.argmax(saved.predict(images[..., None] / 255.0, verbose=0),
                          -1)
    right = np.arange(20) % 2 == 0  # every other label is the prediction
    labels = np.where(right, predicted, (predicted + 1) % 10)
    write_mnist(tmp_path / "mnist", (images, labels), (images, labels))

    _, x, y = step_time.attack_batch(network, 3, 0, path, str(tmp_path / "mnist"))
    np.testing.assert_allclose(x[..., 0], images[[0, 2, 4]] / 255.0, rtol=1e-6)
    np.testing.assert_array_equal(y, labels[[0, 2, 4]])
    with pytest.raises(app.UsageError, match="only 10 of the first 20"):
        step_time.attack_batch(network, 11, 0, path, str(tmp_path / "mnist"))


@pytest.mark.parametrize("name, model_class, steps, step_size", [
    ("gradreg", keras_gradreg.GradRegModel, None, None),
    ("gradreg_fd", keras_gradreg.GradRegModel, None, None),
    ("gradreg_pf0.5", keras_gradreg.GradRegModel, None, None),
    ("fgsm_rs", keras_gradreg.AdversarialTrainingModel, 1, 0.125),
    ("n_fgsm", keras_gradreg.AdversarialTrainingModel, 1, 0.1),
    ("pgd7", keras_gradreg.AdversarialTrainingModel, 7, 0.25 / 7),
    ("pgd40", keras_gradreg.AdversarialTrainingModel, 40, 0.25 / 40),
])
def test_build_model_uses_the_recipes(name, model_class, steps, step_size):
    model = step_time.build_model(name, TINY)
    assert type(model) is model_class and model.compiled
    if steps is not None:  # Madry: 2.5 eps / k; Wong et al.: 1.25 eps
        assert (model.steps, model.eps) == (steps, 0.1)
        assert model.step_size == pytest.approx(step_size)
        assert model.project is (name != "n_fgsm")  # N-FGSM: no projection
    else:
        expected = "finite_difference" if name.endswith("fd") else (
            "double_backprop")
        assert model.method == expected
        assert model.penalty_fraction == (0.5 if "_pf" in name else 1.0)


def test_natural_is_the_plain_network():
    model = step_time.build_model("natural", TINY)
    assert type(model) is keras.Sequential


@pytest.mark.parametrize("jit_compile", [False, "auto"])
def test_xla_suffix_forces_jit_compile(jit_compile):
    model = step_time.build_model("gradreg_xla", TINY, jit_compile)
    assert type(model) is keras_gradreg.GradRegModel
    assert model.jit_compile is True
    assert step_time.build_model("gradreg", TINY, False).jit_compile is False


def test_summarize():
    assert keras_gradreg.evaluation.summarize([3.0, 1.0, 2.0, 10.0]) == {
        "median": 2.5, "min": 1.0, "max": 10.0, "all": [3.0, 1.0, 2.0, 10.0]}


def test_random_dataset_has_the_network_shapes():
    x, y = next(iter(step_time.random_dataset(TINY, batch_size=5, seed=0)))
    assert x.shape == (5, 6, 6, 1) and x.dtype == "float32"
    assert 0.0 <= float(x.numpy().min()) and float(x.numpy().max()) <= 1.0
    assert set(y.numpy()) <= {0, 1, 2, 3}


def test_minimal_yardstick_takes_the_same_step_as_gradreg():
    """The benchmark's overhead yardstick must compute the same update."""
    x = np.random.default_rng(0).uniform(
        0, TINY.clip_max, (8, *TINY.input_shape)).astype("float32")
    y = np.arange(8, dtype="int32") % TINY.num_classes
    weights = {}
    for name in ("gradreg", "gradreg_minimal", "natural"):
        keras.utils.set_random_seed(3)
        model = step_time.build_model(name, TINY)
        model.compile(keras.optimizers.SGD(10.0),  # plain steps, no Adam
                      keras.losses.SparseCategoricalCrossentropy(True))
        model.fit(x, y, batch_size=8, epochs=1, verbose=0, shuffle=False)
        weights[name] = [w.numpy() for w in model.trainable_weights]
    for ours, minimal in zip(weights["gradreg"], weights["gradreg_minimal"]):
        np.testing.assert_allclose(ours, minimal, rtol=1e-5, atol=1e-6)
    # ... and the penalty does move the weights at this scale.
    assert max(np.abs(a - b).max() for a, b in zip(
        weights["gradreg"], weights["natural"])) > 1e-4
