"""Tests for keras_gradreg.callbacks.RobustAccuracyCallback: robust accuracy
in the history and TensorBoard against the test's own attack, EarlyStopping
on it, and attacks given by name."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_gradreg.callbacks import RobustAccuracyCallback

from _callbacks import EPOCHS  # tests/ is on sys.path
from _callbacks import _base
from _callbacks import _compile
from _callbacks import _data
from _callbacks import _fgsm_xent
from _callbacks import _Recorder
from _callbacks import _scalar


def _accuracy_under(model, attack, x, y, eps, **kwargs):
    logits = model.predict(attack(model, x, y, eps, **kwargs), verbose=0)
    return float(np.mean(np.argmax(logits, axis=1) == y))


def test_robust_accuracy_in_history_and_tensorboard(tmp_path):
    model = _compile(_base())
    x, y = _data(48)
    x_val, y_val = _data(23, seed=1)
    # Arrays split into uneven batches of 7, and a dataset of batches of 5.
    from_arrays = RobustAccuracyCallback(
        (x_val, y_val), _fgsm_xent, eps=0.05, log_dir=str(tmp_path),
        batch_size=7, clip_max=0.9,
    )
    from_dataset = RobustAccuracyCallback(
        tf.data.Dataset.from_tensor_slices((x_val, y_val)).batch(5),
        lambda *args, **kwargs: _fgsm_xent(*args, **kwargs), eps=0.05,
        clip_max=0.9,
    )
    reference = _Recorder(
        lambda: _accuracy_under(
            model, _fgsm_xent, x_val, y_val, 0.05, clip_max=0.9
        )
    )
    history = model.fit(x, y, batch_size=8, epochs=EPOCHS, verbose=0,
                        callbacks=[from_arrays, from_dataset, reference])
    assert from_arrays.log_key == "val_robust_accuracy_fgsm_xent"
    assert from_dataset.log_key == "val_robust_accuracy_custom"
    for callback in (from_arrays, from_dataset):
        values = history.history[callback.log_key]
        np.testing.assert_allclose(values, reference.records, atol=1e-12)
    steps, logged = _scalar(
        str(tmp_path / "validation"), "robust_accuracy/fgsm_xent"
    )
    assert steps == list(range(EPOCHS))
    np.testing.assert_allclose(logged, reference.records, rtol=1e-6)


def test_early_stopping_monitors_robust_accuracy():
    model = _compile(_base())
    x, y = _data(16)
    callback = RobustAccuracyCallback((x, y), _fgsm_xent, eps=0.05)
    # No accuracy improves by 2, so training stops after epoch 1 exactly when
    # EarlyStopping finds the key (a missing key never stops training).
    stopper = keras.callbacks.EarlyStopping(
        monitor=callback.log_key, mode="max", min_delta=2.0, patience=0
    )
    history = model.fit(x, y, epochs=6, verbose=0,
                        callbacks=[callback, stopper])
    assert len(history.history["loss"]) == 2
    assert stopper.stopped_epoch == 1


def test_attack_by_name_uses_keras_gradreg_attacks():
    attacks = pytest.importorskip("keras_gradreg.attacks")
    model = _compile(_base())
    x, y = _data(16)
    callback = RobustAccuracyCallback((x, y), "fgsm", eps=0.05)
    reference = _Recorder(
        lambda: _accuracy_under(model, attacks.fgsm, x, y, 0.05)
    )
    history = model.fit(x, y, epochs=1, verbose=0,
                        callbacks=[callback, reference])
    assert callback.log_key == "val_robust_accuracy_fgsm"
    np.testing.assert_allclose(
        history.history["val_robust_accuracy_fgsm"], reference.records
    )
