"""Tests for keras_gradreg.callbacks.PenaltySchedule: c set each epoch
without retracing and logged, training as with that c, saved with the
model, and the values and models it refuses."""

import os

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_gradreg import GradRegModel
from keras_gradreg.callbacks import PenaltySchedule

from _callbacks import EPOCHS  # tests/ is on sys.path
from _callbacks import _base
from _callbacks import _compile
from _callbacks import _data
from _callbacks import _scalar


class _TraceCountingModel(GradRegModel):
    """Counts how often ``train_step`` is traced (its Python body runs)."""

    traces = 0

    def train_step(self, data):
        type(self).traces += 1
        return super().train_step(data)


def _schedule_model(c=0.0, base=None, cls=GradRegModel):
    model = cls(base or _base(), c=c)
    model.compile(
        keras.optimizers.SGD(0.1),
        keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    return model


def _ramp(epoch, c):
    return 0.25 * (epoch + 1)


def test_penalty_schedule_sets_c_each_epoch_and_logs_it(tmp_path):
    x, y = _data(16)
    seen = []
    model = _schedule_model(c=0.0, cls=_TraceCountingModel)
    _TraceCountingModel.traces = 0
    schedule = PenaltySchedule(
        lambda epoch, c: seen.append((epoch, c)) or _ramp(epoch, c),
        log_dir=str(tmp_path),
    )
    seen_traces = []
    traces = keras.callbacks.LambdaCallback(
        on_epoch_end=lambda epoch, logs: seen_traces.append(
            _TraceCountingModel.traces
        )
    )
    history = model.fit(
        x, y, batch_size=8, epochs=EPOCHS, verbose=0,
        callbacks=[schedule, traces],
    )
    expected = [0.25, 0.5, 0.75]
    # The schedule got the epoch and the previous epoch's c.
    assert seen == [(0, 0.0), (1, 0.25), (2, 0.5)]
    np.testing.assert_allclose(history.history["c"], expected)
    steps, values = _scalar(os.path.join(tmp_path, "train"), "c")
    assert steps == [0, 1, 2]
    np.testing.assert_allclose(values, expected)
    # Changing c never retraced the train step.
    assert seen_traces[0] >= 1 and seen_traces == [seen_traces[0]] * EPOCHS


def test_penalty_schedule_trains_as_a_model_built_with_that_c():
    x, y = _data(16)
    first = _base()
    second = keras.models.clone_model(first)
    initial = first.get_weights()
    second.set_weights(initial)
    scheduled = _schedule_model(c=0.0, base=first)
    scheduled.fit(
        x, y, batch_size=8, epochs=1, shuffle=False, verbose=0,
        callbacks=[PenaltySchedule(lambda epoch, c: 5.0)],
    )
    fixed = _schedule_model(c=5.0, base=second)
    fixed.fit(x, y, batch_size=8, epochs=1, shuffle=False, verbose=0)
    for got, want in zip(scheduled.get_weights(), fixed.get_weights()):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
    # Control: without the penalty the same start ends elsewhere.
    third = keras.models.clone_model(first)
    third.set_weights(initial)
    plain = _schedule_model(c=0.0, base=third)
    plain.fit(x, y, batch_size=8, epochs=1, shuffle=False, verbose=0)
    assert not np.allclose(plain.get_weights()[0], fixed.get_weights()[0])


def test_penalty_schedule_value_survives_saving(tmp_path):
    x, y = _data(16)
    model = _schedule_model(c=0.01)
    model.fit(
        x, y, batch_size=8, epochs=2, verbose=0,
        callbacks=[PenaltySchedule(_ramp)],
    )
    path = os.path.join(tmp_path, "scheduled.keras")
    model.save(path)
    loaded = keras.models.load_model(path)
    assert loaded.c == pytest.approx(0.5)
    assert float(loaded.c_variable.numpy()) == pytest.approx(0.5)


def test_penalty_schedule_verbose_prints(capsys):
    x, y = _data(8)
    model = _schedule_model()
    model.fit(
        x, y, epochs=1, verbose=0,
        callbacks=[PenaltySchedule(lambda epoch, c: 0.125, verbose=1)],
    )
    assert "PenaltySchedule setting c to 0.125" in capsys.readouterr().out


def test_penalty_schedule_rejects_a_plain_model():
    x, y = _data(8)
    model = _compile(_base())
    with pytest.raises(TypeError, match="needs a keras_gradreg.GradRegModel"):
        model.fit(x, y, epochs=1, verbose=0,
                  callbacks=[PenaltySchedule(_ramp)])


@pytest.mark.parametrize(
    "value", [-1.0, float("nan"), float("inf"), None, "0.1", True, [0.1]]
)
def test_penalty_schedule_rejects_bad_values(value):
    model = GradRegModel(_base(), c=0.3)
    schedule = PenaltySchedule(lambda epoch, c: value)
    schedule.set_model(model)
    schedule.on_train_begin()
    with pytest.raises(ValueError, match=r"schedule\(2, c\) returned"):
        schedule.on_epoch_begin(2)
    assert model.c == pytest.approx(0.3)


def test_penalty_schedule_needs_a_callable():
    with pytest.raises(TypeError, match="schedule must be a function"):
        PenaltySchedule(0.1)


@pytest.mark.parametrize(
    "value", [1, np.float32(0.25), np.array(0.25), tf.constant(0.25)]
)
def test_penalty_schedule_accepts_numeric_scalars(value):
    model = GradRegModel(_base(), c=0.0)
    schedule = PenaltySchedule(lambda epoch, c: value)
    schedule.set_model(model)
    schedule.on_train_begin()
    schedule.on_epoch_begin(0)
    assert model.c == pytest.approx(float(value))
