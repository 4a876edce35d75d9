"""The Keras-private API keras_gradreg relies on is still there (fails loudly)."""

import inspect

import keras
import numpy as np

from keras_gradreg import GradRegModel
from keras_gradreg import _keras_compat


def test_overridden_private_methods_keep_their_signatures():
    for name, arguments in _keras_compat.OVERRIDDEN.items():
        method = getattr(keras.Model, name, None)
        assert method is not None, (
            f"keras.Model.{name} is gone (Keras {keras.__version__}): "
            "update keras_gradreg/_keras_compat.py")
        parameters = list(inspect.signature(method).parameters)
        assert parameters[1:] == list(arguments), (
            f"keras.Model.{name}{inspect.signature(method)} changed "
            f"(Keras {keras.__version__}): update keras_gradreg/_keras_compat.py")


def test_private_attributes_exist():
    model = GradRegModel(keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)]))
    assert hasattr(model, "_distribute_strategy")
    model.compile("sgd", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    tracker = _keras_compat.loss_tracker(model)
    assert isinstance(tracker, keras.metrics.Mean) and tracker.name == "loss"
    assert not _keras_compat.in_multi_worker_mode()
    assert [v.name for v in _keras_compat.own_variables(model)] == ["c"]


def test_multi_worker_extended_has_in_multi_worker_mode():
    from tensorflow.python.distribute import collective_all_reduce_strategy as cars

    assert hasattr(cars.CollectiveAllReduceExtended, "_in_multi_worker_mode")


def test_wrapper_builds_and_logs_through_the_overrides():
    model = GradRegModel(keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)]))
    model.compile("sgd", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    history = model.fit(np.ones((4, 3), "float32"), np.array([0, 1, 0, 1]), verbose=0)
    assert history.history["loss"][0] > 0
