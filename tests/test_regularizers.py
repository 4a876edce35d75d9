"""Tests for keras_gradreg.regularizers against analytic gradients."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_gradreg import regularizers as regs


def _linear_model(weights, bias):
    model = keras.Sequential(
        [keras.Input((weights.shape[0],)), keras.layers.Dense(weights.shape[1])]
    )
    model.layers[0].set_weights([weights, bias])
    return model


@pytest.fixture
def linear_problem():
    rng = np.random.default_rng(1)
    weights = rng.normal(size=(5, 4)).astype("float32")
    bias = rng.normal(size=4).astype("float32")
    x = rng.normal(size=(16, 5)).astype("float32")
    y = rng.integers(0, 4, size=16)
    return weights, bias, x, y


def test_logit_margin_values():
    logits = np.array([[1.0, 3.0, 2.0], [5.0, -1.0, 0.0]], "float32")
    np.testing.assert_allclose(
        regs.logit_margin(logits, [0, 0]).numpy(), [2.0, -5.0]
    )


@pytest.mark.parametrize("labels", [[2, 0], [[2], [0]], [[0, 0, 1], [1, 0, 0]]])
def test_label_formats_agree(labels):
    logits = np.array([[1.0, 3.0, 2.0], [5.0, -1.0, 0.0]], "float32")
    np.testing.assert_allclose(
        regs.logit_margin(logits, labels).numpy(), [1.0, -5.0]
    )


def test_logit_margin_float16_extremes_are_finite():
    logits = tf.constant([[-30000.0, 30000.0, -65000.0]], tf.float16)
    margin = regs.logit_margin(logits, [1])
    assert np.isfinite(margin.numpy()).all()
    np.testing.assert_allclose(margin.numpy().astype(float), [-60000.0], rtol=1e-3)


def test_logit_margin_input_gradient_of_linear_model(linear_problem):
    weights, bias, x, y = linear_problem
    model = _linear_model(weights, bias)
    grads = regs.input_gradients(model, x, y, "logit_margin").numpy()
    logits = x @ weights + bias
    for i in range(len(x)):
        wrong = logits[i].copy()
        wrong[y[i]] = -np.inf
        best_wrong = int(np.argmax(wrong))
        expected = weights[:, best_wrong] - weights[:, y[i]]
        np.testing.assert_allclose(grads[i], expected, rtol=1e-5, atol=1e-6)


def test_cross_entropy_input_gradient_of_linear_model(linear_problem):
    weights, bias, x, y = linear_problem
    model = _linear_model(weights, bias)
    grads = regs.input_gradients(model, x, y, "cross_entropy").numpy()
    logits = (x @ weights + bias).astype("float64")
    probs = np.exp(logits - logits.max(1, keepdims=True))
    probs /= probs.sum(1, keepdims=True)
    expected = (probs - np.eye(4)[y]) @ weights.T
    np.testing.assert_allclose(grads, expected, rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize(
    "name,reference",
    [
        ("squared_l2", lambda g: (g**2).sum(1)),
        ("l2", lambda g: np.sqrt((g**2).sum(1))),
        ("l1", lambda g: np.abs(g).sum(1)),
        ("linf", lambda g: np.abs(g).max(1)),
    ],
)
def test_norms_match_numpy(name, reference):
    grads = np.random.default_rng(0).normal(size=(3, 2, 4)).astype("float32")
    expected = reference(grads.reshape(3, -1))
    np.testing.assert_allclose(
        regs.get_norm(name)(grads).numpy(), expected, rtol=1e-5
    )


@pytest.mark.parametrize("name", ["squared_l2", "l2", "l1", "linf"])
def test_norm_gradient_at_zero_is_finite(name):
    zeros = tf.zeros((2, 3))
    with tf.GradientTape() as tape:
        tape.watch(zeros)
        value = tf.reduce_sum(regs.get_norm(name)(zeros))
    gradient = tape.gradient(value, zeros).numpy()
    assert np.isfinite(gradient).all()
    assert np.isfinite(value.numpy())


@pytest.mark.parametrize("name", ["l1", "l2", "linf"])
def test_each_norm_bounds_the_first_order_change_in_its_dual_threat(name):
    """<g, delta> <= eps ||g||_q over the dual ball, with equality at the
    finite-difference direction (a float64 check on random gradients)."""
    rng = np.random.default_rng(2)
    grads = rng.normal(size=(4, 7))
    dual = {"l1": np.inf, "l2": 2, "linf": 1}[name]
    norm = regs.get_norm(name)(tf.constant(grads)).numpy()
    for _ in range(50):
        delta = rng.normal(size=(4, 7))
        delta /= np.linalg.norm(delta, ord=dual, axis=1, keepdims=True)
        assert np.all((grads * delta).sum(1) <= norm + 1e-12)
    direction = regs.FD_DIRECTIONS[regs.get_norm(name)](tf.constant(grads))
    direction = direction.numpy()
    np.testing.assert_allclose(np.linalg.norm(direction, ord=dual, axis=1), 1.0)
    np.testing.assert_allclose((grads * direction).sum(1), norm, rtol=1e-12)


def test_linf_finite_difference_penalty_matches_the_exact_norm():
    weights = np.array([[1.0, -1.0], [2.0, 0.0], [-0.5, 3.0]], "float32")
    model = _linear_model(weights, np.zeros(2, "float32"))
    x = tf.constant([[0.2, 0.4, 0.1], [0.3, 0.1, 0.9]])
    labels = tf.constant([0, 1])
    grads = regs.input_gradients(model, x, labels)
    reg = regs.logit_margin(model(x), labels)
    quotient = regs.finite_difference_norm(
        model, regs.logit_margin, regs.linf, x, labels, reg, grads, 0.01)
    np.testing.assert_allclose(quotient.numpy(), regs.linf(grads).numpy(),
                               rtol=1e-4)


def test_unknown_names_raise():
    with pytest.raises(ValueError, match="Unknown regularizer"):
        regs.get_regularizer("hinge")
    with pytest.raises(ValueError, match="Unknown norm"):
        regs.get_norm("linf2")


def test_integer_inputs_raise_type_error():
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(2)])
    with pytest.raises(TypeError, match="floating point"):
        regs.input_gradients(model, np.ones((2, 2), "uint8"), [0, 1])


@pytest.mark.parametrize("labels", [[0.6, 1.0], [[1.4], [0.0]], np.array([2.5, 0.0], "float32")])
def test_fractional_float_labels_raise(labels):
    with pytest.raises(tf.errors.InvalidArgumentError, match="integer class indices"):
        regs.sparse_labels(labels, num_classes=3)


def test_integer_valued_float_labels_are_accepted():
    np.testing.assert_array_equal(
        regs.sparse_labels(np.array([2.0, 0.0], "float32"), 3).numpy(), [2, 0]
    )
