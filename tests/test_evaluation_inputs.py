"""Evaluation refuses data and settings it cannot use, with messages that
say what to pass instead."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_gradreg.evaluation import RobustnessReport
from keras_gradreg.evaluation import robust_accuracy


def _model():
    return keras.Sequential([keras.Input((5,)), keras.layers.Dense(3)])


def _data(n=8):
    rng = np.random.default_rng(0)
    return rng.uniform(size=(n, 5)).astype("float32"), rng.integers(0, 3, n)


@pytest.mark.parametrize("batched", [False, True])
def test_a_dataset_of_dicts_is_refused_with_the_map_to_use(batched):
    x, y = _data()
    data = tf.data.Dataset.from_tensor_slices({"image": x, "label": y})
    data = data.batch(4) if batched else data
    with pytest.raises(TypeError, match=r"Dataset of dicts \(keys \['image', "
                       r"'label'\]\).*d\['image'\], d\['label'\]"):
        robust_accuracy(_model(), data, "fgsm", 0.1, verbose=0)
    report = RobustnessReport({"m": _model()}, ["fgsm"], [0.1], verbose=0)
    with pytest.raises(TypeError, match="Dataset of dicts"):
        report.run(data)


def test_a_dataset_of_inputs_alone_is_refused():
    x, _ = _data()
    with pytest.raises(TypeError, match=r"Dataset of \(x, y\) elements"):
        robust_accuracy(_model(), tf.data.Dataset.from_tensor_slices(x), None,
                        verbose=0)


@pytest.mark.parametrize("eps_values", [None, object()])
def test_report_needs_eps_values(eps_values):
    with pytest.raises(TypeError, match="eps_values must be a radius > 0 or an "
                       "iterable of them"):
        RobustnessReport({"m": _model()}, ["fgsm"], eps_values)
