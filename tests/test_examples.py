"""Tests of the example experiments in examples/.

The experiment runs end to end through the plain ``_experiment.run(config)``
on tiny data (CIFAR-10 through mocked tfds, MNIST and Speech Commands through
the local files), and its results.json is checked for shape and against
accuracies recomputed here from the saved models. Each script runs once as a
user runs it, in a subprocess (``--helpfull``), so that its flag definitions
are checked without sharing absl's global FLAGS. The helpers of
``_experiment.py`` and ``sweep_c.py`` are checked on hand-made numbers.
"""

import dataclasses
import json
import os
import pathlib
import subprocess
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf
import tensorflow_datasets as tfds
from absl import flags

import keras_gradreg
from keras_gradreg import datasets
from keras_gradreg import paper

EXAMPLES = pathlib.Path(__file__).resolve().parents[1] / "examples"
sys.path.insert(0, str(EXAMPLES))  # the scripts' own modules (_experiment)
import _experiment as experiment  # noqa: E402
from _scripts import load_script  # noqa: E402  (tests/ is on sys.path)

FLAGS = flags.FLAGS
PAPER_MODELS = ("natural", "xent_reg", "logit_reg")
PAPER_ATTACKS = ("fgsm", "bim", "cw")
SCRIPTS = ("mnist", "cifar10", "speech_commands")


def _load_example(name: str):
    return load_script(EXAMPLES / f"{name}.py")


sweep_c = _load_example("sweep_c")


def _tiny_network(input_shape, num_classes, scale=1.0):
    """A network small enough for end-to-end runs in seconds."""
    def build():
        return keras.Sequential([
            keras.Input(input_shape),
            keras.layers.Rescaling(scale),
            keras.layers.Conv2D(4, 3, strides=2, activation="relu", name="conv1"),
            keras.layers.Flatten(),
            keras.layers.Dense(num_classes, name="fc2"),
        ])
    return build


TINY = {
    "mnist": _tiny_network((28, 28, 1), 10),
    "cifar10": _tiny_network((32, 32, 3), 10, scale=1 / 255),
    "speech_commands": _tiny_network((49, 40, 1), 12),
}


def _run(dataset: str, **values) -> keras_gradreg.Results:
    """Runs ``_experiment.run`` with a tiny network and the given Config
    values.

    The paper's networks are checked in test_models.py and below
    (test_examples_use_the_paper_networks); here they would cost minutes.
    """
    tiny = dataclasses.replace(paper.SETTINGS[dataset],
                               build_model=TINY[dataset])
    config = experiment.Config(dataset, **values)
    return experiment.run(config, tiny)


def _run_sweep(**values) -> dict:
    """Runs ``sweep_c.run`` with a tiny network and the given values."""
    tiny = dataclasses.replace(paper.SETTINGS[values["dataset"]],
                               build_model=TINY[values["dataset"]])
    return sweep_c.run(sweep_c.SweepConfig(**values), tiny)


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


# Helpers -------------------------------------------------------------------


def test_extra_attacks_use_the_paper_clip_and_budget():
    settings = paper.SETTINGS["cifar10"]
    specs = experiment.extra_attacks(settings, ["pgd", "apgd"], 10, 2, 0)
    assert sorted(specs) == ["apgd_ce", "apgd_dlr", "pgd"]
    assert specs["apgd_dlr"] == ("apgd", {
        "steps": 10, "restarts": 2, "seed": 0, "clip_min": 0.0,
        "clip_max": 255.0, "loss": "dlr"})
    assert experiment.extra_attacks(settings, [], 10, 1, 0) == {}
    with pytest.raises(ValueError, match="Unknown extra attacks"):
        experiment.extra_attacks(settings, ["deepfool"], 10, 1, 0)


def test_paper_attacks_match_section_4():
    mnist_cw = experiment.paper_attacks(paper.SETTINGS["mnist"])["cw"]
    assert mnist_cw == ("cw", {"step_size": 0.05, "steps": 10, "clip_min": 0.0,
                               "clip_max": 1.0, "confidence": 50.0})
    speech_bim = experiment.paper_attacks(
        paper.SETTINGS["speech_commands"])["bim"]
    assert speech_bim == ("bim", {"step_size": 0.002, "steps": 8,
                                  "clip_min": None, "clip_max": None})


