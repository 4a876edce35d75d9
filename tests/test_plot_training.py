"""Tests for examples/plot_training.py on event files of a short real run."""

import json
import logging
import pathlib
import sys

import keras
import numpy as np
import pytest
from absl import flags

from keras_gradreg import GradRegModel
from keras_gradreg.callbacks import GradientNormLogger
from keras_gradreg.callbacks import WeightHistogramLogger

pytest.importorskip("tensorboard")
pytest.importorskip("matplotlib")
import matplotlib.image  # noqa: E402

from _scripts import load_script  # noqa: E402  (tests/ is on sys.path)

EXAMPLE = pathlib.Path(__file__).resolve().parents[1] / "examples" / (
    "plot_training.py"
)
sys.path.insert(0, str(EXAMPLE.parent))  # the script's own modules
EPOCHS = 3
LAYERS = ["conv1", "fc2"]


@pytest.fixture(scope="module")
def plot_training():
    return load_script(EXAMPLE)


def _base() -> keras.Model:
    return keras.Sequential(
        [
            keras.Input((8, 8, 1)),
            keras.layers.Conv2D(4, 3, name="conv1"),
            keras.layers.Flatten(),
            keras.layers.Dense(8, name="fc1"),
            keras.layers.Dense(3, name="fc2"),
        ]
    )


def _data(count, seed):
    rng = np.random.default_rng(seed)
    x = rng.uniform(size=(count, 8, 8, 1)).astype("float32")
    y = (x[:, :4].mean(axis=(1, 2, 3)) * 6 % 3).astype("int32")
    return x, y


