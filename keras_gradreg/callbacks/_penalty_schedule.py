"""PenaltySchedule: the penalty weight c of a GradRegModel, epoch by epoch."""

from __future__ import annotations

from typing import Callable

from keras_gradreg import _checks
from keras_gradreg._gradreg_settings import C_MAX
from keras_gradreg.callbacks._summary import WriterCallback
from keras_gradreg.model import GradRegModel


def _scheduled_c(value, epoch: int) -> float:
    """Returns a schedule's output as a float after checking it."""
    try:
        return _checks.number("c", value, 0.0, maximum=C_MAX)
    except ValueError as error:  # an ArgumentTypeError is one too
        raise type(error)(
            f"PenaltySchedule: schedule({epoch}, c) returned {value!r}; {error}"
        ) from error


class PenaltySchedule(WriterCallback):
    """Sets a ``GradRegModel``'s penalty weight ``c`` at each epoch's start.

    The counterpart of ``keras.callbacks.LearningRateScheduler`` for the
    ``c`` of Eq. (2) of Yu et al.: at the beginning of every epoch it calls
    ``schedule(epoch, c)`` with the 0-based epoch and the current ``c`` and
    assigns the result to ``model.c``. ``c`` lives in a non-trainable
    variable read by the compiled train step, so a new value takes effect
    at once, without retracing. The value used in each epoch is put into
    ``logs`` under ``"c"`` (so ``History`` and a later
    ``keras.callbacks.TensorBoard`` see it) and, with ``log_dir``, written
    as the TensorBoard scalar ``c`` into ``log_dir/train`` (step: the
    epoch). Saving the model keeps the current ``c``.

    Args:
        schedule: A function ``(epoch: int, c: float) -> float`` returning
            the new ``c``, a finite number ``>= 0``.
        log_dir: Optional TensorBoard log directory.
        verbose: 0 is silent; 1 prints the new ``c`` at each epoch's start.

    Raises:
        TypeError: If ``schedule`` is not callable, or (when training
            starts) the model is not a :class:`~keras_gradreg.GradRegModel`.
        ValueError: If ``schedule`` returns something other than a finite
            number ``>= 0``.

    Example:
        >>> import keras, numpy as np
        >>> base = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3)])
        >>> model = GradRegModel(base, c=0.0)
        >>> model.compile("sgd", keras.losses.SparseCategoricalCrossentropy(
        ...     from_logits=True))
        >>> warm_up = PenaltySchedule(lambda epoch, c: min(0.1 * epoch, 0.2))
        >>> history = model.fit(np.ones((8, 4), "float32"), np.zeros(8),
        ...                     epochs=4, verbose=0, callbacks=[warm_up])
        >>> [round(c, 2) for c in history.history["c"]]
        [0.0, 0.1, 0.2, 0.2]
    """

    def __init__(
        self,
        schedule: Callable[[int, float], float],
        log_dir=None,
        verbose: int = 0,
    ):
        if not callable(schedule):
            raise TypeError(
                "schedule must be a function (epoch, c) -> c, got "
                f"{schedule!r}."
            )
        super().__init__(log_dir, run="train")
        self.schedule = schedule
        self.verbose = verbose

    def on_train_begin(self, logs=None):
        if not isinstance(self.model, GradRegModel):
            raise TypeError(
                "PenaltySchedule needs a keras_gradreg.GradRegModel (it sets "
                f"the model's c), got {type(self.model).__name__}. Wrap the "
                "model: GradRegModel(model, c=...)."
            )
        super().on_train_begin(logs)

    def on_epoch_begin(self, epoch, logs=None):
        c = _scheduled_c(self.schedule(epoch, self.model.c), epoch)
        self.model.c = c
        if self.verbose:
            print(f"\nEpoch {epoch + 1}: PenaltySchedule setting c to {c:g}.")

    def on_epoch_end(self, epoch, logs=None):
        c = self.model.c
        if logs is not None:
            logs["c"] = c
        self._write_epoch_scalar("c", c, epoch)