def test_adversarial_training_baselines_follow_their_recipes():
    settings = paper.SETTINGS["mnist"]
    fgsm_rs, pgd, nfgsm = experiment.adversarial_training_models(
        settings, ["fgsm_rs", "pgd", "nfgsm"], train_eps=0.3, pgd_steps=10)
    assert (fgsm_rs.name, pgd.name, nfgsm.name) == (
        "fgsm_rs_at", "pgd_at", "nfgsm_at")
    assert fgsm_rs.info["steps"] == 1
    assert fgsm_rs.info["step_size"] == pytest.approx(0.375)  # 1.25 * 0.3
    assert pgd.info["step_size"] == pytest.approx(0.075)  # 2.5 * 0.3 / 10
    assert nfgsm.info["start_radius"] == pytest.approx(0.6)  # 2 * 0.3
    assert nfgsm.info["project"] is False
    for spec in (fgsm_rs, pgd, nfgsm):  # the record is what was built
        model = spec.build()
        assert isinstance(model, keras_gradreg.AdversarialTrainingModel)
        config = model.get_config()
        for key, value in spec.info.items():
            if key not in ("kind", "recipe"):
                assert config[key] == pytest.approx(value), (spec.name, key)
        keras.backend.clear_session(free_memory=False)
    with pytest.raises(ValueError, match="Unknown baseline"):
        experiment.adversarial_training_models(settings, ["trades"], 0.3, 10)
    with pytest.raises(ValueError, match="pgd_steps"):
        experiment.adversarial_training_models(settings, ["pgd"], 0.3, 0)


def test_paper_models_are_configured_as_named():
    natural, xent, logit = experiment.paper_models(
        paper.SETTINGS["mnist"], c_xent=2.0, c_logit=0.5, norm_logit="l1")
    xent_model, logit_model = xent.build(), logit.build()
    assert xent_model.c == 2.0 and logit_model.c == 0.5
    assert xent_model.get_config()["regularizer"] == "cross_entropy"
    assert logit_model.get_config()["norm"] == "l1"
    assert not isinstance(natural.build(), keras_gradreg.GradRegModel)


def test_split_name_and_parse_list():
    assert experiment.split_name("train", None) == "train"
    assert experiment.split_name("test", 50) == "test[:50]"
    with pytest.raises(ValueError, match="positive"):
        experiment.split_name("test", 0)
    assert experiment.parse_list(" pgd, ,apgd ") == ["pgd", "apgd"]
    assert experiment.parse_list("") == []


def _sweep_entry(c, clean, fgsm, bim):
    entry = {"c": c, "clean": clean, "fgsm": {"0.1": fgsm[0], "0.2": fgsm[1]},
             "bim": {"0.1": bim[0], "0.2": bim[1]}}
    entry["score"] = sweep_c.score(entry)
    return entry


def test_sweep_scores_and_choice():
    weak = _sweep_entry(0.1, 0.99, (0.5, 0.2), (0.3, 0.0))
    strong = _sweep_entry(1.0, 0.97, (0.8, 0.6), (0.7, 0.5))
    too_costly = _sweep_entry(10.0, 0.90, (0.9, 0.9), (0.9, 0.9))
    assert weak["score"] == pytest.approx((0.5 + 0.2 + 0.3 + 0.0) / 4)
    entries = [weak, strong, too_costly]
    assert sweep_c.choose(entries, natural_clean=0.99, max_clean_drop=0.03) == 1.0
    assert sweep_c.choose(entries, natural_clean=0.99, max_clean_drop=0.1) == 10.0
    assert sweep_c.choose(entries[1:], 0.99, 0.01) is None


