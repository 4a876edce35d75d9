"""HParams: a run's hyperparameters and final metrics for TensorBoard.

TensorBoard's HParams dashboard (``tensorboard.plugins.hparams.api``) shows
one row per run: the values of its hyperparameters and of its final metrics,
as a table and as parallel coordinates, so the models of an experiment or
the points of a c sweep can be compared side by side.
"""

from __future__ import annotations

import numbers
import os
import time
from typing import Mapping, Optional, Sequence

import keras
import tensorflow as tf

from keras_gradreg import _checks
from keras_gradreg.callbacks._summary import check_log_dir


def _hparams_api():
    """Imports TensorBoard's HParams API, or says how to install it."""
    try:
        from tensorboard.plugins.hparams import api
    except ImportError as error:  # tensorflow 2.21 does not install it.
        raise ImportError(
            "Logging hyperparameters needs the tensorboard package, which "
            "tensorflow does not install: pip install tensorboard (or "
            "pip install 'keras-gradreg[examples]')."
        ) from error
    return api


def _check_hparams(hparams) -> dict:
    if not isinstance(hparams, Mapping) or not hparams:
        raise TypeError(
            "hparams must be a non-empty dict {name: value}, got "
            f"{hparams!r}."
        )
    checked = {}
    for name, value in hparams.items():
        if not isinstance(name, str) or not name:
            raise TypeError(f"hparams names must be strings, got {name!r}.")
        if isinstance(value, (bool, str)):
            checked[name] = value
        elif isinstance(value, numbers.Integral):
            checked[name] = _checks.integer(f"hparams[{name!r}]", value, None)
        elif _checks.is_number(value):
            checked[name] = _checks.number(f"hparams[{name!r}]", value)
        else:
            raise TypeError(
                f"hparams[{name!r}] is {value!r}: values must be bool, int, "
                "float or str (leave out what does not apply)."
            )
    return checked


def _check_metrics(metrics) -> dict:
    if metrics is None:
        return {}
    if not isinstance(metrics, Mapping):
        raise TypeError(
            f"metrics must be a dict {{tag: number}}, got {metrics!r}."
        )
    checked = {}
    for tag, value in metrics.items():
        if not isinstance(tag, str) or not tag:
            raise TypeError(f"metric tags must be strings, got {tag!r}.")
        if not _checks.is_number(value):  # NaN is a result: a diverged run
            raise TypeError(
                f"metrics[{tag!r}] is {value!r}: values must be numbers."
            )
        checked[tag] = float(value)
    return checked


def _names(names, default, what: str) -> list:
    if names is None:
        return list(default)
    if isinstance(names, str) or not all(isinstance(n, str) for n in names):
        raise TypeError(f"{what} must be a list of names, got {names!r}.")
    return list(names)


def log_hparams(
    log_dir,
    hparams: Mapping[str, object],
    metrics: Optional[Mapping[str, float]] = None,
    *,
    hparam_names: Optional[Sequence[str]] = None,
    metric_names: Optional[Sequence[str]] = None,
    step: int = 0,
) -> None:
    """Writes a run's hyperparameters and metrics for TensorBoard's HParams.

    Writes into ``log_dir`` itself (the run's folder, above the ``train``
    and ``validation`` folders that ``keras.callbacks.TensorBoard`` writes):

    * the hyperparameters, as one HParams session named after ``log_dir``;
    * each metric as the scalar ``<tag>`` at ``step``;
    * the experiment's configuration: the hyperparameters ``hparam_names``
      (default: the keys of ``hparams``) and the metrics ``metric_names``
      (default: the keys of ``metrics``) that the dashboard lists. Without
      it TensorBoard would list every scalar of every run as a metric.

    TensorBoard uses one configuration per log folder it serves and picks
    any run's, so give every run of one experiment the same names (pass
    the union as ``hparam_names`` / ``metric_names`` when runs differ).

    Args:
        log_dir: The run's folder, e.g. ``logs/logit_reg``.
        hparams: ``{name: value}`` with bool, int, finite float or str
            values (Python or NumPy scalars).
        metrics: ``{tag: number}``: final metrics, e.g.
            ``{"final/clean_accuracy": 0.98}``; written as scalars. NaN is
            allowed: it is what a diverged run measures.
        hparam_names: Hyperparameters the dashboard shows.
        metric_names: Metric tags the dashboard shows.
        step: Step of the metric scalars.

    Raises:
        ImportError: If the ``tensorboard`` package is not installed.
        TypeError: For names or values of the wrong types.
        ValueError: For a NaN or infinite hyperparameter.

    Example:
        >>> import os, tempfile
        >>> log_dir = os.path.join(tempfile.mkdtemp(), "logit_reg")
        >>> log_hparams(log_dir, {"regularizer": "logit_margin", "c": 0.1},
        ...             {"final/clean_accuracy": 0.98})
        >>> len(os.listdir(log_dir))  # one event file
        1
    """
    log_dir = check_log_dir(log_dir)
    hparams = _check_hparams(hparams)
    metrics = _check_metrics(metrics)
    hparam_names = _names(hparam_names, hparams, "hparam_names")
    metric_names = _names(metric_names, metrics, "metric_names")
    api = _hparams_api()
    writer = tf.summary.create_file_writer(log_dir)
    with writer.as_default():
        api.hparams_config(
            hparams=[api.HParam(name) for name in hparam_names],
            metrics=[
                api.Metric(tag, display_name=tag.rpartition("final/")[2])
                for tag in metric_names
            ],
        )
        api.hparams(hparams, trial_id=os.path.basename(
            os.path.normpath(log_dir)))
        for tag, value in metrics.items():
            tf.summary.scalar(tag, value, step=step)
    writer.close()


