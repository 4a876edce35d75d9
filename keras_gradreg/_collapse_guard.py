"""The collapse guard: a warning when a penalty flattens a network.

The train step feeds an :class:`EpochStatistics` (held by the model as
``model._collapse``, wrapped so that Keras neither tracks nor saves it);
``GradRegModel.fit`` adds a :class:`CollapseGuard` to its callbacks through
:func:`with_guard`, and the guard reads ``model.c`` and those statistics.
"""

from __future__ import annotations

import warnings

import keras
import tensorflow as tf

NAMES = ("accuracy", "penalty", "task_loss", "count")
FIT_CALLBACKS_POSITION = 5  # fit(x, y, batch_size, epochs, verbose, callbacks)


class EpochStatistics:
    """The epoch means the guard decides on, updated in the train step.

    Example:
        >>> stats = EpochStatistics()
        >>> stats.update(tf.constant([[2.0, 0.0], [0.0, 1.0]]), tf.constant([0, 0]),
        ...              tf.constant(0.5), tf.constant(0.7), tf.constant(2))
        >>> stats.num_classes, round(float(stats.trackers["accuracy"].result()), 2)
        (2, 0.5)
    """

    def __init__(self):
        self.trackers = {name: keras.metrics.Mean(name=name) for name in NAMES}
        self.num_classes = None

    def update(self, y_pred, labels, grad_loss, task_loss, counted_size):
        """Adds one batch: predictions, true labels, the batch's penalty and
        compiled loss (summed over replicas), and how many examples count
        (0 for a step that skipped the penalty)."""
        self.num_classes = y_pred.shape[-1]
        predicted = tf.argmax(y_pred, axis=-1, output_type=tf.int32)
        correct = tf.cast(tf.equal(predicted, labels), tf.float32)
        self.trackers["accuracy"].update_state(correct)
        self.trackers["penalty"].update_state(grad_loss, sample_weight=counted_size)
        self.trackers["task_loss"].update_state(
            tf.cast(task_loss, tf.float32), sample_weight=counted_size)
        self.trackers["count"].update_state(1.0, sample_weight=counted_size)

    def reset(self) -> None:
        for tracker in self.trackers.values():
            tracker.reset_state()

    def result(self, name: str) -> float:
        return float(self.trackers[name].result())


def with_guard(args: tuple, kwargs: dict) -> tuple:
    """``fit``'s arguments with a new :class:`CollapseGuard` among the
    callbacks, wherever the caller passed them.

    Example:
        >>> args, kwargs = with_guard((1, 2), {"epochs": 3})
        >>> [type(c).__name__ for c in kwargs["callbacks"]]
        ['CollapseGuard']
        >>> args, kwargs = with_guard(("x", "y", 50, 3, 0, []), {})
        >>> [type(c).__name__ for c in args[5]], kwargs
        (['CollapseGuard'], {})
    """
    guard = CollapseGuard()
    if len(args) > FIT_CALLBACKS_POSITION:
        args = list(args)
        args[FIT_CALLBACKS_POSITION] = list(
            args[FIT_CALLBACKS_POSITION] or []) + [guard]
        return tuple(args), kwargs
    kwargs = dict(kwargs)
    kwargs["callbacks"] = list(kwargs.get("callbacks") or []) + [guard]
    return args, kwargs


class CollapseGuard(keras.callbacks.Callback):
    """Warns when training sits at chance because of the penalty.

    Added by ``GradRegModel.fit``. After each epoch with ``c > 0``, if the
    training accuracy (the model's own predictions on its training inputs)
    is at most ``1/num_classes + 0.05`` while the penalty is either near
    zero (``<= 1e-3``: the network has been flattened into a constant) or
    dominates the loss (``c * penalty >=`` the compiled loss), a warning
    names ``c``. At chance with a small, non-zero penalty the model is just
    not learning yet, and no warning is given.
    """

    def on_epoch_begin(self, epoch, logs=None):
        self.model._collapse.value.reset()

    def on_epoch_end(self, epoch, logs=None):
        model = self.model
        stats = model._collapse.value
        c = model.c
        classes = stats.num_classes
        if c <= 0 or not classes or stats.result("count") == 0:
            return
        accuracy = stats.result("accuracy")
        penalty = stats.result("penalty")
        task_loss = stats.result("task_loss")
        at_chance = accuracy <= 1.0 / classes + 0.05
        if at_chance and (penalty <= 1e-3 or c * penalty >= abs(task_loss)):
            warnings.warn(
                f"{type(model).__name__}: epoch {epoch + 1} ended at chance "
                f"(training accuracy {accuracy:.3f} with {classes} classes) "
                f"with the penalty near zero or dominating the loss (penalty "
                f"{penalty:.3g}, c * penalty {c * penalty:.3g}, compiled loss "
                f"{task_loss:.3g}): the penalty is flattening the network "
                f"into a constant. c={c:g} is too large for this network: "
                "lower c, warm it up with callbacks.PenaltySchedule, or use a "
                "smooth activation (e.g. models.mnist_cnn(activation='gelu')).",
                stacklevel=2,
            )
