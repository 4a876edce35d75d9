"""What the training step checks: finite steps, per-example regularizer
values, grad_loss at c = 0, and custom functions that cannot be loaded."""

import warnings

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_gradreg import AdversarialTrainingModel
from keras_gradreg import GradRegModel


def _base():
    return keras.Sequential([
        keras.Input((3,)), keras.layers.Dense(8, activation="tanh"),
        keras.layers.Dense(4)])


def _data(n=16):
    rng = np.random.default_rng(0)
    return (rng.uniform(size=(n, 3)).astype("float32"),
            rng.integers(0, 4, size=n).astype("int32"))


def _compiled(model):
    model.compile(keras.optimizers.SGD(0.1),
                  keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    return model


def test_a_c_that_overflows_float32_stops_fit_naming_c_with_weights_intact():
    x, y = _data()
    model = _compiled(GradRegModel(_base(), c=3e38))
    before = [w.numpy() for w in model.trainable_weights]
    with pytest.raises(tf.errors.InvalidArgumentError,
                       match="NaN or infinite.*large c overflows float32.*lower c"):
        model.fit(x, y, batch_size=8, epochs=2, verbose=0)
    for old, new in zip(before, model.trainable_weights):
        np.testing.assert_array_equal(new.numpy(), old)


def _per_class_margin(logits, labels):
    return logits  # (batch, classes): not one value per example


@pytest.mark.parametrize("call", ["fit", "evaluate"])
def test_a_regularizer_returning_per_class_values_is_refused(call):
    x, y = _data()
    model = _compiled(GradRegModel(_base(), c=0.1, regularizer=_per_class_margin))
    with pytest.raises(ValueError, match=r"_per_class_margin must return one value "
                       r"per example, shaped \(batch,\); it returned shape \(.*, 4\)"):
        getattr(model, call)(x, y, verbose=0)


@pytest.mark.parametrize("make", [
    lambda: GradRegModel(_base(), c=0.0),
    lambda: AdversarialTrainingModel.n_fgsm(_base(), eps=0.1)])
def test_at_c_zero_train_and_validation_grad_loss_agree(make):
    x, y = _data()
    model = _compiled(make())
    history = model.fit(x, y, validation_data=(x, y), epochs=1, verbose=0).history
    assert history["grad_loss"] == [0.0] and history["val_grad_loss"] == [0.0]
    model.c = 0.5
    history = model.fit(x, y, validation_data=(x, y), epochs=1, verbose=0).history
    assert history["grad_loss"][0] > 0 and history["val_grad_loss"][0] > 0


@keras.saving.register_keras_serializable(package="keras_gradreg_tests")
def _registered_margin(logits, labels):
    return tf.reduce_max(logits, axis=-1)


def _unregistered_margin(logits, labels):
    return tf.reduce_max(logits, axis=-1)


@pytest.mark.parametrize("regularizer, name", [
    (lambda logits, labels: tf.reduce_max(logits, axis=-1), "<lambda> is a lambda"),
    (_unregistered_margin, "_unregistered_margin is not registered")])
def test_saving_an_unloadable_regularizer_warns(tmp_path, regularizer, name):
    model = GradRegModel(_base(), regularizer=regularizer)
    with pytest.warns(UserWarning, match=f"The regularizer {name}.*"
                      "register_keras_serializable"):
        model.save(tmp_path / "model.keras")


def test_saving_a_registered_regularizer_is_quiet(tmp_path):
    model = GradRegModel(_base(), regularizer=_registered_margin)
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        model.save(tmp_path / "model.keras")
    loaded = keras.models.load_model(tmp_path / "model.keras")
    assert loaded.regularizer is _registered_margin