def test_sweep_grid():
    assert sweep_c.grid(None, 0.03) == pytest.approx([0.003, 0.009, 0.03, 0.09, 0.3])
    assert sweep_c.grid(["0", "2.5"], 1.0) == [0.0, 2.5]
    with pytest.raises(ValueError, match=">= 0"):
        sweep_c.grid(["-1"], 1.0)
    with pytest.raises(ValueError, match="numbers"):
        sweep_c.grid(["big"], 1.0)


@pytest.mark.large
def test_sweep_holds_out_validation_from_training(tmp_path, mnist_dir,
                                                  monkeypatch):
    _run_sweep(dataset="mnist", data_dir=str(mnist_dir),
               out=str(tmp_path), train_size=100,
               val_size=20, epochs=1, c_xent_grid=["1"], c_logit_grid=["0.03"])
    sweep = json.loads((tmp_path / "sweep.json").read_text())
    assert [e["c"] for e in sweep["logit_reg"]] == [0.03]
    assert set(sweep["chosen"]) == {"xent_reg", "logit_reg"}
    assert sweep["settings"]["val_examples"] == 20
    assert sweep["settings"]["train_split"] == "train[:-20]"
    assert (tmp_path / "sweep.md").read_text().startswith("# c sweep on mnist")


# TensorBoard logging of the README's first command ---------------------------

README = pathlib.Path(__file__).resolve().parents[1] / "README.md"


def _readme_first_command_config() -> experiment.Config:
    """The Config of the README's ``python examples/mnist.py ...`` command:
    its flags parsed by mnist.py's own definitions (in a FlagValues of their
    own, not the global FLAGS), each flag onto the Config field of its name."""
    import shlex
    line = next(line for line in README.read_text().splitlines()
                if "python examples/mnist.py" in line)
    words = shlex.split(line.split("python examples/mnist.py", 1)[1])
    flag_values = flags.FlagValues()
    _load_example("mnist").define_flags(flag_values)
    flag_values(["mnist.py"] + words)
    given = {word[2:].split("=")[0] for word in words if word.startswith("--")}
    assert given <= {f.name for f in dataclasses.fields(experiment.Config)}
    return experiment.config_from_flags("mnist", flag_values)


def _events(run_dir):
    event_accumulator = pytest.importorskip(
        "tensorboard.backend.event_processing.event_accumulator")
    guidance = {kind: 0 for kind in event_accumulator.DEFAULT_SIZE_GUIDANCE}
    return event_accumulator.EventAccumulator(
        str(run_dir), size_guidance=guidance).Reload()


def _tensor_series(accumulator, tag):
    from tensorboard.util import tensor_util
    events = accumulator.Tensors(tag)
    return ([e.step for e in events],
            [tensor_util.make_ndarray(e.tensor_proto) for e in events])


def _margin_gradient_l2(model, x, y):
    """Mean L2 norm of d(max_{i!=y} z_i - z_y)/dx, by a hand-written tape."""
    import tensorflow as tf
    x = tf.convert_to_tensor(x)
    with tf.GradientTape() as tape:
        tape.watch(x)
        logits = model(x, training=False)
        is_true = tf.one_hot(y, logits.shape[-1]) > 0
        true_logit = tf.reduce_sum(tf.where(is_true, logits, 0.0), axis=-1)
        wrong = tf.reduce_max(tf.where(is_true, -np.inf, logits), axis=-1)
        margin = tf.reduce_sum(wrong - true_logit)
    gradients = tape.gradient(margin, x).numpy().reshape(len(y), -1)
    return float(np.mean(np.linalg.norm(gradients, axis=1)))


