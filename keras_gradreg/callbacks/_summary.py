"""TensorBoard writers shared by the callbacks: ``log_dir/train`` and
``log_dir/validation``, the runs ``keras.callbacks.TensorBoard`` writes."""

from __future__ import annotations

import os

import keras
import tensorflow as tf

from keras_gradreg import _checks

_RUNS = ("train", "validation")


def check_log_dir(log_dir) -> str:
    """Returns ``log_dir`` as a str path, or raises TypeError."""
    if not isinstance(log_dir, (str, os.PathLike)) or not str(log_dir):
        raise TypeError(f"log_dir must be a non-empty path, got {log_dir!r}.")
    return os.fspath(log_dir)


class WriterCallback(keras.callbacks.Callback):
    """Holds a summary writer into ``log_dir/<run>`` while a model trains.

    The writer opens when training begins (if ``log_dir`` is not None) and
    closes when it ends.

    Args:
        log_dir: TensorBoard log directory, or None to write nothing.
        run: ``"train"`` or ``"validation"``.
    """

    def __init__(self, log_dir, run: str):
        super().__init__()
        self.log_dir = None if log_dir is None else check_log_dir(log_dir)
        self.run = run
        self._writer = None

    def on_train_begin(self, logs=None):
        if self.log_dir is not None:
            self._writer = tf.summary.create_file_writer(
                os.path.join(self.log_dir, self.run)
            )

    def _write_epoch_scalar(self, tag: str, value, epoch: int) -> None:
        """Writes ``value`` as scalar ``tag`` at step ``epoch``, if logging."""
        if self._writer is not None:
            with self._writer.as_default():
                tf.summary.scalar(tag, value, step=epoch)
            self._writer.flush()

    def on_train_end(self, logs=None):
        if self._writer is not None:
            self._writer.close()
            self._writer = None


class SummaryCallback(WriterCallback):
    """Writes summaries into ``log_dir/<run>`` at epoch ends or every n steps.

    Subclasses implement ``_write(step)``, called inside the writer's default
    context. With ``every_n_steps`` the step is the global training step (the
    optimizer's iteration count) at every point, including the epoch ends, so
    that one tag never mixes epochs and steps on its x axis.
    """

    def __init__(self, log_dir, every_n_steps=None, run: str = "train"):
        _checks.choice("run", run, _RUNS)
        super().__init__(check_log_dir(log_dir), run)
        self.every_n_steps = _checks.integer(
            "every_n_steps", every_n_steps, 1, optional=True
        )
        self._global_step = 0
        self._last_logged_step = None

    def _write(self, step: int) -> None:
        raise NotImplementedError

    def _log(self, step: int) -> None:
        with self._writer.as_default(step=step):
            self._write(step)
        self._writer.flush()
        self._last_logged_step = step

    def on_train_begin(self, logs=None):
        super().on_train_begin(logs)
        optimizer = getattr(self.model, "optimizer", None)
        iterations = getattr(optimizer, "iterations", None)
        self._global_step = 0 if iterations is None else int(iterations)
        self._last_logged_step = None

    def on_train_batch_end(self, batch, logs=None):
        self._global_step += 1
        if self.every_n_steps and self._global_step % self.every_n_steps == 0:
            self._log(self._global_step)

    def on_epoch_end(self, epoch, logs=None):
        step = self._global_step if self.every_n_steps else epoch
        if step != self._last_logged_step:
            self._log(step)

