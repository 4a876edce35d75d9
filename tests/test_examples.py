"""Tests of the example experiments in examples/: end-to-end runs and resume.

The experiment runs end to end through the plain ``_experiment.run(config)``
on tiny data (CIFAR-10 through mocked tfds, MNIST and Speech Commands through
the local files), and its results.json is checked for shape and against
accuracies recomputed here from the saved models. The scripts' flags, their
TensorBoard logs and the helpers of ``_experiment.py`` and ``sweep_c.py``
have test_examples_*.py of their own.
"""

import json
import pathlib

import keras
import numpy as np
import pytest
import tensorflow as tf
import tensorflow_datasets as tfds

import keras_gradreg
from keras_gradreg import datasets
from keras_gradreg import paper

from _examples import PAPER_MODELS  # tests/ is on sys.path
from _examples import _run
from _examples import experiment

PAPER_ATTACKS = ("fgsm", "bim", "cw")


def _check_results(out: pathlib.Path, eps_keys, models=PAPER_MODELS,
                   attacks=PAPER_ATTACKS) -> keras_gradreg.Results:
    """Checks the files and the results the issue asks for; returns them."""
    results = keras_gradreg.Results.load(str(out))
    assert json.loads((out / "results.json").read_text()) == results.to_dict()
    assert results.model_names[:len(models)] == list(models)
    assert set(attacks) <= set(results.attack_names)
    assert [f"{e:g}" for e in results.eps_values] == eps_keys
    wall = results.section("wall_time_s")
    for model in models:
        assert 0.0 <= results.accuracy(model) <= 1.0
        for attack in attacks:
            for eps in eps_keys:
                accuracy = results.accuracy(model, attack, eps)
                assert accuracy == results.correct(model, attack, eps).mean()
                assert 0.0 <= accuracy <= 1.0
        assert (out / f"{model}.keras").exists()
        assert wall["training"][model] > 0
        for source in models:
            for attack in attacks:
                assert 0.0 <= results.transfer(source, model, attack) <= 1.0
    assert results.transfer_eps == float(eps_keys[-1])
    assert wall["evaluation"] > 0
    assert results.section("flags")["epochs"] == 1
    for name in ("results.md", "results.csv", "correct.npz",
                 "accuracy_vs_eps.png", "training_curves.png"):
        assert (out / name).stat().st_size > 0
    markdown = (out / "results.md").read_text()
    assert markdown == results.to_markdown()  # written once, by save
    clean = f"{100 * results.accuracy('natural'):.1f}"
    assert "| Natural Model | " + clean in markdown
    assert "## Wall time" in markdown
    return results


def _accuracy(model, x, y, attack=None, **kwargs) -> float:
    if attack is not None:
        x = attack(model, x, y, **kwargs)
    predictions = np.argmax(keras.ops.convert_to_numpy(model(x)), axis=-1)
    return float(np.mean(predictions == y))


# End-to-end runs ---------------------------------------------------------------


@pytest.mark.large
def test_mnist_example_on_idx_files(tmp_path, mnist_dir, monkeypatch):
    _run("mnist", data_dir=mnist_dir, out=str(tmp_path),
         train_size=300, test_size=30, epochs=1, extra_attacks=("pgd",), extra_steps=2,
         c_logit=0.05, norm_logit="l1")
    results = _check_results(tmp_path, ["0.1", "0.2", "0.3"],
                             attacks=PAPER_ATTACKS + ("pgd",))
    default_c_xent = paper.SETTINGS["mnist"].c_xent  # --c_xent not given
    assert results.section("c") == {"xent_reg": default_c_xent,
                                    "logit_reg": 0.05}
    assert results.section("training")["logit_reg"]["norm"] == "l1"
    assert len(results.section("training")["natural"]["history"]["loss"]) == 1
    x, y = datasets.to_arrays(datasets.load("mnist", "test[:30]", mnist_dir))
    logit_reg = keras.models.load_model(tmp_path / "logit_reg.keras")
    # The paper's BIM: 10 steps of 0.05 (not the library's 2.5 eps / steps).
    assert results.accuracy("logit_reg", "bim", 0.1) == pytest.approx(_accuracy(
        logit_reg, x, y, keras_gradreg.attacks.bim, eps=0.1, step_size=0.05,
        steps=10))


@pytest.mark.large
def test_speech_example_perturbs_unclipped_mfcc(tmp_path, speech_dir,
                                                 monkeypatch):
    _run("speech_commands", data_dir=speech_dir, out=str(tmp_path),
         train_size=100, test_size=24, epochs=1, extra_attacks=())
    results = _check_results(tmp_path, ["0.25", "0.5", "0.75"])
    assert results.settings["attacks"]["fgsm"]["kwargs"] == {
        "clip_min": None, "clip_max": None}
    assert results.settings["num_classes"] == 12
    x, y = datasets.to_arrays(datasets.load("speech_commands", "test[:24]",
                                            speech_dir))
    natural = keras.models.load_model(tmp_path / "natural.keras")
    # No --learning_rate: the speech default, not MNIST's.
    assert float(natural.optimizer.learning_rate) == pytest.approx(
        paper.SETTINGS["speech_commands"].learning_rate)
    assert paper.SETTINGS["speech_commands"].learning_rate != 1e-3
    assert results.accuracy("natural", "fgsm", 0.75) == pytest.approx(_accuracy(
        natural, x, y, keras_gradreg.attacks.fgsm, eps=0.75, clip_min=None,
        clip_max=None))


