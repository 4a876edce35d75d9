"""Tests for keras_gradreg.callbacks, read back with TensorBoard's reader."""

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

EPOCHS = 3
NUM_CLASSES = 3


def _base(nested: bool = False) -> keras.Model:
    """The tiny network; with ``nested``, conv1 sits inside a sub-model."""
    conv1 = keras.layers.Conv2D(4, 3, name="conv1")
    if nested:
        features = keras.Sequential(
            [keras.Input((8, 8, 1)), conv1, keras.layers.Flatten()],
            name="features",
        )
        inputs = keras.Input((8, 8, 1))
        hidden = keras.layers.Dense(8, name="fc1")(features(inputs))
        return keras.Model(inputs, keras.layers.Dense(3, name="fc2")(hidden))
    return keras.Sequential(
        [
            keras.Input((8, 8, 1)),
            conv1,
            keras.layers.Flatten(),
            keras.layers.Dense(8, name="fc1"),
            keras.layers.Dense(NUM_CLASSES, name="fc2"),
        ]
    )


def _data(count: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    x = rng.uniform(size=(count, 8, 8, 1)).astype("float32")
    y = (x.reshape(count, -1).mean(axis=1) * 100 % NUM_CLASSES).astype("int32")
    return x, y


def _compile(model):
    model.compile(
        keras.optimizers.SGD(0.1),
        keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    return model


# Independent references: hand-written Reg(x), tape and norms --------------


def _margin(logits, labels):
    is_true = tf.one_hot(labels, NUM_CLASSES) > 0
    true_logit = tf.reduce_sum(tf.where(is_true, logits, 0.0), axis=-1)
    wrong = tf.reduce_max(tf.where(is_true, -np.inf, logits), axis=-1)
    return wrong - true_logit


def _xent(logits, labels):
    return tf.nn.softmax_cross_entropy_with_logits(
        tf.one_hot(labels, NUM_CLASSES), logits
    )


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


class _Recorder(keras.callbacks.Callback):
    """Records reference values at each epoch end with its own computation."""

    def __init__(self, compute):
        super().__init__()
        self.compute = compute
        self.records = []

    def on_epoch_end(self, epoch, logs=None):
        self.records.append(self.compute())


# Reading event files back with TensorBoard's EventAccumulator -------------


def _accumulate(run_dir):
    event_accumulator = pytest.importorskip(
        "tensorboard.backend.event_processing.event_accumulator"
    )
    guidance = {kind: 0 for kind in event_accumulator.DEFAULT_SIZE_GUIDANCE}
    return event_accumulator.EventAccumulator(
        run_dir, size_guidance=guidance
    ).Reload()


def _scalar(run_dir, tag):
    tensor_util = pytest.importorskip("tensorboard.util.tensor_util")
    events = _accumulate(run_dir).Tensors(tag)
    return [e.step for e in events], np.array(
        [float(tensor_util.make_ndarray(e.tensor_proto)) for e in events]
    )


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


# RobustAccuracyCallback ----------------------------------------------------


def _fgsm_xent(model, x, y, eps, clip_min=0.0, clip_max=1.0):
    """The test's own FGSM on the cross-entropy (Goodfellow et al.)."""
    x = tf.convert_to_tensor(x)
    with tf.GradientTape() as tape:
        tape.watch(x)
        loss = tf.reduce_sum(_xent(model(x, training=False), y))
    x_adv = x + eps * tf.sign(tape.gradient(loss, x))
    return tf.clip_by_value(x_adv, clip_min, clip_max)


def _accuracy_under(model, attack, x, y, eps, **kwargs):
    logits = model.predict(attack(model, x, y, eps, **kwargs), verbose=0)
    return float(np.mean(np.argmax(logits, axis=1) == y))


def test_robust_accuracy_in_history_and_tensorboard(tmp_path):
    model = _compile(_base())
    x, y = _data(48)
    x_val, y_val = _data(23, seed=1)
    # Arrays split into uneven batches of 7, and a dataset of batches of 5.
    from_arrays = RobustAccuracyCallback(
        (x_val, y_val), _fgsm_xent, eps=0.05, log_dir=str(tmp_path),
        batch_size=7, clip_max=0.9,
    )
    from_dataset = RobustAccuracyCallback(
        tf.data.Dataset.from_tensor_slices((x_val, y_val)).batch(5),
        lambda *args, **kwargs: _fgsm_xent(*args, **kwargs), eps=0.05,
        clip_max=0.9,
    )
    reference = _Recorder(
        lambda: _accuracy_under(
            model, _fgsm_xent, x_val, y_val, 0.05, clip_max=0.9
        )
    )
    history = model.fit(x, y, batch_size=8, epochs=EPOCHS, verbose=0,
                        callbacks=[from_arrays, from_dataset, reference])
    assert from_arrays.log_key == "val_robust_accuracy_fgsm_xent"
    assert from_dataset.log_key == "val_robust_accuracy_custom"
    for callback in (from_arrays, from_dataset):
        values = history.history[callback.log_key]
        np.testing.assert_allclose(values, reference.records, atol=1e-12)
    steps, logged = _scalar(
        str(tmp_path / "validation"), "robust_accuracy/fgsm_xent"
    )
    assert steps == list(range(EPOCHS))
    np.testing.assert_allclose(logged, reference.records, rtol=1e-6)


def test_early_stopping_monitors_robust_accuracy():
    model = _compile(_base())
    x, y = _data(16)
    callback = RobustAccuracyCallback((x, y), _fgsm_xent, eps=0.05)
    # No accuracy improves by 2, so training stops after epoch 1 exactly when
    # EarlyStopping finds the key (a missing key never stops training).
    stopper = keras.callbacks.EarlyStopping(
        monitor=callback.log_key, mode="max", min_delta=2.0, patience=0
    )
    history = model.fit(x, y, epochs=6, verbose=0,
                        callbacks=[callback, stopper])
    assert len(history.history["loss"]) == 2
    assert stopper.stopped_epoch == 1


def test_attack_by_name_uses_keras_gradreg_attacks():
    attacks = pytest.importorskip("keras_gradreg.attacks")
    model = _compile(_base())
    x, y = _data(16)
    callback = RobustAccuracyCallback((x, y), "fgsm", eps=0.05)
    reference = _Recorder(
        lambda: _accuracy_under(model, attacks.fgsm, x, y, 0.05)
    )
    history = model.fit(x, y, epochs=1, verbose=0,
                        callbacks=[callback, reference])
    assert callback.log_key == "val_robust_accuracy_fgsm"
    np.testing.assert_allclose(
        history.history["val_robust_accuracy_fgsm"], reference.records
    )


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


# PenaltySchedule ---------------------------------------------------------

from keras_gradreg.callbacks import PenaltySchedule  # noqa: E402


class _TraceCountingModel(GradRegModel):
    """Counts how often ``train_step`` is traced (its Python body runs)."""

    traces = 0

    def train_step(self, data):
        type(self).traces += 1
        return super().train_step(data)


def _schedule_model(c=0.0, base=None, cls=GradRegModel):
    model = cls(base or _base(), c=c)
    model.compile(
        keras.optimizers.SGD(0.1),
        keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    return model


def _ramp(epoch, c):
    return 0.25 * (epoch + 1)


def test_penalty_schedule_sets_c_each_epoch_and_logs_it(tmp_path):
    x, y = _data(16)
    seen = []
    model = _schedule_model(c=0.0, cls=_TraceCountingModel)
    _TraceCountingModel.traces = 0
    schedule = PenaltySchedule(
        lambda epoch, c: seen.append((epoch, c)) or _ramp(epoch, c),
        log_dir=str(tmp_path),
    )
    seen_traces = []
    traces = keras.callbacks.LambdaCallback(
        on_epoch_end=lambda epoch, logs: seen_traces.append(
            _TraceCountingModel.traces
        )
    )
    history = model.fit(
        x, y, batch_size=8, epochs=EPOCHS, verbose=0,
        callbacks=[schedule, traces],
    )
    expected = [0.25, 0.5, 0.75]
    # The schedule got the epoch and the previous epoch's c.
    assert seen == [(0, 0.0), (1, 0.25), (2, 0.5)]
    np.testing.assert_allclose(history.history["c"], expected)
    steps, values = _scalar(os.path.join(tmp_path, "train"), "c")
    assert steps == [0, 1, 2]
    np.testing.assert_allclose(values, expected)
    # Changing c never retraced the train step.
    assert seen_traces[0] >= 1 and seen_traces == [seen_traces[0]] * EPOCHS


def test_penalty_schedule_trains_as_a_model_built_with_that_c():
    x, y = _data(16)
    first = _base()
    second = keras.models.clone_model(first)
    initial = first.get_weights()
    second.set_weights(initial)
    scheduled = _schedule_model(c=0.0, base=first)
    scheduled.fit(
        x, y, batch_size=8, epochs=1, shuffle=False, verbose=0,
        callbacks=[PenaltySchedule(lambda epoch, c: 5.0)],
    )
    fixed = _schedule_model(c=5.0, base=second)
    fixed.fit(x, y, batch_size=8, epochs=1, shuffle=False, verbose=0)
    for got, want in zip(scheduled.get_weights(), fixed.get_weights()):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
    # Control: without the penalty the same start ends elsewhere.
    third = keras.models.clone_model(first)
    third.set_weights(initial)
    plain = _schedule_model(c=0.0, base=third)
    plain.fit(x, y, batch_size=8, epochs=1, shuffle=False, verbose=0)
    assert not np.allclose(plain.get_weights()[0], fixed.get_weights()[0])


def test_penalty_schedule_value_survives_saving(tmp_path):
    x, y = _data(16)
    model = _schedule_model(c=0.01)
    model.fit(
        x, y, batch_size=8, epochs=2, verbose=0,
        callbacks=[PenaltySchedule(_ramp)],
    )
    path = os.path.join(tmp_path, "scheduled.keras")
    model.save(path)
    loaded = keras.models.load_model(path)
    assert loaded.c == pytest.approx(0.5)
    assert float(loaded.c_variable.numpy()) == pytest.approx(0.5)


def test_penalty_schedule_verbose_prints(capsys):
    x, y = _data(8)
    model = _schedule_model()
    model.fit(
        x, y, epochs=1, verbose=0,
        callbacks=[PenaltySchedule(lambda epoch, c: 0.125, verbose=1)],
    )
    assert "PenaltySchedule setting c to 0.125" in capsys.readouterr().out


def test_penalty_schedule_rejects_a_plain_model():
    x, y = _data(8)
    model = _compile(_base())
    with pytest.raises(TypeError, match="needs a keras_gradreg.GradRegModel"):
        model.fit(x, y, epochs=1, verbose=0,
                  callbacks=[PenaltySchedule(_ramp)])


@pytest.mark.parametrize(
    "value", [-1.0, float("nan"), float("inf"), None, "0.1", True, [0.1]]
)
def test_penalty_schedule_rejects_bad_values(value):
    model = GradRegModel(_base(), c=0.3)
    schedule = PenaltySchedule(lambda epoch, c: value)
    schedule.set_model(model)
    schedule.on_train_begin()
    with pytest.raises(ValueError, match=r"schedule\(2, c\) returned"):
        schedule.on_epoch_begin(2)
    assert model.c == pytest.approx(0.3)


def test_penalty_schedule_needs_a_callable():
    with pytest.raises(TypeError, match="schedule must be a function"):
        PenaltySchedule(0.1)


@pytest.mark.parametrize(
    "value", [1, np.float32(0.25), np.array(0.25), tf.constant(0.25)]
)
def test_penalty_schedule_accepts_numeric_scalars(value):
    model = GradRegModel(_base(), c=0.0)
    schedule = PenaltySchedule(lambda epoch, c: value)
    schedule.set_model(model)
    schedule.on_train_begin()
    schedule.on_epoch_begin(0)
    assert model.c == pytest.approx(float(value))


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


# HParamsLogger, log_hparams, log_robustness ---------------------------------

from keras_gradreg.callbacks import HParamsLogger  # noqa: E402
from keras_gradreg.callbacks import log_hparams  # noqa: E402
from keras_gradreg.callbacks import log_robustness  # noqa: E402


def _hparams_content(run_dir):
    metadata = pytest.importorskip("tensorboard.plugins.hparams.metadata")
    content = _accumulate(run_dir).PluginTagToContent("hparams")
    start = metadata.parse_session_start_info_plugin_data(
        content[metadata.SESSION_START_INFO_TAG])
    experiment = metadata.parse_experiment_plugin_data(
        content[metadata.EXPERIMENT_TAG])
    return start, experiment


def test_hparams_logger_records_hparams_and_last_epoch(tmp_path):
    pytest.importorskip("tensorboard")
    model = _compile(_base())
    x, y = _data(16)
    logger = HParamsLogger(str(tmp_path), {"c": 0.5, "norm": "l1",
                                           "epochs": 2, "smooth": True},
                           metrics=["accuracy", "loss", "absent"])
    history = model.fit(x, y, epochs=2, verbose=0, callbacks=[logger])
    start, experiment = _hparams_content(str(tmp_path))
    assert start.hparams["c"].number_value == 0.5
    assert start.hparams["norm"].string_value == "l1"
    assert start.hparams["smooth"].bool_value is True
    assert sorted(h.name for h in experiment.hparam_infos) == [
        "c", "epochs", "norm", "smooth"]
    assert sorted(m.name.tag for m in experiment.metric_infos) == [
        "final/accuracy", "final/loss", "final/train_seconds"]
    for key in ("accuracy", "loss"):
        steps, values = _scalar(str(tmp_path), f"final/{key}")
        assert steps == [0]
        assert values[0] == pytest.approx(history.history[key][-1], rel=1e-6)
    assert logger.final_metrics["final/train_seconds"] > 0


def test_log_robustness_puts_eps_on_the_step_axis(tmp_path):
    pytest.importorskip("tensorboard")
    entry = {"clean": 0.9, "fgsm": {"0.3": 0.1, "0.1": 0.7},
             "worst_case": {"0.1": 0.6, "0.3": 0.0},
             "large_eps": {"eps": 1.0, "fgsm": 0.0}}
    metrics = log_robustness(str(tmp_path), entry)
    assert metrics == {"final/clean_accuracy": 0.9, "final/fgsm/eps_0.3": 0.1,
                       "final/fgsm/eps_0.1": 0.7,
                       "final/worst_case/eps_0.1": 0.6,
                       "final/worst_case/eps_0.3": 0.0}
    steps, values = _scalar(str(tmp_path), "robust_accuracy_vs_eps/fgsm")
    assert steps == [100, 300]
    np.testing.assert_allclose(values, [0.7, 0.1])
    with pytest.raises(ValueError, match="eps"):
        log_robustness(str(tmp_path), {"fgsm": {"big": 0.1}})


@pytest.mark.parametrize("hparams, metrics, error", [
    ({}, None, TypeError),
    ({"c": None}, None, TypeError),
    ({"c": [1]}, None, TypeError),
    ({"c": 1.0}, {"acc": "high"}, TypeError),
    ({"c": 1.0}, {"acc": True}, TypeError),
])
def test_log_hparams_rejects_bad_values(tmp_path, hparams, metrics, error):
    with pytest.raises(error):
        log_hparams(str(tmp_path), hparams, metrics)


def test_log_hparams_says_how_to_install_tensorboard(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "tensorboard.plugins.hparams", None)
    with pytest.raises(ImportError, match="pip install tensorboard"):
        log_hparams(str(tmp_path), {"c": 1.0})
