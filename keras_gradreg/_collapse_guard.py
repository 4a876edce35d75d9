"""The collapse guard: a warning when a penalty flattens a network.

Added by ``GradRegModel.fit`` to its callbacks. Duck-typed on the model: it
reads ``model.c``, ``model._collapse_trackers`` (epoch means updated by the
train step) and ``model._num_classes``.
"""

from __future__ import annotations

import warnings

import keras


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
        for tracker in self.model._collapse_trackers.function.values():
            tracker.reset_state()

    def on_epoch_end(self, epoch, logs=None):
        model = self.model
        trackers = model._collapse_trackers.function
        c = model.c
        classes = model._num_classes.function
        if c <= 0 or not classes or float(trackers["count"].result()) == 0:
            return
        accuracy = float(trackers["accuracy"].result())
        penalty = float(trackers["penalty"].result())
        task_loss = float(trackers["task_loss"].result())
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