class HParamsLogger(keras.callbacks.Callback):
    """Records a run's hyperparameters and final metrics for HParams.

    When training ends it calls :func:`log_hparams` with ``hparams`` and,
    as metrics, the last epoch's value of each key of ``metrics`` found in
    the logs (e.g. ``"val_accuracy"``, or a
    :class:`RobustAccuracyCallback`'s ``val_robust_accuracy_fgsm``; place
    this callback after those that add keys), written as
    ``final/<key>``, plus ``final/train_seconds``: the wall time of
    ``fit``. Metrics measured after training (e.g. a
    :class:`~keras_gradreg.RobustnessReport`) can be added to the same run
    with :func:`log_hparams`.

    Args:
        log_dir: The run's folder (the ``log_dir`` of
            ``keras.callbacks.TensorBoard``).
        hparams: ``{name: value}`` with bool, int, float or str values.
        metrics: Keys of the epoch logs to record; ``None`` records every
            numeric key of the last epoch.

    Raises:
        TypeError: For bad ``hparams`` or ``metrics``.
        ValueError: For a NaN or infinite hyperparameter.
        ImportError: At training's end, if ``tensorboard`` is missing.

    Example:
        >>> import keras, numpy as np, tempfile
        >>> model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3)])
        >>> model.compile("sgd", keras.losses.SparseCategoricalCrossentropy(
        ...     from_logits=True), metrics=["accuracy"])
        >>> logger = HParamsLogger(tempfile.mkdtemp(), {"lr": 0.01},
        ...                        metrics=["accuracy"])
        >>> _ = model.fit(np.ones((8, 4)), np.zeros(8), verbose=0,
        ...               callbacks=[logger])
        >>> sorted(logger.final_metrics)
        ['final/accuracy', 'final/train_seconds']
    """

    def __init__(
        self,
        log_dir,
        hparams: Mapping[str, object],
        metrics: Optional[Sequence[str]] = None,
    ):
        super().__init__()
        self.log_dir = check_log_dir(log_dir)
        self.hparams = _check_hparams(hparams)
        self.metrics = None if metrics is None else _names(
            metrics, (), "metrics")
        self.final_metrics = {}
        self._start = None
        self._last_logs = {}

    def on_train_begin(self, logs=None):
        self._start = time.perf_counter()
        self._last_logs = {}

    def on_epoch_end(self, epoch, logs=None):
        self._last_logs = dict(logs or {})

    def on_train_end(self, logs=None):
        seconds = time.perf_counter() - self._start
        keys = self.metrics if self.metrics is not None else [
            key for key, value in self._last_logs.items()
            if isinstance(value, numbers.Real) or tf.is_tensor(value)
        ]
        self.final_metrics = {
            f"final/{key}": float(self._last_logs[key])
            for key in keys if key in self._last_logs
        }
        self.final_metrics["final/train_seconds"] = seconds
        log_hparams(self.log_dir, self.hparams, self.final_metrics)
