"""One process of the exact-resume test (run as a subprocess).

Usage: python _resume_worker.py interrupt|resume FOLDER

``interrupt`` trains each randomized model without interruption (its
weights go to ``FOLDER/<kind>_reference.npz``) and then again with
``BackupAndRestore`` until an error stops it after epoch 2;
``resume`` builds the same models in this fresh process and lets
``BackupAndRestore`` finish the fit (weights to ``FOLDER/<kind>_resumed.npz``).
"""

import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from keras_gradreg import AdversarialTrainingModel  # noqa: E402
from keras_gradreg import GradRegModel  # noqa: E402

EPOCHS = 4
STOP_AFTER_EPOCH = 1  # zero-based: two epochs are done when it stops


def _model(kind: str) -> keras.Model:
    base = keras.Sequential(
        [keras.Input((6,)), keras.layers.Dense(16, activation="tanh"),
         keras.layers.Dense(3)]
    )
    if kind == "n_fgsm":
        model = AdversarialTrainingModel.n_fgsm(base, eps=0.1)
    elif kind == "pgd":
        model = AdversarialTrainingModel.pgd(base, eps=0.1, steps=3, seed=5)
    else:
        model = GradRegModel(base, c=0.5, penalty_fraction=0.5)
    model.compile(
        keras.optimizers.Adam(0.01),
        keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    return model


class _Stop(keras.callbacks.Callback):
    def on_epoch_end(self, epoch, logs=None):
        if epoch == STOP_AFTER_EPOCH:
            raise RuntimeError("simulated interruption")


def _fit(kind: str, callbacks) -> tuple:
    keras.backend.clear_session()
    keras.utils.set_random_seed(1)
    rng = np.random.default_rng(0)
    x = rng.uniform(size=(64, 6)).astype("float32")
    y = rng.integers(0, 3, size=64)
    model = _model(kind)
    history = model.fit(x, y, batch_size=16, epochs=EPOCHS, shuffle=False,
                        verbose=0, callbacks=callbacks)
    return model, history


def _save(model, path: str) -> None:
    np.savez(path, *[w.numpy() for w in model.trainable_weights])


def main(phase: str, folder: str) -> None:
    tf.config.experimental.enable_op_determinism()
    for kind in ("n_fgsm", "pgd", "penalty_fraction"):
        backup = keras.callbacks.BackupAndRestore(
            os.path.join(folder, f"{kind}_backup"), save_freq="epoch")
        if phase == "interrupt":
            model, _ = _fit(kind, [])
            _save(model, os.path.join(folder, f"{kind}_reference.npz"))
            try:
                _fit(kind, [backup, _Stop()])
            except RuntimeError:
                continue
            raise AssertionError("the interrupted fit was not interrupted")
        model, history = _fit(kind, [backup])
        epochs_run = len(history.history["loss"])
        assert epochs_run == EPOCHS - STOP_AFTER_EPOCH - 1, epochs_run
        _save(model, os.path.join(folder, f"{kind}_resumed.npz"))


if __name__ == "__main__":
    main(*sys.argv[1:])
