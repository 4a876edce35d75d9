"""GradRegModel on real architectures: BatchNorm, Dropout, keras.applications.

Checks the "one forward pass per step" promise of ``GradRegModel``: the loss
and the penalty see the same dropout mask, and BatchNormalization's moving
statistics move exactly once per step, as in a plain Keras step.
"""

import os

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_gradreg import GradRegModel

NUM_CLASSES = 3
LEARNING_RATE = 0.1


def _data(count: int, features: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(count, features)).astype("float32")
    return x, (np.arange(count) % NUM_CLASSES).astype("int32")


def _sgd_compile(model, **kwargs):
    model.compile(
        keras.optimizers.SGD(LEARNING_RATE),
        keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        **kwargs,
    )
    return model


# BatchNormalization --------------------------------------------------------


def _batch_norm_base() -> keras.Sequential:
    return keras.Sequential(
        [
            keras.Input((4,)),
            keras.layers.Dense(5, name="dense"),
            keras.layers.BatchNormalization(momentum=0.9, name="bn"),
            keras.layers.Activation("relu"),
            keras.layers.Dense(NUM_CLASSES, name="head"),
        ]
    )


def _moving_statistics(base) -> tuple:
    bn = base.get_layer("bn")
    return bn.moving_mean.numpy(), bn.moving_variance.numpy()


@pytest.mark.parametrize("regularizer", ["logit_margin", "cross_entropy"])
def test_batch_norm_moving_statistics_move_once_per_step(regularizer):
    x, y = _data(16, 4)
    base = _batch_norm_base()
    kernel, bias = (w.numpy() for w in base.get_layer("dense").weights)
    plain_base = keras.models.clone_model(base)
    plain_base.set_weights(base.get_weights())

    model = _sgd_compile(GradRegModel(base, c=1.0, regularizer=regularizer))
    model.fit(x, y, batch_size=16, epochs=1, shuffle=False, verbose=0)

    # By hand: one update from the batch statistics of the pre-step weights.
    hidden = x @ kernel + bias
    expected_mean = 0.9 * 0.0 + 0.1 * hidden.mean(axis=0)
    expected_variance = 0.9 * 1.0 + 0.1 * hidden.var(axis=0)
    mean, variance = _moving_statistics(base)
    np.testing.assert_allclose(mean, expected_mean, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(variance, expected_variance, rtol=1e-5)

    # The same as a plain Keras step on the same weights.
    _sgd_compile(plain_base).fit(
        x, y, batch_size=16, epochs=1, shuffle=False, verbose=0
    )
    pairs = zip(_moving_statistics(base), _moving_statistics(plain_base))
    for got, want in pairs:
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


# Dropout -------------------------------------------------------------------


def _dropout_base() -> keras.Sequential:
    return keras.Sequential(
        [
            keras.Input((6,)),
            keras.layers.Dense(16, activation="tanh", name="hidden"),
            keras.layers.Dropout(0.5, seed=3, name="dropout"),
            keras.layers.Dense(NUM_CLASSES, name="head"),
        ]
    )


def _margin(logits, labels):
    """Hand-written Eq. 3: max wrong logit minus the true logit."""
    is_true = tf.one_hot(labels, NUM_CLASSES) > 0
    true_logit = tf.reduce_sum(tf.where(is_true, logits, 0.0), axis=-1)
    wrong = tf.reduce_max(tf.where(is_true, -np.inf, logits), axis=-1)
    return wrong - true_logit


def _reference_update(base, x, y, c, same_mask: bool) -> list:
    """One SGD step by hand with nested tapes; dropout draws from ``base``.

    With ``same_mask`` one forward pass feeds the loss and the penalty; else
    the penalty gets a second forward pass (a second dropout mask).
    """
    x = tf.constant(x)
    weights = base.trainable_weights
    with tf.GradientTape() as outer:
        with tf.GradientTape() as inner:
            inner.watch(x)
            logits = base(x, training=True)
            penalty_logits = (
                logits if same_mask else base(x, training=True)
            )
            margin = tf.reduce_sum(_margin(penalty_logits, y))
        input_grads = inner.gradient(margin, x)
        penalty = tf.reduce_mean(tf.reduce_sum(tf.square(input_grads), -1))
        task = tf.reduce_mean(
            tf.nn.sparse_softmax_cross_entropy_with_logits(y, logits)
        )
        loss = task + c * penalty
    grads = outer.gradient(loss, weights)
    return [(w - LEARNING_RATE * g).numpy() for w, g in zip(weights, grads)]


def test_loss_and_penalty_share_one_dropout_mask():
    x, y = _data(12, 6)
    c = 2.0
    base = _dropout_base()
    initial = base.get_weights()
    seed_state = base.get_layer("dropout").seed_generator.state
    initial_state = seed_state.numpy()

    model = _sgd_compile(GradRegModel(base, c=c))
    model.fit(x, y, batch_size=12, epochs=1, shuffle=False, verbose=0)
    fitted = [w.numpy() for w in base.trainable_weights]
    assert not np.array_equal(seed_state.numpy(), initial_state)

    def reference(same_mask):
        base.set_weights(initial)
        seed_state.assign(initial_state)
        return _reference_update(base, x, y, c, same_mask)

    for got, want in zip(fitted, reference(same_mask=True)):
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-6)
    # Control: a second forward pass (a second mask) gives another update.
    two_masks = reference(same_mask=False)
    assert not all(
        np.allclose(got, want, rtol=1e-4, atol=1e-6)
        for got, want in zip(fitted, two_masks)
    )


# keras.applications ----------------------------------------------------------


def test_mobilenet_v2_takes_a_step_and_round_trips(tmp_path):
    # Real users start from weights="imagenet"; nothing is downloaded here.
    base = keras.applications.MobileNetV2(
        input_shape=(32, 32, 3), alpha=0.35, weights=None, classes=10,
        classifier_activation=None,
    )
    model = GradRegModel(base, c=0.001)
    # Eager: tracing double backprop through 150 layers costs ~30 s on CPU.
    model.compile(
        keras.optimizers.SGD(1e-3),
        keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        run_eagerly=True,
    )
    rng = np.random.default_rng(0)
    x = rng.uniform(size=(4, 32, 32, 3)).astype("float32")
    y = np.arange(4) % 10
    before = [w.numpy() for w in base.trainable_weights]
    history = model.fit(x, y, batch_size=4, epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"][0])
    assert history.history["grad_loss"][0] > 0
    after = [w.numpy() for w in base.trainable_weights]
    changed = [not np.array_equal(a, b) for a, b in zip(before, after)]
    assert all(changed), f"{changed.count(False)} weights did not move"

    path = os.path.join(tmp_path, "mobilenet.keras")
    model.save(path)
    loaded = keras.models.load_model(path)
    assert isinstance(loaded, GradRegModel)
    assert loaded.c == pytest.approx(0.001)
    np.testing.assert_allclose(
        loaded(x, training=False), model(x, training=False), atol=1e-5
    )