def test_readme_first_command_logs_every_model_to_tensorboard(
        tmp_path, monkeypatch, capsys):
    pytest.importorskip("tensorboard")
    from tensorboard.plugins.hparams import metadata as hparams_metadata
    config = _readme_first_command_config()
    assert config.tensorboard  # logging is on by default
    assert config.data_dir  # replaced by mocked tfds data below
    config = dataclasses.replace(config, data_dir=None, out=str(tmp_path),
                                 train_size=20, test_size=10)
    epochs = config.epochs
    with tfds.testing.mock_data(num_examples=20):
        _run(**dataclasses.asdict(config))
        x_probe, y_probe = datasets.to_arrays(
            datasets.load("mnist", "train[:20]"))
    assert f"tensorboard --logdir {tmp_path / 'logs'}" in capsys.readouterr().out
    results = keras_gradreg.Results.load(str(tmp_path))
    logs = tmp_path / "logs"
    baselines = tuple(f"{name}_at" for name in config.baselines)
    trained = PAPER_MODELS + baselines
    assert sorted(p.name for p in logs.iterdir()) == sorted(trained)
    for name in trained:
        train = _events(logs / name / "train")
        scalars = set(train.Tags()["tensors"])
        assert {"epoch_loss", "epoch_accuracy", "input_gradient/l1",
                "input_gradient/l2", "input_gradient/linf",
                "input_gradient/grad_loss"} <= scalars
        # Fig. 3's histograms, one per epoch, of the saved model's kernels.
        model = keras.models.load_model(tmp_path / f"{name}.keras")
        network = getattr(model, "base", model)
        for layer in ("conv1", "fc2"):
            steps, buckets = _tensor_series(train, f"weights/{layer}/kernel")
            assert steps == list(range(epochs))
            kernel = network.get_layer(layer).kernel.numpy()
            assert buckets[-1][:, 2].sum() == kernel.size
            assert buckets[-1][0, 0] == pytest.approx(kernel.min(), rel=1e-5)
        # The input-gradient probe: the first training examples, logit margin.
        steps, l2 = _tensor_series(train, "input_gradient/l2")
        assert steps == list(range(epochs))
        assert float(l2[-1]) == pytest.approx(
            _margin_gradient_l2(network, x_probe, y_probe), rel=1e-4)
        validation = _events(logs / name / "validation")
        for eps in ("0.1", "0.2", "0.3"):
            steps, _ = _tensor_series(validation,
                                      f"robust_accuracy/fgsm_eps{eps}")
            assert steps == list(range(epochs))
        root = _events(logs / name)
        steps, values = _tensor_series(root, "robust_accuracy_vs_eps/fgsm")
        assert steps == [100, 200, 300]
        np.testing.assert_allclose(
            np.ravel(values), [results.accuracy(name, "fgsm", e)
                               for e in ("0.1", "0.2", "0.3")], rtol=1e-6)
        _, clean = _tensor_series(root, "final/clean_accuracy")
        assert float(clean[0]) == pytest.approx(results.accuracy(name))
        content = root.PluginTagToContent("hparams")
        start = hparams_metadata.parse_session_start_info_plugin_data(
            content[hparams_metadata.SESSION_START_INFO_TAG])
        hparams = {k: v.WhichOneof("kind") and getattr(v, v.WhichOneof("kind"))
                   for k, v in start.hparams.items()}
        assert hparams["model"] == name
        assert hparams["epochs"] == epochs
        expected_c = results.section("c").get(name, 0.0)
        assert hparams["c"] == pytest.approx(expected_c)
        experiment = hparams_metadata.parse_experiment_plugin_data(
            content[hparams_metadata.EXPERIMENT_TAG])
        metric_tags = {m.name.tag for m in experiment.metric_infos}
        assert {"final/clean_accuracy", "final/worst_case/eps_0.3",
                "final/train_seconds"} <= metric_tags
    for figure in ("fig2_training_curves.png", "fig3_weight_histograms.png"):
        assert (tmp_path / figure).stat().st_size > 10_000


