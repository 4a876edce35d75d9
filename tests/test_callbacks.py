"""Tests for keras_gradreg.callbacks' GradientNormLogger and
WeightHistogramLogger, read back with TensorBoard's reader and served by
TensorBoard itself, and the callbacks' argument checks."""

import importlib.util
import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_gradreg import GradRegModel
from keras_gradreg.callbacks import GradientNormLogger
from keras_gradreg.callbacks import RobustAccuracyCallback
from keras_gradreg.callbacks import WeightHistogramLogger

from _callbacks import EPOCHS  # tests/ is on sys.path
from _callbacks import NUM_CLASSES
from _callbacks import _accumulate
from _callbacks import _base
from _callbacks import _compile
from _callbacks import _data
from _callbacks import _fgsm_xent
from _callbacks import _Recorder
from _callbacks import _scalar
from _callbacks import _xent

# Independent references: hand-written Reg(x), tape and norms --------------


def _margin(logits, labels):
    is_true = tf.one_hot(labels, NUM_CLASSES) > 0
    true_logit = tf.reduce_sum(tf.where(is_true, logits, 0.0), axis=-1)
    wrong = tf.reduce_max(tf.where(is_true, -np.inf, logits), axis=-1)
    return wrong - true_logit


def _reference_norms(logits_fn, reg_fn, grad_loss_norm, x, y) -> dict:
    x = tf.constant(x)
    with tf.GradientTape() as tape:
        tape.watch(x)
        total = tf.reduce_sum(reg_fn(logits_fn(x), y))
    grads = tape.gradient(total, x).numpy()
    grads = grads.reshape(len(grads), -1).astype("float64")
    norms = {
        "l1": np.abs(grads).sum(axis=1),
        "l2": np.sqrt((grads**2).sum(axis=1)),
        "linf": np.abs(grads).max(axis=1),
        "squared_l2": (grads**2).sum(axis=1),
    }
    result = {name: norms[name].mean() for name in ("l1", "l2", "linf")}
    result["grad_loss"] = norms[grad_loss_norm].mean()
    return result


def _histograms(run_dir, tag):
    tensor_util = pytest.importorskip("tensorboard.util.tensor_util")
    events = _accumulate(run_dir).Tensors(tag)
    return [e.step for e in events], [
        tensor_util.make_ndarray(e.tensor_proto) for e in events
    ]


# One training per model kind, shared by the event-file tests ---------------

KINDS = {
    # kind: (regularizer used for Reg, norm behind grad_loss)
    "natural": (_margin, "squared_l2"),
    "gradreg": (_xent, "l1"),
}


def _train(kind, log_dir):
    keras.utils.set_random_seed(1)
    if kind == "natural":
        model = _compile(_base())
        logits_fn = model
    else:
        base = _base(nested=True)
        model = _compile(
            GradRegModel(base, c=0.01, regularizer="cross_entropy", norm="l1")
        )
        logits_fn = base
    x, y = _data(32)
    probe = x[:6], y[:6]
    reg_fn, grad_loss_norm = KINDS[kind]
    gradients = _Recorder(
        lambda: _reference_norms(logits_fn, reg_fn, grad_loss_norm, *probe)
    )
    kernels = _Recorder(
        lambda: model.get_layer("conv1").kernel.numpy().copy()
        if kind == "natural"
        else base.get_layer("features").get_layer("conv1").kernel.numpy().copy()
    )
    model.fit(
        x, y, batch_size=8, epochs=EPOCHS, verbose=0,
        callbacks=[
            GradientNormLogger(log_dir, probe),
            WeightHistogramLogger(log_dir, layers=["conv1", "fc2"]),
            gradients,
            kernels,
        ],
    )
    return {"gradients": gradients.records, "kernels": kernels.records}


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("tensorboard")
    records = {kind: _train(kind, str(root / kind)) for kind in KINDS}
    keras.backend.clear_session(free_memory=False)
    return str(root), records