def _train(name, log_dir):
    keras.utils.set_random_seed(2)
    base = _base()
    model = base if name == "natural" else GradRegModel(base, c=0.05)
    model.compile(
        keras.optimizers.SGD(0.05),
        keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    x, y = _data(32, seed=0)
    validation = _data(16, seed=1)
    logger = GradientNormLogger(log_dir, validation, run="validation")
    history = model.fit(
        x, y, batch_size=8, epochs=EPOCHS, verbose=0,
        validation_data=validation,
        callbacks=[
            logger,
            WeightHistogramLogger(log_dir, layers=LAYERS),
            keras.callbacks.TensorBoard(log_dir, write_graph=False),
        ],
    )
    kernels = {layer: base.get_layer(layer).kernel.numpy() for layer in LAYERS}
    return {"history": history.history, "logger": logger.latest,
            "kernels": kernels}


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("runs")
    runs = {}
    for name in ("natural", "logit_reg"):
        log_dir = str(root / name)
        runs[name] = (log_dir, _train(name, log_dir))
    keras.backend.clear_session(free_memory=False)
    return runs


def test_parse_logdirs(plot_training):
    assert plot_training.parse_logdirs("a=x, b=y/z") == {"a": "x", "b": "y/z"}
    for bad in ("", "a", "a=x,a=y", "=x"):
        with pytest.raises(ValueError):
            plot_training.parse_logdirs(bad)


def test_keras_tag_names(plot_training, runs):
    log_dir, _ = runs["logit_reg"]
    train = plot_training.read_scalars(f"{log_dir}/train")
    validation = plot_training.read_scalars(f"{log_dir}/validation")
    assert "epoch_accuracy" in train and "epoch_grad_loss" in train
    for tag in ("epoch_accuracy", "input_gradient/l2", "epoch_grad_loss"):
        assert tag in validation
    assert "evaluation_accuracy_vs_iterations" in validation


@pytest.mark.parametrize("name", ["natural", "logit_reg"])
def test_training_curves_match_history(plot_training, runs, name):
    log_dir, record = runs[name]
    curves = plot_training.training_curves(log_dir)
    steps, accuracy = curves["accuracy"]
    np.testing.assert_array_equal(steps, np.arange(EPOCHS))
    np.testing.assert_allclose(
        accuracy, record["history"]["val_accuracy"], rtol=1e-6
    )
    steps, grad_loss = curves["grad_loss"]
    np.testing.assert_array_equal(steps, np.arange(EPOCHS))
    assert grad_loss[-1] == pytest.approx(record["logger"]["grad_loss"],
                                          rel=1e-6)
    if name == "logit_reg":
        # The probe is the whole validation set, so GradientNormLogger's
        # gradient loss is GradRegModel's own val_grad_loss.
        np.testing.assert_allclose(
            grad_loss, record["history"]["val_grad_loss"], rtol=1e-5
        )


@pytest.mark.parametrize("layer", LAYERS)
def test_weight_histograms_early_and_late(plot_training, runs, layer):
    log_dir, record = runs["logit_reg"]
    (early_step, early), (late_step, late) = plot_training.weight_histograms(
        log_dir, layer
    )
    assert (early_step, late_step) == (0, EPOCHS - 1)
    kernel = record["kernels"][layer]
    assert early[:, 2].sum() == late[:, 2].sum() == kernel.size
    assert late[0, 0] == pytest.approx(kernel.min(), rel=1e-5)
    assert late[-1, 1] == pytest.approx(kernel.max(), rel=1e-5)
    with pytest.raises(KeyError, match="fc1"):
        plot_training.weight_histograms(log_dir, "fc1")


def _check_png(path, min_colors=20):
    image = matplotlib.image.imread(path)
    assert image.ndim == 3 and image.shape[0] > 200 and image.shape[1] > 300
    pixels = image[..., :3].reshape(-1, 3)
    assert pixels.std() > 0.05
    assert len(np.unique(pixels, axis=0)) >= min_colors
    # Something beyond axes and text: a share of non-white, non-grey pixels.
    colored = np.ptp(pixels, axis=1) > 0.2
    assert colored.mean() > 0.002


def test_main_writes_both_figures(plot_training, runs, tmp_path):
    logdirs = ",".join(f"{name}={path}" for name, (path, _) in runs.items())
    flag_values = flags.FlagValues()  # the script's flags, not global ones
    plot_training.define_flags(flag_values)
    flag_values([str(EXAMPLE), f"--logdirs={logdirs}", f"--out={tmp_path}"])
    plot_training.run(flag_values.logdirs, flag_values.out,
                      flag_values.layers)
    _check_png(tmp_path / "fig2_training_curves.png")
    _check_png(tmp_path / "fig3_weight_histograms.png")
    results = json.loads((tmp_path / "curves.json").read_text())
    assert list(results) == ["natural", "logit_reg"]
    for name, (_, record) in runs.items():
        np.testing.assert_allclose(
            results[name]["accuracy"]["values"],
            record["history"]["val_accuracy"], rtol=1e-6,
        )
        assert set(results[name]["weight_std"]) == set(LAYERS)


def test_figures_say_what_they_plot_and_count_epochs_from_one(
        plot_training, runs, tmp_path, caplog):
    with caplog.at_level(logging.INFO, logger="tensorboard"):
        curves = {name: plot_training.training_curves(path)
                  for name, (path, _) in runs.items()}
    assert "Directory watcher" not in caplog.text  # one line per event file
    assert {c["accuracy_of"] for c in curves.values()} == {"validation"}
    fig2 = plot_training.plot_curves(curves, str(tmp_path / "fig2.png"))
    accuracy_axis, loss_axis = fig2.axes[:2]
    assert accuracy_axis.get_title() == "Validation accuracy"
    for axis in (accuracy_axis, loss_axis):
        for line in axis.lines:
            np.testing.assert_array_equal(line.get_xdata(),
                                          np.arange(1, EPOCHS + 1))
    log_dir = runs["logit_reg"][0]
    histograms = {"logit_reg": {layer: plot_training.weight_histograms(
        log_dir, layer) for layer in LAYERS}}
    fig3 = plot_training.plot_histograms(histograms, LAYERS,
                                         str(tmp_path / "fig3.png"))
    labels = [text.get_text() for text in fig3.axes[0].get_legend().texts]
    assert labels == ["after epoch 1", f"after epoch {EPOCHS}"]


def test_script_defines_its_flags(plot_training):
    """The script defines its flags into the FlagValues it is given (the
    examples' test runs one script with --helpfull in a subprocess)."""
    flag_values = flags.FlagValues()
    plot_training.define_flags(flag_values)
    for name in ("logdirs", "out", "layers"):
        assert name in flag_values
