"""The small network and accuracy that the AutoAttack tests in
test_autoattack.py, test_autoattack_report.py and test_autoattack_art.py
share."""

import keras
import numpy as np


def _mlp(shape, classes, seed=0):
    init = keras.initializers.GlorotNormal(seed=seed)
    return keras.Sequential([
        keras.Input(shape),
        keras.layers.Flatten(),
        keras.layers.Dense(12, activation="tanh", kernel_initializer=init),
        keras.layers.Dense(classes, kernel_initializer=init),
    ])


def _accuracy(model, x, y):
    return float(np.mean(np.argmax(np.asarray(model(x)), 1) == y))
