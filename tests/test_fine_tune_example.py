"""End-to-end tests of examples/fine_tune.py on mocked MNIST and a tiny net.

The tests call the plain ``fine_tune.run(config)`` and parse its flags into
a ``FlagValues`` of their own. The paper's CNN would cost
minutes here; ``models.mnist_cnn`` is replaced by a tiny network, and the
data come from ``tfds.testing.mock_data``.
"""

import pathlib

import keras
import numpy as np
import pytest
import tensorflow_datasets as tfds
from absl import flags

import keras_gradreg
from keras_gradreg import datasets

from _scripts import load_script  # noqa: E402  (tests/ is on sys.path)

EXAMPLES = pathlib.Path(__file__).resolve().parents[1] / "examples"
SMALL = dict(train_size=20, test_size=10, epochs_natural=1, batch_size=10,
             learning_rate=1e-3, pgd_steps=2, pgd_restarts=1, seed=0, c=0.1)


fine_tune = load_script(EXAMPLES / "fine_tune.py")


def _tiny_cnn():
    return keras.Sequential([
        keras.Input((28, 28, 1)),
        keras.layers.Conv2D(4, 3, strides=2, activation="relu"),
        keras.layers.Flatten(),
        keras.layers.Dense(10),
    ])


def _run(monkeypatch, **values) -> keras_gradreg.Results:
    """Runs the example on 20 mocked MNIST images; returns the results it
    wrote, read back."""
    monkeypatch.setattr(fine_tune.models, "mnist_cnn", _tiny_cnn)
    values = {**SMALL, "scratch_epochs": 1, **values}
    with tfds.testing.mock_data(num_examples=20):
        fine_tune.run(fine_tune.FineTuneConfig(**values))
    return keras_gradreg.Results.load(str(values["out"]))


def _clean_accuracy(network: keras.Model) -> float:
    with tfds.testing.mock_data(num_examples=20):
        x, y = datasets.to_arrays(datasets.load("mnist", "test[:10]"))
    predictions = np.argmax(keras.ops.convert_to_numpy(network(x)), axis=-1)
    return float(np.mean(predictions == y))


def test_trains_snapshots_and_times_every_model(tmp_path, monkeypatch):
    results = _run(monkeypatch, out=str(tmp_path), finetune_epochs=(2, 1))

    names = ["natural", "finetune_1ep", "finetune_2ep", "logit_reg_scratch"]
    assert results.model_names == names
    assert list(results.section("training")) == names
    assert results.attack_names == ["fgsm", "bim", "cw", "pgd1r"]
    assert results.eps_values == [0.1, 0.2, 0.3]
    assert results.settings["attacks"]["bim"]["kwargs"]["step_size"] == 0.05
    assert results.settings["attacks"]["pgd1r"]["registered"] == "pgd"
    training = results.section("training")
    natural_s = training["natural"]["wall_time_s"]
    one, two = training["finetune_1ep"], training["finetune_2ep"]
    assert 0 < one["finetune_wall_time_s"] < two["finetune_wall_time_s"]
    assert two["wall_time_s"] == pytest.approx(
        natural_s + two["finetune_wall_time_s"])
    assert (one["epochs"], two["epochs"]) == (2, 3)
    assert results.section("flags")["c"] == 0.1
    markdown = (tmp_path / "results.md").read_text()
    assert markdown == results.to_markdown()  # written once, by save
    assert "## Training" in markdown and "| finetune_2ep | 3 |" in markdown


def test_starts_from_saved_networks(tmp_path, monkeypatch, capsys):
    keras.utils.set_random_seed(1)
    natural = _tiny_cnn()
    natural.save(tmp_path / "natural.keras")
    scratch = keras_gradreg.GradRegModel(_tiny_cnn(), c=0.1)
    scratch.compile("adam", keras.losses.SparseCategoricalCrossentropy(True))
    scratch.fit(np.zeros((4, 28, 28, 1), "float32"), np.zeros(4, "int32"),
                verbose=0)
    scratch.save(tmp_path / "scratch.keras")

    out = tmp_path / "out"
    results = _run(monkeypatch, out=str(out), finetune_epochs=(1,),
                   natural_model=str(tmp_path / "natural.keras"),
                   scratch_model=str(tmp_path / "scratch.keras"))

    training = results.section("training")
    assert training["natural"]["loaded_from"] == str(tmp_path / "natural.keras")
    assert training["natural"]["wall_time_s"] is None
    assert training["finetune_1ep"]["wall_time_s"] is None
    assert training["finetune_1ep"]["finetune_wall_time_s"] > 0
    assert training["logit_reg_scratch"]["loaded_from"].endswith("scratch.keras")
    assert "trained with c=" not in capsys.readouterr().out  # same c (float32)
    # The evaluated natural and scratch networks are the saved ones.
    assert results.accuracy("natural") == pytest.approx(
        _clean_accuracy(natural))
    assert results.accuracy("logit_reg_scratch") == pytest.approx(
        _clean_accuracy(scratch.base))


def test_missing_saved_model_fails_before_training(tmp_path, monkeypatch):
    calls = []
    monkeypatch.setattr(fine_tune, "train_models",
                        lambda *args: calls.append(args))
    with pytest.raises(fine_tune.ConfigError, match="No saved model"):
        _run(monkeypatch, out=str(tmp_path), finetune_epochs=(1,),
             scratch_model=str(tmp_path / "missing.keras"))
    assert not calls


def test_flags_map_onto_the_config():
    flag_values = flags.FlagValues()
    fine_tune.define_flags(flag_values)
    flag_values(["fine_tune.py", "--out=/tmp/ft", "--finetune_epochs=3,1",
                 "--c=0.3"])
    assert fine_tune.config_from_flags(flag_values) == fine_tune.FineTuneConfig(
        "/tmp/ft", finetune_epochs=(3, 1), c=0.3)
    assert "finetune_epochs" not in flags.FLAGS  # none defined globally


def test_script_rejects_bad_finetune_epochs_before_training(tmp_path):
    """A bad flag fails before training and writes nothing (``main`` turns
    the ConfigError into absl's usage error: message, status 1)."""
    flag_values = flags.FlagValues()
    fine_tune.define_flags(flag_values)
    flag_values(["fine_tune.py", "--finetune_epochs=0",
                 f"--out={tmp_path / 'out'}"])
    with pytest.raises(fine_tune.ConfigError,
                       match="--finetune_epochs must be integers >= 1."):
        fine_tune.run(fine_tune.config_from_flags(flag_values))
    assert not (tmp_path / "out").exists()