@pytest.mark.parametrize("kind", sorted(KINDS))
@pytest.mark.parametrize("name", ["l1", "l2", "linf", "grad_loss"])
def test_gradient_norms_match_an_independent_tape(runs, kind, name):
    root, records = runs
    steps, values = _scalar(
        os.path.join(root, kind, "train"), f"input_gradient/{name}"
    )
    assert steps == list(range(EPOCHS))  # One point per epoch.
    expected = [record[name] for record in records[kind]["gradients"]]
    np.testing.assert_allclose(values, expected, rtol=1e-4, atol=1e-7)
    assert np.all(values > 0)


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_conv1_kernel_histograms_and_moments(runs, kind):
    root, records = runs
    run_dir = os.path.join(root, kind, "train")
    steps, histograms = _histograms(run_dir, "weights/conv1/kernel")
    assert steps == list(range(EPOCHS))
    kernels = records[kind]["kernels"]
    for histogram, kernel in zip(histograms, kernels):
        assert histogram.shape[1] == 3  # (left, right, count) buckets.
        assert histogram[:, 2].sum() == kernel.size
        assert histogram[0, 0] == pytest.approx(kernel.min(), rel=1e-5)
        assert histogram[-1, 1] == pytest.approx(kernel.max(), rel=1e-5)
    for moment, reference in (("mean", np.mean), ("std", np.std)):
        _, values = _scalar(run_dir, f"weights/conv1/kernel/{moment}")
        np.testing.assert_allclose(
            values, [reference(k) for k in kernels], rtol=1e-4, atol=1e-7
        )
    tags = _accumulate(run_dir).Tags()["tensors"]
    assert "weights/fc2/bias" in tags and "weights/fc1/kernel" not in tags


def test_every_n_steps_uses_the_global_step(tmp_path):
    model = _compile(_base())
    x, y = _data(10)
    logger = GradientNormLogger(str(tmp_path), (x[:4], y[:4]), every_n_steps=2)
    weights = WeightHistogramLogger(str(tmp_path), every_n_steps=2)
    model.fit(x, y, batch_size=2, epochs=2, verbose=0,
              callbacks=[logger, weights])
    steps_per_epoch = 5
    total = 2 * steps_per_epoch
    expected = sorted(set(range(2, total + 1, 2)) | {5, 10})
    run_dir = str(tmp_path / "train")
    assert _scalar(run_dir, "input_gradient/l2")[0] == expected
    assert _histograms(run_dir, "weights/fc1/kernel")[0] == expected
    assert weights.tags() == [
        f"weights/{layer}/{variable}"
        for layer in ("conv1", "fc1", "fc2")
        for variable in ("kernel", "bias")
    ]


def test_unknown_layer_is_reported_with_the_model_layers(tmp_path):
    model = _compile(_base())
    x, y = _data(4)
    logger = WeightHistogramLogger(str(tmp_path), layers=["conv9"])
    with pytest.raises(ValueError, match="conv9.*conv1"):
        model.fit(x, y, verbose=0, callbacks=[logger])


@pytest.mark.parametrize(
    "make, error",
    [
        (lambda d: GradientNormLogger(d, (np.ones((2, 3), "int32"), [0, 1])),
         TypeError),
        (lambda d: GradientNormLogger(d, np.ones((2, 3))), TypeError),
        (lambda d: GradientNormLogger(d, (np.ones((2, 3)), [0, 1, 2])),
         ValueError),
        (lambda d: GradientNormLogger(d, (np.ones((2, 3)), [0, 1]),
                                      every_n_steps=0), ValueError),
        (lambda d: GradientNormLogger(d, (np.ones((2, 3)), [0, 1]),
                                      regularizer="nope"), ValueError),
        (lambda d: GradientNormLogger(d, (np.ones((2, 3)), [0, 1]),
                                      run="test"), ValueError),
        (lambda d: WeightHistogramLogger(d, layers="conv1"), TypeError),
        (lambda d: WeightHistogramLogger(None), TypeError),
        (lambda d: RobustAccuracyCallback(_data(4), _fgsm_xent, eps=-1.0),
         ValueError),
        (lambda d: RobustAccuracyCallback(_data(4), 3, eps=0.1), TypeError),
        (lambda d: RobustAccuracyCallback(np.ones(3), _fgsm_xent, eps=0.1),
         TypeError),
        (lambda d: RobustAccuracyCallback(_data(4), _fgsm_xent, eps=0.1,
                                          batch_size=0), ValueError),
    ],
)
def test_bad_arguments_raise(tmp_path, make, error):
    with pytest.raises(error):
        make(str(tmp_path))


