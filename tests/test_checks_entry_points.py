"""Every public entry point that validates its arguments through
keras_gradreg._checks rejects NaN, inf, bools and strings the same way, with
an error naming the argument, and accepts NumPy scalars."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_gradreg import AdversarialTrainingModel
from keras_gradreg import GradRegModel
from keras_gradreg import attacks
from keras_gradreg import audio
from keras_gradreg import callbacks
from keras_gradreg import datasets
from keras_gradreg import models

# Every public entry point that validates through _checks -------------------
#
# Each case: (id, make(value) calling the entry point with ``value`` for one
# argument, the argument's name as messages spell it, its kind, a valid
# value). Kinds: "number" (a finite real; NumPy scalars accepted), "integer"
# (NumPy integers accepted), "choice" (one of a few names), and
# "finite" (a number where bools and strings have another meaning, so only
# NaN and inf are fed).


def _classifier():
    return keras.Sequential([keras.Input((4,)), keras.layers.Dense(3)])


def _gradreg(**kwargs):
    return GradRegModel(_classifier(), **kwargs)


def _adversarial(**kwargs):
    settings = {"eps": 0.1, "step_size": 0.1, "steps": 1, **kwargs}
    return AdversarialTrainingModel(_classifier(), **settings)


def _recipe(name, **kwargs):
    return getattr(AdversarialTrainingModel, name)(_classifier(), **kwargs)


def _set_c(value):
    _gradreg(c=0.1).c = value


def _mfcc_layer(**kwargs):
    return audio.MFCC(**kwargs)


def _mfcc(**kwargs):
    return audio.mfcc(tf.zeros((4000,)), **kwargs)


def _probe():
    return np.full((2, 4), 0.5, "float32"), np.array([0, 1])


def _robust_accuracy_callback(**kwargs):
    settings = {"eps": 0.1, **kwargs}
    return callbacks.RobustAccuracyCallback(_probe(), lambda m, x, y, eps: x, **settings)


def _gradient_norm_logger(tmp_path, **kwargs):
    return callbacks.GradientNormLogger(str(tmp_path), _probe(), **kwargs)


def _weight_histogram_logger(tmp_path, **kwargs):
    return callbacks.WeightHistogramLogger(str(tmp_path), **kwargs)


def _scheduled(value):
    model = _gradreg(c=0.3)
    schedule = callbacks.PenaltySchedule(lambda epoch, c: value)
    schedule.set_model(model)
    schedule.on_train_begin()
    schedule.on_epoch_begin(2)


def _hparams(tmp_path, value):
    return callbacks.HParamsLogger(str(tmp_path), {"lr": value})


def _log_hparams(tmp_path, value):
    pytest.importorskip("tensorboard")
    callbacks.log_hparams(str(tmp_path), {"lr": value})


def _log_robustness(tmp_path, value):
    callbacks.log_robustness(str(tmp_path), {"clean": 0.9, "noise": {value: 0.5}})


def _network(builder, **kwargs):
    return getattr(models, builder)(**kwargs)


def _to_arrays(value):
    pairs = tf.data.Dataset.from_tensor_slices((np.zeros((3, 2)), np.arange(3)))
    return datasets.to_arrays(pairs, limit=value)


def _load(name, **options):
    return datasets.load(name, "train", data_dir="/nonexistent", **options)


def _square(**kwargs):
    x, y = _probe()
    return attacks.square(_classifier(), x, y, 0.1, queries=2, seed=0, **kwargs)


def _autoattack(**kwargs):
    x, y = _probe()
    return attacks.autoattack(_classifier(), x, y, 0.1, verbose=0, **kwargs)


ENTRY_POINTS = [
    ("GradRegModel.c", lambda v, d: _gradreg(c=v), "c", "number", 0.1),
    ("GradRegModel.fd_step", lambda v, d: _gradreg(fd_step=v), "fd_step",
     "number", 0.01),
    ("GradRegModel.penalty_fraction",
     lambda v, d: _gradreg(penalty_fraction=v), "penalty_fraction", "number",
     0.5),
    ("GradRegModel.method", lambda v, d: _gradreg(method=v), "method",
     "choice", None),
    ("GradRegModel.c setter", lambda v, d: _set_c(v), "c", "number", 0.2),
    *[(f"AdversarialTrainingModel.{name}",
       lambda v, d, name=name: _adversarial(**{name: v}), name, kind, valid)
      for name, kind, valid in [
          ("eps", "number", 0.1), ("step_size", "number", 0.1),
          ("steps", "integer", 2), ("start_radius", "number", 0.1),
          ("confidence", "number", 10.0), ("clip_min", "number", -1.0),
          ("clip_max", "number", 2.0), ("seed", "integer", 3),
          ("c", "number", 0.1), ("loss", "choice", None)]],
    *[(f"AdversarialTrainingModel.{recipe}",
       lambda v, d, recipe=recipe: _recipe(recipe, eps=v), "eps", "number",
       0.1) for recipe in ("fgsm_rs", "n_fgsm", "pgd")],
    ("AdversarialTrainingModel.pgd steps",
     lambda v, d: _recipe("pgd", eps=0.1, steps=v), "steps", "integer", 3),
    *[(f"MFCC.{name}", lambda v, d, name=name: _mfcc_layer(**{name: v}), name,
       kind, valid)
      for name, kind, valid in [
          ("sample_rate", "integer", 16000), ("frame_length", "integer", 320),
          ("frame_step", "integer", 160), ("num_mel_bins", "integer", 40),
          ("num_coefficients", "integer", 13),
          ("lower_edge_hertz", "number", 60.0),
          ("upper_edge_hertz", "number", 3000.0),
          ("log_offset", "number", 1e-3)]],
    *[(f"mfcc.{name}", lambda v, d, name=name: _mfcc(**{name: v}), name, kind,
       valid)
      for name, kind, valid in [
          ("frame_length", "integer", 320), ("upper_edge_hertz", "number", 3000.0),
          ("log_offset", "number", 1e-3)]],
    ("callbacks.RobustAccuracyCallback.eps",
     lambda v, d: _robust_accuracy_callback(eps=v), "eps", "number", 0.1),
    ("callbacks.RobustAccuracyCallback.batch_size",
     lambda v, d: _robust_accuracy_callback(batch_size=v), "batch_size",
     "integer", 2),
    ("callbacks.GradientNormLogger.every_n_steps",
     lambda v, d: _gradient_norm_logger(d, every_n_steps=v), "every_n_steps",
     "integer", 2),
    ("callbacks.GradientNormLogger.run", lambda v, d: _gradient_norm_logger(d, run=v),
     "run", "choice", None),
    ("callbacks.WeightHistogramLogger.every_n_steps",
     lambda v, d: _weight_histogram_logger(d, every_n_steps=v),
     "every_n_steps", "integer", 2),
    ("callbacks.PenaltySchedule's c", lambda v, d: _scheduled(v), "c", "number", 0.2),
    ("callbacks.HParamsLogger.hparams", lambda v, d: _hparams(d, v), "hparams['lr']",
     "finite", 0.01),
    ("log_hparams.hparams", lambda v, d: _log_hparams(d, v), "hparams['lr']",
     "finite", 0.01),
    ("log_robustness eps keys", lambda v, d: _log_robustness(d, v), "eps",
     "finite", 0.1),
    ("mnist_cnn.num_classes",
     lambda v, d: _network("mnist_cnn", num_classes=v), "num_classes",
     "integer", 4),
    *[(f"{builder}.{name}",
       lambda v, d, builder=builder, name=name: _network(builder, **{name: v}),
       name, kind, valid)
      for builder in ("cifar10_cnn", "speech_cnn")
      for name, kind, valid in [("num_classes", "integer", 4),
                                ("dropout", "number", 0.25)]],
    ("datasets.to_arrays.limit", lambda v, d: _to_arrays(v), "limit",
     "integer", 2),
    ("datasets.load(cifar10).scale", lambda v, d: _load("cifar10", scale=v),
     "scale", "choice", None),
    ("datasets.load(speech_commands).features",
     lambda v, d: _load("speech_commands", features=v), "features", "choice",
     None),
    ("attacks.square.p_init", lambda v, d: _square(p_init=v), "p_init",
     "number", 0.5),
    ("attacks.autoattack.version", lambda v, d: _autoattack(version=v),
     "version", "choice", None),
]

FED = {"nan": float("nan"), "inf": float("inf"), "bool": True, "string": "1"}


def _expected_error(kind: str, fed: str):
    """The error each kind of argument raises for each fed value."""
    if kind == "choice":
        return ValueError if fed == "string" else TypeError
    if kind == "integer" or fed in ("bool", "string"):
        return TypeError
    return ValueError


@pytest.mark.parametrize(
    "make, name, kind, valid", [case[1:] for case in ENTRY_POINTS],
    ids=[case[0] for case in ENTRY_POINTS],
)
def test_entry_points_check_numbers_the_same_way(
    tmp_path, make, name, kind, valid
):
    """NaN, inf, a bool and a string are rejected with an error naming the
    argument; a NumPy scalar is accepted (one test per entry point: each
    test costs a Keras `clear_session()`)."""
    for fed, value in FED.items():
        if kind == "finite" and fed in ("bool", "string"):
            continue  # valid hyperparameter values
        error = _expected_error(kind, fed)
        with pytest.raises(error) as raised:
            make(value, tmp_path)
        message = str(raised.value)
        assert f"{name} must be" in message, (fed, message)
        if error is TypeError:  # the old validators raised ValueError: still one
            assert isinstance(raised.value, ValueError), fed
        else:
            assert not isinstance(raised.value, TypeError), (fed, message)
    if kind == "choice":
        with pytest.raises(TypeError, match=f"{name} must be one of"):
            make(np.float32(1.0), tmp_path)
    else:
        make(np.int64(valid) if kind == "integer" else np.float32(valid),
             tmp_path)  # no error
