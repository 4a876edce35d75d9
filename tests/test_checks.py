"""Tests for keras_gradreg._checks: the one set of validators."""

import math
import re

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_gradreg import _checks
from keras_gradreg import attacks

# Numbers ------------------------------------------------------------------


@pytest.mark.parametrize(
    "value", [0.5, 1, np.float32(0.5), np.float64(0.5), np.int64(3),
              np.float16(0.5), np.array(0.5)],
)
def test_number_accepts_python_and_numpy_scalars(value):
    got = _checks.number("eps", value, minimum=0.0)
    assert isinstance(got, float)
    assert got == float(value)


@pytest.mark.parametrize(
    "value, error, match",
    [
        (True, TypeError, "must be a number"),
        (np.bool_(True), TypeError, "must be a number"),
        ("0.1", TypeError, "must be a number"),
        (None, TypeError, "must be a number"),
        ([0.1], TypeError, "must be a number"),
        (np.array([0.1]), TypeError, "must be a number"),
        (float("nan"), ValueError, "finite"),
        (np.float32("nan"), ValueError, "finite"),
        (math.inf, ValueError, "finite"),
        (-np.inf, ValueError, "finite"),
    ],
)
def test_number_rejects_non_numbers_nan_and_inf(value, error, match):
    with pytest.raises(error, match=match):
        _checks.number("eps", value)


@pytest.mark.parametrize(
    "value, kwargs, ok",
    [
        (0.0, {"minimum": 0.0}, True),
        (0.0, {"minimum": 0.0, "strict": True}, False),
        (-1e-9, {"minimum": 0.0}, False),
        (1e-9, {"minimum": 0.0, "strict": True}, True),
        (1.0, {"maximum": 1.0}, True),
        (1.0 + 1e-9, {"maximum": 1.0}, False),
        (-5.0, {}, True),
    ],
)
def test_number_bounds(value, kwargs, ok):
    if ok:
        assert _checks.number("x", value, **kwargs) == value
    else:
        with pytest.raises(ValueError, match="x must be"):
            _checks.number("x", value, **kwargs)


@pytest.mark.parametrize(
    "value, match",
    [(1e39, "not finite in float32"), (-1e39, "not finite in float32"),
     (np.float64(3.5e38), "not finite in float32"), (1e16, "too large")],
)
def test_number_rejects_values_float32_results_overflow_on(value, match):
    with pytest.raises(ValueError, match=re.escape(f"eps={float(value)!r} is {match}")):
        _checks.number("eps", value)
    assert _checks.number("eps", 1e15) == 1e15


def test_an_explicit_maximum_replaces_the_overflow_bound_not_float32():
    assert _checks.number("c", 3e38, 0.0, maximum=3.4e38) == 3e38
    with pytest.raises(ValueError, match="c=1e\\+39 is not finite in float32"):
        _checks.number("c", 1e39, 0.0, maximum=1e40)


def test_pgd_rejects_an_eps_float32_cannot_hold():
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    x, y = np.zeros((4, 3), "float32"), np.zeros(4, "int32")
    with pytest.raises(ValueError, match="eps=1e\\+39 is not finite in float32"):
        attacks.pgd(model, x, y, eps=1e39, clip_min=None, clip_max=None)


def test_number_message_says_strict_or_not():
    with pytest.raises(ValueError, match=r"step_size must be > 0"):
        _checks.number("step_size", 0, minimum=0, strict=True)
    with pytest.raises(ValueError, match=r"eps must be >= 0"):
        _checks.number("eps", -1, minimum=0)


@pytest.mark.parametrize("value", [3, np.int32(3), np.int64(3), np.uint8(3)])
def test_integer_accepts_numpy_ints(value):
    got = _checks.integer("steps", value)
    assert got == 3 and type(got) is int


@pytest.mark.parametrize(
    "value, error",
    [(True, TypeError), (np.bool_(False), TypeError), (2.0, TypeError),
     (np.float32(2), TypeError), ("2", TypeError), (0, ValueError),
     (-1, ValueError)],
)
def test_integer_rejects(value, error):
    with pytest.raises(error, match="steps"):
        _checks.integer("steps", value)


def test_integer_minimum_and_seed():
    assert _checks.integer("seed", 0, minimum=0) == 0
    assert _checks.integer("offset", -4, minimum=None) == -4
    assert _checks.seed(np.int64(5)) == 5
    drawn = _checks.seed(None)
    assert isinstance(drawn, int) and 0 <= drawn < 2**31
    with pytest.raises(ValueError, match="seed"):
        _checks.seed(-1)


@pytest.mark.parametrize("value", [float("nan"), float("inf"), -0.5])
def test_number_in_graph_rejects_when_the_graph_runs(value):
    variable = tf.Variable(0.5)
    checked = tf.function(
        lambda: _checks.number_in_graph("c", variable, 0.0, hint="use model.c")
    )
    assert float(checked()) == 0.5
    variable.assign(value)
    with pytest.raises(tf.errors.InvalidArgumentError,
                       match=r"c must be a finite number >= 0.0 \(use model.c\)"):
        checked()


@pytest.mark.parametrize(
    "clip_min, clip_max, expected",
    [(0, 1, (0.0, 1.0)), (None, None, (None, None)),
     (np.float32(-1), None, (-1.0, None)), (None, 255, (None, 255.0))],
)
def test_clip_range_accepts(clip_min, clip_max, expected):
    assert _checks.clip_range(clip_min, clip_max) == expected


