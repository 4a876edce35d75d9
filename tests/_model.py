"""The small network, data and loss that the GradRegModel tests in
test_model.py, test_model_argument_checks.py and
test_model_penalty_options.py share."""

import keras
import numpy as np


def _tanh_mlp(dtype="float32", inputs=3, classes=4, seed=0):
    init = keras.initializers.GlorotNormal(seed=seed)
    return keras.Sequential(
        [
            keras.Input((inputs,), dtype=dtype),
            keras.layers.Dense(5, activation="tanh", dtype=dtype,
                               kernel_initializer=init, bias_initializer="ones"),
            keras.layers.Dense(classes, dtype=dtype, kernel_initializer=init),
        ]
    )


def _data(n=32, inputs=3, classes=4, dtype="float32", seed=0):
    rng = np.random.default_rng(seed)
    return (
        rng.normal(size=(n, inputs)).astype(dtype),
        rng.integers(0, classes, size=n).astype("int32"),
    )


def _sparse_ce():
    return keras.losses.SparseCategoricalCrossentropy(from_logits=True)
