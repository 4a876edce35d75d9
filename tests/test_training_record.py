"""TrainingRecord and resumable: a fit's seconds and history across processes."""

import json
import os

import keras
import numpy as np
import pytest

from keras_gradreg.callbacks import TrainingRecord
from keras_gradreg.callbacks import resumable

X = np.linspace(0, 1, 16, dtype="float32").reshape(8, 2)
Y = X.sum(axis=1)


def model():
    keras.utils.set_random_seed(0)
    net = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    net.compile("sgd", "mse")
    return net


class Interrupt(keras.callbacks.Callback):
    """Stops the process (an exception) at the end of epoch ``after``."""

    def __init__(self, after):
        super().__init__()
        self.after = after

    def on_epoch_end(self, epoch, logs=None):
        if epoch + 1 == self.after:
            raise KeyboardInterrupt


def fit_until(folder, epochs, settings, interrupt_after=None):
    callbacks, record = resumable(folder, settings)
    extra = [] if interrupt_after is None else [Interrupt(interrupt_after)]
    net = model()
    try:
        net.fit(X, Y, epochs=epochs, batch_size=4, verbose=0,
                callbacks=callbacks + extra)
    except KeyboardInterrupt:
        pass
    return net, record


def test_an_interrupted_fit_goes_on_and_keeps_its_earlier_epochs(tmp_path):
    folder = str(tmp_path / "backup")
    _, first = fit_until(folder, 5, {"lr": 1}, interrupt_after=2)
    assert first.epochs_done == 2
    saved = json.loads((tmp_path / "backup" / "progress.json").read_text())
    assert saved["epochs_done"] == 2 and len(saved["wall"]) == 2

    _, second = fit_until(folder, 5, {"lr": 1})
    assert second.resumed_at == 2 and second.epochs_done == 5
    assert second.wall[:2] == saved["wall"] and len(second.cpu) == 5
    assert second.history["loss"][:2] == saved["history"]["loss"]
    assert len(second.history["loss"]) == 5
    assert second.fit_seconds()["wall"] > saved["fit"]["wall"]

    # The same five epochs in one process give the same losses: the
    # checkpoint brought back the weights and optimizer, not just a count.
    _, whole = fit_until(str(tmp_path / "whole"), 5, {"lr": 1})
    np.testing.assert_allclose(second.history["loss"], whole.history["loss"],
                               rtol=1e-5)


def test_other_settings_start_afresh_and_drop_the_checkpoint(tmp_path):
    folder = str(tmp_path / "backup")
    fit_until(folder, 5, {"lr": 1}, interrupt_after=2)
    callbacks, record = resumable(folder, {"lr": 2})
    assert record.resumed_at == 0 and record.wall == []
    assert os.listdir(folder) == []  # the stale weights are gone
    assert isinstance(callbacks[0], keras.callbacks.BackupAndRestore)


def test_a_checkpoint_older_than_the_record_wins(tmp_path):
    """Killed after the record's write but before the checkpoint's: the
    epoch Keras goes on from decides, and the record drops what follows."""
    folder = str(tmp_path / "backup")
    fit_until(folder, 5, {}, interrupt_after=3)
    path = tmp_path / "backup" / "training_metadata.json"
    path.write_text(json.dumps({"epoch": 2, "batch": 0}))  # one epoch behind
    _, record = fit_until(folder, 5, {})
    assert record.resumed_at == 2
    assert len(record.wall) == len(record.history["loss"]) == 5


def test_a_record_of_version_0_1_examples_is_taken_up(tmp_path):
    path = tmp_path / "progress.json"
    path.write_text(json.dumps({"epochs_done": 2, "seconds": 30.0,
                                "history": {"loss": [2.0, 1.0]}}))
    record = TrainingRecord(str(path))
    assert record.resumed_at == 2 and record.history == {"loss": [2.0, 1.0]}
    assert record.fit_seconds()["wall"] >= 30.0
    assert record.fit_seconds()["cpu"] is None  # not recorded back then
    assert TrainingRecord(str(path), settings={"a": 1}).resumed_at == 0


@pytest.mark.parametrize("verbose, printed", [(0, False), (1, True)])
def test_verbose_prints_each_epoch(capsys, verbose, printed):
    model().fit(X, Y, epochs=2, verbose=0,
                callbacks=[TrainingRecord(verbose=verbose)])
    out = capsys.readouterr().out
    assert ("epoch 2/2:" in out) == printed