@pytest.mark.parametrize(
    "clip_min, clip_max, error, match",
    [(1.0, 0.0, ValueError, "clip_min must be < clip_max"),
     (0.5, 0.5, ValueError, "clip_min must be < clip_max"),
     (float("nan"), 1.0, ValueError, "clip_min must be a finite"),
     (0.0, math.inf, ValueError, "clip_max must be a finite"),
     ("0", 1.0, TypeError, "clip_min")],
)
def test_clip_range_rejects(clip_min, clip_max, error, match):
    with pytest.raises(error, match=match):
        _checks.clip_range(clip_min, clip_max)


def test_choice():
    assert _checks.choice("loss", "dlr", ("ce", "dlr")) == "dlr"
    with pytest.raises(ValueError, match=r"loss must be one of \['ce'\]"):
        _checks.choice("loss", "cw", ("ce",))


# Labels -------------------------------------------------------------------


@pytest.mark.parametrize(
    "y",
    [
        [2, 0, 1],
        np.array([2, 0, 1], "int64"),
        np.array([2.0, 0.0, 1.0], "float32"),
        np.array([[2], [0], [1]], "uint8"),
        np.eye(3, dtype="float32")[[2, 0, 1]],
        np.eye(3, dtype=bool)[[2, 0, 1]],
        tf.constant([2, 0, 1]),
    ],
)
def test_labels_accepts_sparse_and_one_hot(y):
    got = _checks.labels(y, num_classes=3, batch=3)
    assert got.dtype == np.int32
    np.testing.assert_array_equal(got, [2, 0, 1])


@pytest.mark.parametrize(
    "y, num_classes, error, match",
    [
        ([0.6, 1.0], None, ValueError, r"integer class indices; y\[0\] is 0.6"),
        ([1.0, 1.4], 3, ValueError, r"y\[1\] is 1.4"),
        ([0.0, float("nan")], 3, ValueError, "integer class indices"),
        ([0, -1], None, ValueError, r"y\[1\] is -1"),
        ([0, 3], 3, ValueError, r"in \[0, 3\).*y\[1\] is 3"),
        (np.eye(4)[[0, 1]], 3, ValueError, "4 columns but the model has 3"),
        ([[0.9, 0.1, 0.0]], 3, ValueError, "row 0 is not one-hot"),
        ([[1, 1, 0]], 3, ValueError, "row 0 is not one-hot"),
        ([[0, 0, 0]], 3, ValueError, "row 0 is not one-hot"),
        (3, 3, ValueError, "scalar"),
        (np.zeros((2, 3, 1)), 3, ValueError, "shaped"),
        (np.array(["a", "b"]), 3, TypeError, "numbers"),
        (np.array([True, False]), 3, TypeError, "booleans"),
    ],
)
def test_labels_rejects(y, num_classes, error, match):
    with pytest.raises(error, match=match):
        _checks.labels(y, num_classes)


def test_labels_count_must_match_the_batch():
    with pytest.raises(ValueError, match="target has 2 entries but x has 3"):
        _checks.labels([0, 1], 3, batch=3, name="target")


def test_labels_range_is_checked_only_with_num_classes():
    np.testing.assert_array_equal(_checks.labels([7, 9]), [7, 9])


# Inputs -------------------------------------------------------------------


@pytest.mark.parametrize("dtype", ["float16", "float32", "float64"])
def test_inputs_accepts_float_batches(dtype):
    x = np.linspace(0, 1, 12).reshape(3, 4).astype(dtype)
    got = _checks.inputs(x, 0.0, 1.0)
    assert isinstance(got, tf.Tensor) and got.dtype == tf.as_dtype(dtype)
    np.testing.assert_array_equal(got.numpy(), x)


def _with(value, index=(1, 2)):
    x = np.full((3, 4), 0.5, "float32")
    x[index] = value
    return x


@pytest.mark.parametrize(
    "x, clip, error, match",
    [
        (np.zeros((2, 3), "uint8"), (None, None), TypeError, "floating-point"),
        (np.zeros((2, 3), "int32"), (0, 1), TypeError, "floating-point"),
        (np.zeros(3, "float32"), (None, None), ValueError, "batch shaped"),
        (_with(np.nan), (None, None), ValueError,
         r"NaN or infinite values \(1 example\(s\), the first at index 1\)"),
        (_with(np.inf), (None, None), ValueError, "NaN or infinite"),
        (_with(-np.inf), (0, 1), ValueError, "NaN or infinite"),
        (_with(255.0), (0, 1), ValueError, "above clip_max=1"),
        (_with(-0.1), (0, 1), ValueError, "below clip_min=0"),
        ({"a": 1}, (None, None), TypeError, "one array"),
    ],
)
def test_inputs_rejects(x, clip, error, match):
    with pytest.raises(error, match=match):
        _checks.inputs(x, *clip)


def test_inputs_unbounded_side_and_empty_batch():
    assert _checks.inputs(_with(255.0), 0.0, None).shape == (3, 4)
    assert _checks.inputs(np.zeros((0, 4), "float32"), 0.0, 1.0).shape == (0, 4)
