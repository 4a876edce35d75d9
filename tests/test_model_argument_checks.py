"""GradRegModel refuses bad arguments, bases, labels and inputs, each with a
message that names what is wrong, and accepts NumPy scalars."""

import warnings

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_gradreg import GradRegModel

from _model import _sparse_ce  # tests/ is on sys.path
from _model import _tanh_mlp


@pytest.mark.parametrize("bad", [-0.1, "x", None, float("nan"), float("inf")])
def test_bad_c_raises(bad):
    with pytest.raises(ValueError, match="c must be"):
        GradRegModel(_tanh_mlp(), c=bad)


def test_integer_inputs_raise():
    model = GradRegModel(_tanh_mlp())
    with pytest.raises(TypeError, match="floating-point"):
        model.input_gradients(np.ones((2, 3), "int32"), [0, 1])


@pytest.mark.parametrize(
    "labels,array_match,dataset_match",
    [(np.array([0, 4]), "y must hold class indices in \\[0, 4\\)",
      "Labels must be integers in \\[0, 4\\)"),
     (np.array([-1, 0]), "y must hold class indices >= 0",
      "Labels must be integers")],
)
def test_out_of_range_labels_raise(labels, array_match, dataset_match):
    model = GradRegModel(_tanh_mlp())
    model.compile("sgd", _sparse_ce())
    x = np.zeros((2, 3), "float32")
    with pytest.raises(ValueError, match=array_match):  # before any step
        model.fit(x, labels, verbose=0)
    with pytest.raises(Exception, match=dataset_match):  # in the step
        model.fit(tf.data.Dataset.from_tensor_slices((x, labels)).batch(2),
                  verbose=0)


def test_non_finite_inputs_raise():
    model = GradRegModel(_tanh_mlp())
    model.compile("sgd", _sparse_ce())
    x = np.zeros((2, 3), "float32")
    x[0, 0] = np.nan
    with pytest.raises(Exception, match="NaN or Inf"):
        model.fit(x, np.array([0, 1]), verbose=0)


def test_non_2d_output_raises():
    base = keras.Sequential([keras.Input((4, 3)), keras.layers.Dense(2)])
    model = GradRegModel(base)
    model.compile("sgd", _sparse_ce())
    with pytest.raises(ValueError, match="2-D batch of class scores"):
        model.fit(np.zeros((2, 4, 3), "float32"), np.array([0, 1]), verbose=0)


@pytest.mark.parametrize(
    "kwargs,match",
    [({"regularizer": "nope"}, "Unknown regularizer"),
     ({"norm": "l3"}, "Unknown norm"),
     ({"method": "magic"}, "Unknown method"),
     ({"fd_step": 0.0}, "fd_step"),
     ({"method": "finite_difference", "norm": lambda g: g}, "custom callable")],
)
def test_bad_arguments_raise(kwargs, match):
    with pytest.raises(ValueError, match=match):
        GradRegModel(_tanh_mlp(), **kwargs)


def test_label_count_mismatch_raises():
    model = GradRegModel(_tanh_mlp())
    with pytest.raises(Exception, match="one label per input example"):
        model._forward_with_penalty(tf.zeros((3, 3)), np.array([0, 1]), False)


@pytest.mark.parametrize("fraction", [0.0, 1.5, float("nan"), "half"])
def test_bad_penalty_fraction_raises(fraction):
    with pytest.raises(ValueError, match="penalty_fraction"):
        GradRegModel(_tanh_mlp(), penalty_fraction=fraction)


def test_numpy_scalars_are_valid():
    model = GradRegModel(_tanh_mlp(), c=np.float32(0.1), fd_step=np.float32(0.01),
                         method="finite_difference")
    assert model.c == pytest.approx(0.1) and model.fd_step == pytest.approx(0.01)
    model.c = np.float64(0.2)
    assert model.c == pytest.approx(0.2)


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), np.float32("nan")])
def test_non_finite_fd_step_raises(bad):
    with pytest.raises(ValueError, match="fd_step"):
        GradRegModel(_tanh_mlp(), fd_step=bad)


@pytest.mark.parametrize("labels", [np.array([0.6, 1.4]), np.array([[0.5], [1.0]])])
def test_fractional_labels_raise_in_fit(labels):
    model = GradRegModel(_tanh_mlp())
    model.compile("sgd", _sparse_ce())
    with pytest.raises(Exception, match="integer class indices"):
        model.fit(np.zeros((2, 3), "float32"), labels, verbose=0)


def test_logits_base_with_probability_loss_warns():
    model = GradRegModel(_tanh_mlp())
    model.compile("sgd", "sparse_categorical_crossentropy")
    with pytest.warns(UserWarning, match="from_logits=False"):
        model.fit(np.zeros((2, 3), "float32"), np.array([0, 1]), verbose=0)
    softmax_base = keras.Sequential(
        [keras.Input((3,)), keras.layers.Dense(4, activation="softmax")])
    quiet = GradRegModel(softmax_base)
    quiet.compile("sgd", "sparse_categorical_crossentropy")
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        quiet.fit(np.zeros((2, 3), "float32"), np.array([0, 1]), verbose=0)


def _two_inputs():
    a, b = keras.Input((3,)), keras.Input((2,))
    return keras.Model([a, b], keras.layers.Dense(4)(keras.layers.Concatenate()([a, b])))


def _two_outputs():
    inputs = keras.Input((3,))
    return keras.Model(inputs, [keras.layers.Dense(4)(inputs), keras.layers.Dense(2)(inputs)])


@pytest.mark.parametrize(
    "make_base,match",
    [(_two_inputs, "2 inputs"), (_two_outputs, "2 outputs"),
     (lambda: keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)]),
      "single-logit")],
)
def test_unsupported_bases_raise_at_construction(make_base, match):
    with pytest.raises(ValueError, match=match):
        GradRegModel(make_base())


class _TwoHeads(keras.Model):
    def __init__(self):
        super().__init__()
        self.a, self.b = keras.layers.Dense(4), keras.layers.Dense(2)

    def call(self, x):
        return self.a(x), self.b(x)


def test_unsupported_data_and_subclassed_multi_output_raise_before_training():
    x, y = np.zeros((4, 3), "float32"), np.array([0, 1, 2, 3])
    model = GradRegModel(_tanh_mlp())
    model.compile("sgd", _sparse_ce())
    with pytest.raises(ValueError, match="Inputs must be one tensor"):
        model.fit({"a": x}, y, verbose=0)
    with pytest.raises(ValueError, match="Labels must be one tensor"):
        model.fit(x, {"a": y}, verbose=0)
    heads = GradRegModel(_TwoHeads())
    heads.compile("sgd", _sparse_ce())
    with pytest.raises(Exception, match="several outputs"):
        heads.fit(x, y, verbose=0)


def test_assigning_c_variable_directly_is_checked():
    model = GradRegModel(_tanh_mlp(), c=0.1)
    model.compile("sgd", _sparse_ce())
    with pytest.raises(AttributeError):
        model.c_variable = keras.Variable(-1.0)
    model.c_variable.assign(-1.0)
    with pytest.raises(Exception, match="c must be a finite number >= 0"):
        model.fit(np.zeros((2, 3), "float32"), np.array([0, 1]), verbose=0)
