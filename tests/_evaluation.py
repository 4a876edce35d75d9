"""The small network and data that the evaluation tests (test_evaluation.py,
test_evaluation_data_checks.py, test_evaluation_results.py) share."""

import keras
import numpy as np


def _mlp(seed=0, softmax=False):
    init = keras.initializers.GlorotNormal(seed=seed)
    return keras.Sequential([
        keras.Input((5,)),
        keras.layers.Dense(8, activation="tanh", kernel_initializer=init),
        keras.layers.Dense(3, kernel_initializer=init,
                           activation="softmax" if softmax else None),
    ])


def _data(n=30, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.uniform(0, 1, (n, 5)).astype("float32")
    return x, rng.integers(0, 3, n)