def test_examples_use_the_paper_networks():
    assert paper.SETTINGS["mnist"].build_model is keras_gradreg.models.mnist_cnn
    assert paper.SETTINGS["cifar10"].build_model is keras_gradreg.models.cifar10_cnn
    assert (paper.SETTINGS["speech_commands"].build_model
            is keras_gradreg.models.speech_cnn)
    assert experiment.SETTINGS is paper.SETTINGS  # no private copy
    assert [s.eps_values for s in paper.SETTINGS.values()] == [
        (0.1, 0.2, 0.3), (3.0, 6.0, 9.0), (0.25, 0.5, 0.75)]


def test_resume_trains_only_the_missing_models(tmp_path, monkeypatch, capsys):
    """An interrupted run goes on with --resume: saved models are reused
    (same weights, same training record), missing ones are trained."""
    common = dict(out=str(tmp_path), train_size=20, test_size=10, epochs=1,
                  extra_attacks=(), eval_batch_size=10, tensorboard=False,
                  learning_rate=2e-3)
    with tfds.testing.mock_data(num_examples=20):
        _run("cifar10", **common)
        first = keras_gradreg.Results.load(str(tmp_path))
        x, y = datasets.to_arrays(datasets.load("cifar10", "test[:10]"))
    # The first run: CIFAR-10 through tfds, with the paper's attack settings.
    _check_results(tmp_path, ["3", "6", "9"])
    assert first.section("experiment")["resolved"]["learning_rate"] == 2e-3
    assert first.settings["attacks"]["bim"]["kwargs"] == {
        "step_size": 1.0, "steps": 10, "clip_min": 0.0, "clip_max": 255.0}
    natural = keras.models.load_model(tmp_path / "natural.keras")
    assert first.accuracy("natural") == pytest.approx(_accuracy(natural, x, y))
    assert first.accuracy("natural", "fgsm", 9) == pytest.approx(_accuracy(
        natural, x, y, keras_gradreg.attacks.fgsm, eps=9.0, clip_min=0.0,
        clip_max=255.0))
    with tfds.testing.mock_data(num_examples=20):
        record = json.loads((tmp_path / "training" / "natural.json").read_text())
        assert record["cpu_time_s"] > 0
        assert len(record["epoch_seconds"]) == len(record["epoch_cpu_seconds"]) \
            == record["epochs"] == len(record["history"]["loss"])
        # As if interrupted while training Logit-reg.
        (tmp_path / "logit_reg.keras").unlink()
        (tmp_path / "training" / "logit_reg.json").unlink()
        # --notensorboard: no logs, no figures drawn from them.
        assert not (tmp_path / "logs").exists()
        assert not (tmp_path / "fig2_training_curves.png").exists()
        capsys.readouterr()
        # Resumed with TensorBoard on: the reused models get their final
        # robustness logged into their run folders too.
        with pytest.warns(UserWarning, match="No training logs of natural, "
                          r"xent_reg \(reused"):
            _run("cifar10", resume=True, **dict(common, tensorboard=True))
    printed = capsys.readouterr().out
    assert "Reusing" in printed and "natural.keras" in printed
    assert "== Training logit_reg" in printed
    assert "== Training natural" not in printed
    again = keras_gradreg.Results.load(str(tmp_path))
    training = again.section("training")
    assert training["natural"]["resumed"] is True
    assert training["natural"]["wall_time_s"] == record["wall_time_s"]
    assert "resumed" not in training["logit_reg"]
    # Reused models are the saved ones: their clean accuracy is unchanged.
    for name in ("natural", "xent_reg"):
        assert again.accuracy(name) == first.accuracy(name)
    for name in ("natural", "xent_reg", "logit_reg"):
        assert any(path.name.startswith("events.out.tfevents")
                   for path in (tmp_path / "logs" / name).rglob("*")), name
    # The figures have the one model with training logs.
    assert list(json.loads((tmp_path / "curves.json").read_text())) == [
        "logit_reg"]


def test_interrupted_fit_goes_on_from_its_last_epoch(tmp_path, capsys):
    """A model interrupted in training keeps its finished epochs: the next
    fit with the same backup folder trains only the rest, and its record
    holds the whole history and both processes' wall time."""
    x = np.random.default_rng(0).normal(size=(16, 4)).astype("float32")
    y = (x[:, 0] > 0).astype("int32")

    def build():
        return keras_gradreg.GradRegModel(keras.Sequential(
            [keras.Input((4,)), keras.layers.Dense(2)]), c=0.1)

    spec = experiment.ModelSpec("tiny", build, {})
    backup = str(tmp_path / "backup" / "tiny")

    epochs_begun = []

    def interrupted():  # two epochs of 2 batches, then the "crash"
        epochs_begun.append(1)
        if len(epochs_begun) == 3:
            raise RuntimeError("simulated interruption")
        yield x[:8], y[:8]
        yield x[8:], y[8:]

    signature = (tf.TensorSpec((None, 4), tf.float32),
                 tf.TensorSpec((None,), tf.int32))
    crashing = tf.data.Dataset.from_generator(interrupted,
                                              output_signature=signature)
    with pytest.raises(Exception, match="simulated interruption"):
        experiment.train_model(spec, crashing, 3, 1e-2, backup_dir=backup)
    progress = json.loads((tmp_path / "backup" / "tiny" /
                           "progress.json").read_text())
    assert progress["epochs_done"] == 2 and len(progress["history"]["loss"]) == 2
    capsys.readouterr()

    train = tf.data.Dataset.from_tensor_slices((x, y)).batch(8)
    _, record = experiment.train_model(spec, train, 3, 1e-2,
                                       backup_dir=backup)
    seconds, history = record.fit_seconds()["wall"], record.history
    printed = capsys.readouterr().out
    assert "Going on from epoch 2" in printed
    assert "Epoch 3/3" in printed and "Epoch 1/3" not in printed
    assert history["loss"][:2] == progress["history"]["loss"]
    assert len(history["loss"]) == 3 and seconds > progress["fit"]["wall"]
