"""The training models refuse bad data before any training step."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_gradreg import AdversarialTrainingModel
from keras_gradreg import GradRegModel


class _CountSteps(keras.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.batches = 0

    def on_train_batch_begin(self, batch, logs=None):
        self.batches += 1

    on_test_batch_begin = on_train_batch_begin


def _image_model(make=GradRegModel):
    base = keras.Sequential([
        keras.Input((8, 8, 3)), keras.layers.Flatten(), keras.layers.Dense(4)])
    if make is GradRegModel:
        model = GradRegModel(base, c=0.1)
    else:
        model = AdversarialTrainingModel.n_fgsm(base, eps=0.1)
    model.compile("sgd", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    return model


def _tabular_model():
    base = keras.Sequential([keras.Input((3,)), keras.layers.Dense(4)])
    model = GradRegModel(base, c=0.1)
    model.compile("sgd", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    return model


_X = np.random.default_rng(0).uniform(size=(8, 3)).astype("float32")
_Y = np.array([0, 1, 2, 3] * 2)


@pytest.mark.parametrize("make", [GradRegModel, AdversarialTrainingModel])
@pytest.mark.parametrize("call", ["fit", "evaluate", "predict"])
def test_channels_first_data_for_a_channels_last_base_is_refused(make, call):
    model = _image_model(make)
    x = np.zeros((64, 3, 8, 8), "float32")
    counter = _CountSteps()
    arguments = (x,) if call == "predict" else (x, np.zeros(64, "int32"))
    with pytest.raises(ValueError, match=r"x is shaped \(64, 3, 8, 8\) but the "
                       r"base model takes inputs shaped \(batch, 8, 8, 3\).*"
                       r"Transpose"):
        getattr(model, call)(*arguments, verbose=0, callbacks=[counter])
    assert counter.batches == 0


def test_a_dataset_of_the_wrong_shape_is_refused_when_traced():
    model = _image_model()
    data = tf.data.Dataset.from_tensor_slices(
        (np.zeros((8, 3, 8, 8), "float32"), np.zeros(8, "int32"))).batch(4)
    with pytest.raises(ValueError, match="base model takes inputs shaped"):
        model.fit(data, verbose=0)


def test_a_base_with_none_sizes_takes_any_size_there():
    base = keras.Sequential([
        keras.Input((None, 3)), keras.layers.GlobalAveragePooling1D(),
        keras.layers.Dense(4)])
    model = GradRegModel(base, c=0.1)
    model.compile("sgd", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    model.fit(np.zeros((4, 7, 3), "float32"), np.arange(4), verbose=0)
    assert model.predict(np.zeros((2, 11, 3), "float32"), verbose=0).shape == (2, 4)
    with pytest.raises(ValueError, match=r"shaped \(batch, any, 3\)"):
        model.fit(np.zeros((4, 7, 2), "float32"), np.arange(4), verbose=0)


@pytest.mark.parametrize("call", ["fit", "evaluate"])
@pytest.mark.parametrize(
    "labels, error, match",
    [(np.array([0.0, np.nan, 1.0, 2.0] * 2), ValueError,
      r"y holds NaN or infinite labels \(the first at index 1\)"),
     (np.array(["cat", "dog"] * 4), TypeError, "y must hold numbers, got dtype <U3"),
     (np.array([0, 1, 2, 4] * 2), ValueError, r"class indices in \[0, 4\).*y\[3\] is 4"),
     (np.zeros(5), ValueError, "y has 5 entries but x has 8 examples")],
)
def test_bad_labels_are_refused_before_any_step(call, labels, error, match):
    model, counter = _tabular_model(), _CountSteps()
    with pytest.raises(error, match=match):
        getattr(model, call)(_X, labels, verbose=0, callbacks=[counter])
    assert counter.batches == 0


@pytest.mark.parametrize("call", ["fit", "evaluate"])
def test_empty_arrays_are_refused(call):
    model = _tabular_model()
    with pytest.raises(ValueError, match=f"x holds no examples .*{call} needs"):
        getattr(model, call)(np.zeros((0, 3), "float32"), np.zeros(0), verbose=0)


@pytest.mark.parametrize("call", ["fit", "evaluate"])
@pytest.mark.parametrize(
    "weight, match",
    [(np.nan, r"sample_weight\[2\] is nan"), (-1.0, r"sample_weight\[2\] is -1.0")])
def test_nan_or_negative_sample_weights_are_refused(call, weight, match):
    model, counter = _tabular_model(), _CountSteps()
    weights = np.ones(8, "float32")
    weights[2] = weight
    with pytest.raises(ValueError, match="finite weights >= 0; " + match):
        getattr(model, call)(_X, _Y, sample_weight=weights, verbose=0,
                             callbacks=[counter])
    assert counter.batches == 0


def test_bad_validation_data_is_refused_before_training():
    model, counter = _tabular_model(), _CountSteps()
    with pytest.raises(ValueError, match="validation_data: y holds NaN"):
        model.fit(_X, _Y, validation_data=(_X, np.full(8, np.nan)), verbose=0,
                  callbacks=[counter])
    assert counter.batches == 0


def test_negative_sample_weights_in_a_dataset_stop_the_step():
    model = _tabular_model()
    data = tf.data.Dataset.from_tensor_slices(
        (_X, _Y, -np.ones(8, "float32"))).batch(4)
    with pytest.raises(tf.errors.InvalidArgumentError, match="finite weights >= 0"):
        model.fit(data, verbose=0)


def test_nan_labels_in_a_dataset_get_the_label_message_in_evaluate():
    model = _tabular_model()
    data = tf.data.Dataset.from_tensor_slices((_X, np.full(8, np.nan))).batch(4)
    with pytest.raises(tf.errors.InvalidArgumentError, match="integer class indices"):
        model.evaluate(data, verbose=0)
