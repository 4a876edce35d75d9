"""The small network, data and independent margin that the attack tests
(test_attacks*.py) share."""

import keras
import numpy as np


def _mlp(features, classes, seed=0, softmax=False):
    init = keras.initializers.GlorotNormal(seed=seed)
    return keras.Sequential([
        keras.Input((features,)),
        keras.layers.Dense(8, activation="tanh", kernel_initializer=init),
        keras.layers.Dense(
            classes, kernel_initializer=init,
            activation="softmax" if softmax else None,
        ),
    ])


def _data(n=12, features=5, classes=3, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.uniform(0, 1, (n, features)).astype("float32")
    return x, rng.integers(0, classes, n)


def _margin(logits, labels):
    """Independent numpy margin max_{i != y} Z_i - Z_y."""
    logits = np.asarray(logits, "float64")
    rows = np.arange(len(labels))
    true = logits[rows, labels]
    masked = logits.copy()
    masked[rows, labels] = -np.inf
    return masked.max(axis=1) - true