def test_sweep_logs_each_point_with_its_c(tmp_path, monkeypatch):
    pytest.importorskip("tensorboard")
    from tensorboard.plugins.hparams import metadata as hparams_metadata
    with tfds.testing.mock_data(num_examples=30):
        _run_sweep(dataset="mnist", out=str(tmp_path),
                   train_size=20, val_size=10, epochs=1, c_xent_grid=[1, 3],
                   c_logit_grid=[0.03], eval_batch_size=10)
    sweep = json.loads((tmp_path / "sweep.json").read_text())
    logs = tmp_path / "logs"
    assert sorted(p.name for p in logs.iterdir()) == [
        "logit_reg_c0.03", "natural", "xent_reg_c1", "xent_reg_c3"]
    for name, entry in [("xent_reg_c3", sweep["xent_reg"][1]),
                        ("natural", sweep["natural"])]:
        root = _events(logs / name)
        start = hparams_metadata.parse_session_start_info_plugin_data(
            root.PluginTagToContent("hparams")[
                hparams_metadata.SESSION_START_INFO_TAG])
        assert start.hparams["c"].number_value == (entry["c"] or 0.0)
        _, score = _tensor_series(root, "final/score")
        assert float(score[0]) == pytest.approx(entry["score"])
        assert "weights/conv1/kernel" in _events(
            logs / name / "train").Tags()["tensors"]


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


# The scripts as a user runs them ---------------------------------------------


@pytest.mark.parametrize("script", SCRIPTS + ("sweep_c",))
def test_script_defines_its_flags_when_run(script):
    """Each script defines its own flags: ``python examples/mnist.py
    --helpfull`` lists them in a process of its own, as a user runs it (one
    subprocess: each pays TensorFlow's import); the other scripts define
    theirs into a fresh ``FlagValues`` here."""
    if script == "mnist":
        env = dict(os.environ, PYTHONPATH=str(EXAMPLES.parent))
        done = subprocess.run(
            [sys.executable, str(EXAMPLES / f"{script}.py"), "--helpfull"],
            capture_output=True, text=True, env=env, timeout=300)
        assert done.returncode == 1, done.stderr  # absl's exit after help
        assert "Traceback" not in done.stderr
        listed = done.stdout
    else:
        flag_values = flags.FlagValues()
        _load_example(script).define_flags(flag_values)
        listed = "".join(
            f"--{'[no]' if flag.boolean else ''}{name}:\n"
            for name, flag in flag_values._flags().items())
    names = ["data_dir", "out", "epochs", "batch_size", "learning_rate",
             "train_size", "seed", "eval_batch_size", "norm_logit",
             "[no]tensorboard", "[no]resume"]
    names += {"mnist": ["test_size", "c_xent", "c_logit", "extra_attacks",
                        "extra_steps", "extra_restarts", "baselines",
                        "train_eps", "pgd_steps"],
              "sweep_c": ["dataset", "c_xent_grid", "c_logit_grid",
                          "val_size", "max_clean_drop"]}.get(
                  script, ["test_size", "c_xent", "c_logit", "extra_attacks"])
    for name in names:
        assert f"--{name}:" in listed, name
    if script in ("cifar10", "speech_commands"):
        assert "--baselines:" not in listed


def test_importing_a_script_defines_no_flag():
    before = set(FLAGS)
    for script in SCRIPTS + ("sweep_c",):
        _load_example(script)
    assert set(FLAGS) == before


def test_config_fields_are_the_flags():
    flag_values = flags.FlagValues()
    _load_example("mnist").define_flags(flag_values)
    flag_values(["mnist.py", "--baselines=pgd,nfgsm", "--extra_attacks=",
                 "--notensorboard", "--c_logit=0.5"])
    config = experiment.config_from_flags("mnist", flag_values)
    assert config == experiment.Config(
        "mnist", baselines=("pgd", "nfgsm"), extra_attacks=(),
        tensorboard=False, c_logit=0.5)
    fields = {f.name for f in dataclasses.fields(experiment.Config)}
    assert set(flag_values) & fields == fields - {"dataset"}
    assert config.record()["baselines"] == "pgd,nfgsm"


def test_sweep_config_fields_are_the_flags():
    flag_values = flags.FlagValues()
    sweep_c.define_flags(flag_values)
    flag_values(["sweep_c.py", "--dataset=cifar10", "--c_xent_grid=1,3",
                 "--val_size=20", "--notensorboard"])
    assert sweep_c.config_from_flags(flag_values) == sweep_c.SweepConfig(
        "cifar10", val_size=20, c_xent_grid=["1", "3"], tensorboard=False)
