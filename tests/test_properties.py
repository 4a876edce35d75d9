"""Property-based tests: random shapes, dtypes and values into the public API.

The only failures allowed are the documented errors (ValueError, TypeError,
and TensorFlow's InvalidArgumentError for data-dependent in-graph checks).
"""

import keras
import numpy as np
import pytest
import tensorflow as tf
from hypothesis import HealthCheck
from hypothesis import given
from hypothesis import settings
from hypothesis import strategies as st

from keras_gradreg import GradRegModel
from keras_gradreg import regularizers

DOCUMENTED = (ValueError, TypeError, tf.errors.InvalidArgumentError)
SETTINGS = settings(
    max_examples=25, deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
FLOATS = st.sampled_from(["float16", "float32", "float64"])
ANY_DTYPES = st.sampled_from(["float16", "float32", "float64", "int32", "uint8", "bool"])


@SETTINGS
@given(
    batch=st.integers(1, 5), classes=st.integers(2, 6), dtype=FLOATS,
    scale=st.sampled_from([0.0, 1.0, 1e3, 6e4]), seed=st.integers(0, 2**16),
    name=st.sampled_from(["logit_margin", "cross_entropy"]),
)
def test_regularizers_are_finite_for_valid_input(batch, classes, dtype, scale, seed, name):
    rng = np.random.default_rng(seed)
    # Logits within +-scale/2, so margins stay representable in float16.
    logits = (rng.uniform(-0.5, 0.5, size=(batch, classes)) * scale).astype(dtype)
    labels = rng.integers(0, classes, size=batch)
    values = regularizers.get_regularizer(name)(logits, labels).numpy()
    assert values.shape == (batch,)
    assert np.isfinite(values).all()


@SETTINGS
@given(
    labels=st.lists(st.integers(-3, 9), min_size=1, max_size=5),
    classes=st.integers(2, 6),
)
def test_labels_out_of_range_raise_documented_errors(labels, classes):
    logits = np.zeros((len(labels), classes), "float32")
    in_range = all(0 <= label < classes for label in labels)
    if in_range:
        assert regularizers.logit_margin(logits, labels).shape == (len(labels),)
    else:
        with pytest.raises(tf.errors.InvalidArgumentError, match="Labels must be"):
            regularizers.logit_margin(logits, labels)


@SETTINGS
@given(
    shape=st.lists(st.integers(1, 4), min_size=1, max_size=4),
    dtype=ANY_DTYPES, seed=st.integers(0, 2**16),
    name=st.sampled_from(["squared_l2", "l2", "l1"]),
)
def test_norms_accept_any_shape_or_raise_documented(shape, dtype, seed, name):
    values = np.random.default_rng(seed).normal(size=shape).astype(dtype)
    try:
        result = regularizers.get_norm(name)(values).numpy()
    except DOCUMENTED:
        return
    assert result.shape == (shape[0],)
    assert (result >= 0).all()


@SETTINGS
@given(
    c=st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.integers(-5, 5),
                st.none(), st.text(max_size=3)),
    regularizer=st.sampled_from(["logit_margin", "cross_entropy", "margin", 3]),
    norm=st.sampled_from(["squared_l2", "l2", "l1", "linf", None]),
    method=st.sampled_from(["double_backprop", "finite_difference", "exact"]),
)
def test_constructor_accepts_valid_or_raises_documented(c, regularizer, norm, method):
    base = keras.Sequential([keras.Input((2,)), keras.layers.Dense(3)])
    try:
        model = GradRegModel(base, c=c, regularizer=regularizer, norm=norm, method=method)
    except DOCUMENTED:
        return
    assert model.c == float(np.float32(c))  # c is held in a float32 variable
    assert 0 <= model.c < np.inf


@SETTINGS
@given(
    batch=st.integers(1, 4), dtype=ANY_DTYPES, seed=st.integers(0, 2**16),
    bad_value=st.sampled_from([None, np.nan, np.inf]),
    label_shift=st.sampled_from([0, 3, -1]),
)
def test_input_gradients_valid_or_documented_error(batch, dtype, seed, bad_value, label_shift):
    rng = np.random.default_rng(seed)
    base = keras.Sequential([keras.Input((3,)), keras.layers.Dense(3)])
    model = GradRegModel(base)
    x = rng.normal(size=(batch, 3)).astype(dtype)
    if bad_value is not None and np.issubdtype(x.dtype, np.floating):
        x[0, 0] = bad_value
    labels = rng.integers(0, 3, size=batch) + label_shift
    try:
        grads = model.input_gradients(x, labels).numpy()
    except DOCUMENTED:
        return
    assert grads.shape == x.shape


@SETTINGS
@given(
    shape=st.lists(st.integers(1, 6), min_size=1, max_size=3),
    eps=st.floats(0.0, 5.0), scale=st.sampled_from([0.01, 0.3, 3.0]),
    on_faces=st.floats(0.0, 1.0), seed=st.integers(0, 2**16),
)
def test_l1_box_projection_is_the_bisection_optimum(shape, eps, scale, on_faces,
                                                   seed):
    """The exact L1-ball-within-box projection against a float64 bisection
    on the soft threshold, features partly on the box's faces."""
    from keras_gradreg.attacks import _norms

    rng = np.random.default_rng(seed)
    x = rng.uniform(0, 1, [3] + shape)
    faces = rng.random(x.shape) < on_faces
    x[faces] = rng.choice([0.0, 1.0], faces.sum())
    v = rng.normal(0, scale, x.shape)
    got = _norms.l1_box_projection(tf.constant(v), eps, tf.constant(-x),
                                   tf.constant(1 - x)).numpy()
    for row in range(3):
        flat_v, low, high = v[row].ravel(), -x[row].ravel(), 1 - x[row].ravel()

        def at(lam):
            return np.clip(np.sign(flat_v) * np.maximum(np.abs(flat_v) - lam, 0),
                           low, high)

        lo, hi = 0.0, float(np.abs(flat_v).max())
        if np.abs(at(0.0)).sum() > eps:
            for _ in range(200):
                mid = (lo + hi) / 2
                lo, hi = (mid, hi) if np.abs(at(mid)).sum() > eps else (lo, mid)
        else:
            hi = 0.0
        np.testing.assert_allclose(got[row].ravel(), at(hi), atol=1e-9)
        assert np.abs(got[row]).sum() <= eps * (1 + 1e-12) + 1e-12