def test_unknown_attack_name():
    has_attacks = importlib.util.find_spec("keras_gradreg.attacks") is not None
    with pytest.raises(ValueError if has_attacks else ImportError,
                       match="no_such_attack"):
        RobustAccuracyCallback(_data(4), "no_such_attack", eps=0.1)


# TensorBoard itself, over HTTP ---------------------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _get(port, path, **query):
    url = f"http://127.0.0.1:{port}{path}"
    if query:
        url += "?" + urllib.parse.urlencode(query)
    with urllib.request.urlopen(url, timeout=5) as response:
        return json.loads(response.read())


def _wait_for_tags(port, process, run, tag, deadline_s=40.0):
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"tensorboard exited with code {process.returncode}")
        try:
            tags = _get(port, "/data/plugin/scalars/tags")
            if tag in tags.get(run, {}):
                return tags
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(0.3)
    pytest.fail("tensorboard did not serve the scalars in time")


@pytest.fixture
def tensorboard_server(runs, tmp_path):
    pytest.importorskip("tensorboard")
    root, _ = runs
    port = _free_port()
    with open(tmp_path / "tensorboard.log", "w") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "tensorboard.main", "--logdir", root,
             "--host", "127.0.0.1", "--port", str(port),
             "--load_fast", "false", "--reload_interval", "1"],
            stdout=log, stderr=subprocess.STDOUT,
        )
    try:
        yield port, process
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def test_tensorboard_serves_the_logged_data(runs, tensorboard_server):
    _, records = runs
    port, process = tensorboard_server
    run = "gradreg/train"
    _wait_for_tags(port, process, run, "input_gradient/l2")
    points = _get(port, "/data/plugin/scalars/scalars",
                  run=run, tag="input_gradient/l2")
    assert [step for _, step, _ in points] == list(range(EPOCHS))
    np.testing.assert_allclose(
        [value for _, _, value in points],
        [record["l2"] for record in records["gradreg"]["gradients"]],
        rtol=1e-4,
    )
    histogram_tags = _get(port, "/data/plugin/histograms/tags")
    assert "weights/conv1/kernel" in histogram_tags[run]
    histograms = _get(port, "/data/plugin/histograms/histograms",
                      run=run, tag="weights/conv1/kernel")
    kernel_size = records["gradreg"]["kernels"][0].size
    assert [step for _, step, _ in histograms] == list(range(EPOCHS))
    for _, _, buckets in histograms:
        assert sum(count for _, _, count in buckets) == kernel_size


def test_gradient_norms_of_a_wrapper_around_a_softmax_base_use_its_logits(
    tmp_path,
):
    """Reg is the margin of the pre-softmax logits, not of probabilities."""
    from keras_gradreg import AdversarialTrainingModel

    keras.utils.set_random_seed(0)
    base = keras.Sequential([keras.Input((4,)),
                             keras.layers.Dense(3, activation="softmax")])
    model = AdversarialTrainingModel(base, eps=0.05, step_size=0.05, steps=1)
    model.compile("sgd", keras.losses.SparseCategoricalCrossentropy())
    rng = np.random.default_rng(0)
    x = rng.uniform(size=(8, 4)).astype("float32")
    y = rng.integers(0, 3, 8)
    logger = GradientNormLogger(str(tmp_path), (x, y))
    model.fit(x, y, epochs=1, verbose=0, callbacks=[logger])
    # Logit margin of a linear layer: dReg/dx = W[:, j*] - W[:, y], with j*
    # the largest wrong logit; a softmax output would give other gradients.
    kernel, bias = (np.asarray(w, "float64") for w in base.layers[-1].weights)
    logits = x.astype("float64") @ kernel + bias
    wrong = logits.copy()
    wrong[np.arange(8), y] = -np.inf
    gradients = (kernel[:, wrong.argmax(1)] - kernel[:, y]).T
    assert logger.latest["l2"] == pytest.approx(
        np.linalg.norm(gradients, axis=1).mean(), rel=1e-5)
    assert logger.latest["l1"] == pytest.approx(
        np.abs(gradients).sum(axis=1).mean(), rel=1e-5)
