"""TensorBoard logs of the examples: the README's first command logs every
model (scalars, Fig. 3's histograms, the input-gradient probe, hparams), and
the c sweep logs each point with its c."""

import dataclasses
import json
import pathlib

import keras
import numpy as np
import pytest
import tensorflow_datasets as tfds
from absl import flags

import keras_gradreg
from keras_gradreg import datasets

from _examples import PAPER_MODELS  # tests/ is on sys.path
from _examples import _load_example
from _examples import _run
from _examples import _run_sweep
from _examples import experiment

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
