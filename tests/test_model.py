"""Tests for GradRegModel: double backpropagation, Keras conventions."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_gradreg import GradRegModel

from _data import read_mnist  # tests/ is on sys.path
from _model import _data
from _model import _sparse_ce
from _model import _tanh_mlp

NORMS = {
    "squared_l2": lambda g: tf.reduce_sum(tf.square(g), axis=1),
    "l2": lambda g: tf.sqrt(tf.reduce_sum(tf.square(g), axis=1)),
    "l1": lambda g: tf.reduce_sum(tf.abs(g), axis=1),
}


def _margin(logits, labels):
    """Independent logit margin: gather the true logit, mask it, take max."""
    num_classes = logits.shape[-1]
    true_logit = tf.gather(logits, labels, batch_dims=1)
    masked = logits - tf.one_hot(labels, num_classes, dtype=logits.dtype) * 1e6
    return tf.reduce_max(masked, axis=1) - true_logit


@pytest.mark.parametrize("norm", sorted(NORMS))
def test_one_sgd_step_matches_independent_double_backprop(norm):
    c, lr = 0.5, 0.1
    base = _tanh_mlp()
    x, y = _data()
    weights = [w.numpy() for w in base.trainable_weights]
    with tf.GradientTape() as outer:
        with tf.GradientTape() as inner:
            xt = tf.constant(x)
            inner.watch(xt)
            logits = base(xt)
            reg = tf.reduce_sum(_margin(logits, y))
        input_grads = inner.gradient(reg, xt)
        ce = tf.reduce_mean(
            tf.nn.sparse_softmax_cross_entropy_with_logits(y, logits)
        )
        total = ce + c * tf.reduce_mean(NORMS[norm](input_grads))
    expected_grads = outer.gradient(total, base.trainable_weights)
    model = GradRegModel(base, c=c, norm=norm)
    model.compile(keras.optimizers.SGD(lr), _sparse_ce())
    history = model.fit(x, y, batch_size=len(x), epochs=1, verbose=0)
    for old, new, grad in zip(weights, base.trainable_weights, expected_grads):
        np.testing.assert_allclose(
            new.numpy(), old - lr * grad.numpy(), rtol=1e-4, atol=1e-6
        )
    np.testing.assert_allclose(history.history["loss"][0], total.numpy(), rtol=1e-5)


@pytest.mark.parametrize("norm", sorted(NORMS))
@pytest.mark.parametrize("regularizer", ["logit_margin", "cross_entropy"])
def test_penalty_weight_gradient_matches_finite_differences(norm, regularizer):
    base = _tanh_mlp(dtype="float64", inputs=2, classes=3)
    x, y = _data(n=6, inputs=2, classes=3, dtype="float64", seed=3)
    model = GradRegModel(base, c=1.0, regularizer=regularizer, norm=norm)

    def penalty():
        _, _, penalties, _ = model._forward_with_penalty(tf.constant(x), y, False)
        return tf.reduce_mean(penalties)

    with tf.GradientTape() as tape:
        value = penalty()
    analytic = tape.gradient(value, base.trainable_weights)
    step = 1e-6
    for variable, grad in zip(base.trainable_weights, analytic):
        original = variable.numpy()
        numeric = np.zeros_like(original)
        for index in np.ndindex(original.shape):
            for sign in (1, -1):
                shifted = original.copy()
                shifted[index] += sign * step
                variable.assign(shifted)
                numeric[index] += sign * penalty().numpy() / (2 * step)
        variable.assign(original)
        grad = np.zeros_like(original) if grad is None else grad.numpy()
        np.testing.assert_allclose(grad, numeric, rtol=1e-4, atol=1e-7)


def test_c_zero_trains_like_plain_keras():
    x, y = _data(n=64)
    results = []
    for wrap in (False, True):
        keras.utils.set_random_seed(7)
        base = _tanh_mlp(seed=1)
        model = GradRegModel(base, c=0.0) if wrap else base
        model.compile(keras.optimizers.Adam(0.01), _sparse_ce())
        model.fit(x, y, batch_size=16, epochs=2, shuffle=True, verbose=0)
        results.append([w.numpy() for w in base.trainable_weights])
    for plain, wrapped in zip(*results):
        np.testing.assert_allclose(wrapped, plain, rtol=1e-5, atol=1e-6)


def test_history_and_evaluate_report_total_and_grad_loss():
    x, y = _data(n=64)
    model = GradRegModel(_tanh_mlp(), c=0.3)
    model.compile("adam", _sparse_ce(), metrics=["accuracy"])
    history = model.fit(x, y, validation_data=(x, y), epochs=2, verbose=0)
    logs = history.history
    assert {"loss", "grad_loss", "accuracy", "val_loss", "val_grad_loss"} <= set(logs)
    assert logs["loss"][0] > 0 and logs["grad_loss"][0] > 0
    result = model.evaluate(x, y, verbose=0, return_dict=True)
    ce = _sparse_ce()(y, model.predict(x, verbose=0)).numpy()
    np.testing.assert_allclose(result["loss"], ce + 0.3 * result["grad_loss"], rtol=1e-4)


def test_one_hot_and_sparse_labels_give_same_step():
    x, y = _data()
    weights = []
    for labels, loss in (
        (y, _sparse_ce()),
        (np.eye(4)[y], keras.losses.CategoricalCrossentropy(from_logits=True)),
    ):
        keras.utils.set_random_seed(3)
        base = _tanh_mlp()
        model = GradRegModel(base, c=0.2)
        model.compile(keras.optimizers.SGD(0.1), loss)
        model.fit(x, labels, batch_size=32, epochs=1, verbose=0)
        weights.append([w.numpy() for w in base.trainable_weights])
    for a, b in zip(*weights):
        np.testing.assert_allclose(a, b, rtol=1e-5)


def test_sample_weights_scale_the_penalty():
    x, y = _data(n=16)
    model = GradRegModel(_tanh_mlp(), c=1.0)
    model.compile("sgd", _sparse_ce())
    plain = model.evaluate(x, y, verbose=0, return_dict=True)["grad_loss"]
    halved = model.evaluate(
        x, y, sample_weight=np.full(16, 0.5), verbose=0, return_dict=True
    )["grad_loss"]
    np.testing.assert_allclose(halved, 0.5 * plain, rtol=1e-5)


def test_input_gradients_of_linear_model():
    rng = np.random.default_rng(0)
    weights = rng.normal(size=(3, 4)).astype("float32")
    base = keras.Sequential([keras.Input((3,)), keras.layers.Dense(4, use_bias=False)])
    base.layers[0].set_weights([weights])
    x, y = _data(n=8)
    grads = GradRegModel(base).input_gradients(x, y).numpy()
    logits = x @ weights
    for i in range(8):
        wrong = np.where(np.arange(4) == y[i], -np.inf, logits[i])
        expected = weights[:, np.argmax(wrong)] - weights[:, y[i]]
        np.testing.assert_allclose(grads[i], expected, rtol=1e-5)


@pytest.mark.parametrize("head", ["dense_softmax", "softmax_layer", "activation"])
def test_softmax_base_is_regularized_on_logits(head):
    inputs = keras.Input((3,))
    hidden = keras.layers.Dense(5, activation="tanh")(inputs)
    if head == "dense_softmax":
        outputs = keras.layers.Dense(4, activation="softmax")(hidden)
        logits_layer_output = None
    else:
        logits_layer = keras.layers.Dense(4)
        logits_tensor = logits_layer(hidden)
        last = keras.layers.Softmax() if head == "softmax_layer" else (
            keras.layers.Activation("softmax"))
        outputs = last(logits_tensor)
        logits_layer_output = logits_tensor
    base = keras.Model(inputs, outputs)
    model = GradRegModel(base)
    assert model.output_softmax
    x, y = _data(n=8)
    np.testing.assert_allclose(model.predict(x, verbose=0), base.predict(x, verbose=0), rtol=1e-5)
    probs = base.predict(x, verbose=0)
    np.testing.assert_allclose(
        tf.nn.softmax(model.logits(x)).numpy(), probs, rtol=1e-5, atol=1e-7
    )
    if logits_layer_output is not None:
        reference = keras.Model(inputs, logits_layer_output)
        np.testing.assert_allclose(model.logits(x).numpy(), reference(x).numpy(), rtol=1e-5)
    model.compile("adam", "sparse_categorical_crossentropy")
    assert model.fit(x, y, verbose=0).history["grad_loss"][0] > 0


def test_unrecoverable_softmax_raises():
    base = keras.Sequential(
        [keras.Input((6, 2)), keras.layers.Conv1D(3, 6, activation="softmax"),
         keras.layers.Flatten()]
    )
    keras_last = keras.Sequential(
        [keras.Input((6, 2)), keras.layers.Flatten(),
         keras.layers.EinsumDense("ab,bc->ac", output_shape=3, activation="softmax")]
    )
    GradRegModel(base)  # softmax not last: the model's output is taken as logits.
    with pytest.raises(ValueError, match="logits cannot be recovered"):
        GradRegModel(keras_last)


class SubclassedNet(keras.Model):
    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.hidden = keras.layers.Dense(6, activation="tanh")
        self.out = keras.layers.Dense(4)

    def call(self, x):
        return self.out(self.hidden(x))


def test_subclassed_base_trains():
    x, y = _data(n=32)
    model = GradRegModel(SubclassedNet(), c=0.1)
    model.compile("adam", _sparse_ce())
    history = model.fit(x, y, epochs=2, verbose=0)
    assert history.history["grad_loss"][0] > 0


def test_wrapping_a_built_base_is_built():
    model = GradRegModel(_tanh_mlp())
    assert model.built
    model.summary(print_fn=lambda *args, **kwargs: None)


def test_save_and_load_round_trip(tmp_path):
    x, y = _data(n=32)
    model = GradRegModel(_tanh_mlp(), c=0.25, regularizer="cross_entropy", norm="l1")
    model.compile("adam", _sparse_ce(), metrics=["accuracy"])
    model.fit(x, y, epochs=1, verbose=0)
    path = tmp_path / "model.keras"
    model.save(path)
    loaded = keras.models.load_model(path)
    assert isinstance(loaded, GradRegModel)
    assert (loaded.c, loaded.regularizer.__name__, loaded.norm.__name__) == (
        0.25, "cross_entropy", "l1")
    np.testing.assert_allclose(loaded.predict(x, verbose=0), model.predict(x, verbose=0), rtol=1e-6)
    loaded.fit(x, y, epochs=1, verbose=0)


def test_jit_compile_gives_same_step():
    x, y = _data()
    results = []
    for jit in (False, True):
        keras.utils.set_random_seed(5)
        base = _tanh_mlp()
        model = GradRegModel(base, c=0.5)
        model.compile(keras.optimizers.SGD(0.1), _sparse_ce(), jit_compile=jit)
        model.fit(x, y, batch_size=32, epochs=1, verbose=0)
        results.append([w.numpy() for w in base.trainable_weights])
    for a, b in zip(*results):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)


def test_mixed_precision_trains_with_float32_penalty():
    keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        base = keras.Sequential(
            [keras.Input((3,)), keras.layers.Dense(8, activation="tanh"),
             keras.layers.Dense(4, dtype="float32")]
        )
        model = GradRegModel(base, c=0.1)
        model.compile("adam", _sparse_ce())
        x, y = _data(n=64)
        history = model.fit(x, y, epochs=2, verbose=0)
        _, _, penalties, _ = model._forward_with_penalty(tf.constant(x), y, False)
        assert penalties.dtype == tf.float32
        assert np.isfinite(history.history["loss"]).all()
        assert np.isfinite(history.history["grad_loss"]).all()
    finally:
        keras.mixed_precision.set_global_policy("float32")


def test_mirrored_strategy_matches_single_device():
    x, y = _data(n=64)
    results = []
    devices = [d.name for d in tf.config.list_logical_devices("CPU")][:2]
    assert len(devices) == 2
    for strategy in (tf.distribute.get_strategy(), tf.distribute.MirroredStrategy(devices)):
        keras.utils.set_random_seed(11)
        with strategy.scope():
            base = _tanh_mlp()
            model = GradRegModel(base, c=0.5)
            model.compile(keras.optimizers.SGD(0.1), _sparse_ce())
        history = model.fit(x, y, batch_size=32, epochs=2, shuffle=False, verbose=0)
        results.append(([w.numpy() for w in base.trainable_weights], history.history))
    (single, single_logs), (mirrored, mirrored_logs) = results
    for a, b in zip(single, mirrored):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(single_logs["loss"], mirrored_logs["loss"], rtol=1e-4)
    np.testing.assert_allclose(single_logs["grad_loss"], mirrored_logs["grad_loss"], rtol=1e-4)


@pytest.mark.large
def test_mnist_penalty_shrinks_input_gradients(mnist_dir):
    x, y = read_mnist(mnist_dir, "train", 4000)
    x_test, y_test = read_mnist(mnist_dir, "t10k", 500)
    norms = {}
    for c in (0.0, 1.0):
        keras.utils.set_random_seed(0)
        base = keras.Sequential(
            [keras.Input((28, 28, 1)),
             keras.layers.Conv2D(8, 5, strides=2, activation="relu"),
             keras.layers.Flatten(), keras.layers.Dense(64, activation="relu"),
             keras.layers.Dense(10)]
        )
        model = GradRegModel(base, c=c)
        model.compile(keras.optimizers.Adam(1e-3), _sparse_ce(), metrics=["accuracy"])
        model.fit(x, y, batch_size=64, epochs=2, verbose=0)
        grads = model.input_gradients(x_test, y_test).numpy().reshape(500, -1)
        norms[c] = np.linalg.norm(grads, axis=1).mean()
        accuracy = model.evaluate(x_test, y_test, verbose=0, return_dict=True)["accuracy"]
        assert accuracy > 0.7, (c, accuracy)
    assert norms[1.0] * 2 <= norms[0.0], norms


def test_penalty_fraction_path_gives_the_exact_step_when_it_covers_the_batch():
    # ceil(0.99 * 8) = 8: every example is penalized, through the shuffled,
    # split forward pass; the step must equal independent nested tapes.
    c, lr = 0.5, 0.1
    base = _tanh_mlp()
    x, y = _data(n=8)
    weights = [w.numpy() for w in base.trainable_weights]
    with tf.GradientTape() as outer:
        with tf.GradientTape() as inner:
            xt = tf.constant(x)
            inner.watch(xt)
            logits = base(xt)
            reg = tf.reduce_sum(_margin(logits, y))
        penalty = tf.reduce_mean(NORMS["l1"](inner.gradient(reg, xt)))
        ce = tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(y, logits))
        total = ce + c * penalty
    expected = outer.gradient(total, base.trainable_weights)
    model = GradRegModel(base, c=c, norm="l1", penalty_fraction=0.99)
    model.compile(keras.optimizers.SGD(lr), _sparse_ce())
    history = model.fit(x, y, batch_size=8, epochs=1, verbose=0)
    for old, new, grad in zip(weights, base.trainable_weights, expected):
        np.testing.assert_allclose(new.numpy(), old - lr * grad.numpy(), rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(history.history["loss"][0], total.numpy(), rtol=1e-5)
