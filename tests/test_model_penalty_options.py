"""GradRegModel's penalty options: finite differences, c changed during fit,
no penalty pass at c = 0, penalty_fraction, the collapse guard, and the
options saved and loaded (in safe mode, without code)."""

import warnings

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_gradreg import GradRegModel

from _model import _data  # tests/ is on sys.path
from _model import _sparse_ce
from _model import _tanh_mlp


def test_finite_difference_approaches_exact_gradient():
    base = _tanh_mlp(dtype="float64", inputs=3, classes=4)
    x, y = _data(n=8, dtype="float64", seed=5)
    x = tf.constant(x)

    def weight_gradient(model):
        with tf.GradientTape() as tape:
            _, _, penalties, _ = model._forward_with_penalty(x, y, False)
            value = tf.reduce_mean(penalties)
        grads = tape.gradient(value, base.trainable_weights)
        return np.concatenate([
            np.zeros(w.shape).ravel() if g is None else g.numpy().ravel()
            for g, w in zip(grads, base.trainable_weights)
        ])

    exact = weight_gradient(GradRegModel(base, c=1.0))
    errors = []
    for step in (1e-1, 1e-2, 1e-3):
        approx = weight_gradient(
            GradRegModel(base, c=1.0, method="finite_difference", fd_step=step)
        )
        errors.append(np.linalg.norm(approx - exact) / np.linalg.norm(exact))
    assert errors[0] > errors[1] > errors[2], errors
    assert errors[2] < 1e-2, errors


def test_finite_difference_trains_and_saves(tmp_path):
    x, y = _data(n=32)
    model = GradRegModel(_tanh_mlp(), c=0.1, method="finite_difference", fd_step=0.05)
    model.compile("adam", _sparse_ce())
    history = model.fit(x, y, epochs=2, verbose=0)
    assert history.history["grad_loss"][0] > 0
    model.save(tmp_path / "fd.keras")
    loaded = keras.models.load_model(tmp_path / "fd.keras")
    assert (loaded.method, loaded.fd_step) == ("finite_difference", 0.05)


def test_c_can_change_during_fit_without_retracing():
    x, y = _data(n=32)
    model = GradRegModel(_tanh_mlp(), c=0.0)
    model.compile(keras.optimizers.SGD(0.0), _sparse_ce())
    first = model.evaluate(x, y, verbose=0, return_dict=True)
    model.fit(x, y, epochs=1, verbose=0)
    train_function = model.train_function
    model.c = 2.0
    model.fit(x, y, epochs=1, verbose=0)
    assert model.train_function is train_function
    second = model.evaluate(x, y, verbose=0, return_dict=True)
    assert first["grad_loss"] == 0.0 and second["grad_loss"] > 0  # measured at c > 0
    np.testing.assert_allclose(
        second["loss"], first["loss"] + 2.0 * second["grad_loss"], rtol=1e-5
    )


@pytest.mark.parametrize("regularizer", ["logit_margin", "cross_entropy"])
def test_saved_model_loads_in_safe_mode_without_code(tmp_path, regularizer):
    import json
    import zipfile

    model = GradRegModel(_tanh_mlp(), c=0.1, regularizer=regularizer)
    path = tmp_path / "safe.keras"
    model.save(path)
    with zipfile.ZipFile(path) as archive:
        config = archive.read("config.json").decode()
    assert "lambda" not in config.lower() and "__lambda__" not in config
    json.loads(config)
    loaded = keras.models.load_model(path, safe_mode=True)
    assert loaded.regularizer.__name__ == regularizer


def _counting_l1(calls):
    def norm(gradients):
        with tf.name_scope("probe_norm"):
            calls.assign_add(1)
            flat = tf.reshape(gradients, [tf.shape(gradients)[0], -1])
            return tf.reduce_sum(tf.abs(flat), axis=1)

    return norm


def test_c_zero_runs_no_penalty_pass():
    from keras_gradreg import PenaltySchedule

    calls = tf.Variable(0)
    x, y = _data(n=32)
    model = GradRegModel(_tanh_mlp(), c=0.0, norm=_counting_l1(calls))
    model.compile(keras.optimizers.SGD(0.1), _sparse_ce())
    per_epoch = []
    record = keras.callbacks.LambdaCallback(
        on_epoch_end=lambda epoch, logs: per_epoch.append(int(calls.numpy())))
    warm_up = PenaltySchedule(lambda epoch, c: 0.0 if epoch < 2 else 0.1)
    history = model.fit(x, y, batch_size=16, epochs=3, verbose=0,
                        callbacks=[warm_up, record])
    # Two warm-up epochs at c = 0: the norm never ran; then once per batch.
    assert per_epoch == [0, 0, 2]
    assert history.history["grad_loss"][:2] == [0.0, 0.0]
    assert history.history["grad_loss"][2] > 0

    # On the traced graph: the penalty lives in a conditional branch only.
    spec = (tf.TensorSpec([16, 3], tf.float32), tf.TensorSpec([16], tf.int32))
    graph_def = tf.function(model.train_step).get_concrete_function(spec).graph.as_graph_def()
    top_level = [node for node in graph_def.node]
    assert any(node.op in ("If", "StatelessIf") for node in top_level)
    assert not any("probe_norm" in node.name for node in top_level)
    in_branches = [node.name for function in graph_def.library.function
                   for node in function.node_def if "probe_norm" in node.name]
    assert in_branches


def test_penalty_fraction_penalizes_a_random_subset():
    import itertools

    x, y = _data(n=8)
    model = GradRegModel(_tanh_mlp(), c=1.0, penalty_fraction=0.5)
    _, _, penalties, _ = model._forward_with_penalty(tf.constant(x), y, False)
    penalties = penalties.numpy()
    model.compile(keras.optimizers.SGD(0.0), _sparse_ce())
    logged = []
    for _ in range(3):
        logged.append(model.fit(x, y, batch_size=8, epochs=1, verbose=0,
                                shuffle=False).history["grad_loss"][0])
    subset_means = np.array([penalties[list(subset)].mean()
                             for subset in itertools.combinations(range(8), 4)])
    for value in logged:
        assert np.isclose(subset_means, value, rtol=1e-5).any(), value
    assert not np.isclose(logged[0], penalties.mean(), rtol=1e-6)


def test_collapse_guard_warns_and_names_c():
    rng = np.random.default_rng(0)
    y = np.arange(128) % 4
    x = (rng.normal(size=(4, 3))[y] + 0.3 * rng.normal(size=(128, 3))).astype("float32")
    messages = {}
    for c in (1e3, 0.01):
        keras.utils.set_random_seed(0)
        model = GradRegModel(_tanh_mlp(), c=c, norm="l1")
        model.compile(keras.optimizers.Adam(0.1), _sparse_ce())
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            model.fit(x, y, batch_size=16, epochs=6, verbose=0)
        messages[c] = [str(w.message) for w in caught if "ended at chance" in str(w.message)]
    assert messages[1e3] and "c=1000" in messages[1e3][0]
    assert not messages[0.01]


def test_new_arguments_round_trip(tmp_path):
    model = GradRegModel(_tanh_mlp(), c=np.float32(0.5), penalty_fraction=0.25,
                         method="finite_difference", fd_step=np.float32(0.02))
    model.save(tmp_path / "m.keras")
    loaded = keras.models.load_model(tmp_path / "m.keras")
    settings = lambda m: {k: v for k, v in m.get_config().items() if k != "base"}  # noqa: E731
    assert settings(loaded) == settings(model)
    assert (loaded.penalty_fraction, loaded.method) == (0.25, "finite_difference")
