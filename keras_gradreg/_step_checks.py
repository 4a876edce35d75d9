"""Checks of what a training step computes, and of what it can save.

* :func:`per_example`: a regularizer's values are one per example,
  shaped ``(batch,)`` (a ``(batch, classes)`` result would be summed by
  the input gradient without a word).
* :func:`finite_step`: the step's loss and weight gradients are finite
  before the optimizer applies them; the error names ``c``, whose float32
  overflow is the usual cause, so the weights never turn NaN silently.
* :func:`warn_unless_registered`: a custom regularizer or norm that
  ``keras.saving`` cannot find again gets a warning when the model's
  config is written, not an error when it is loaded.
"""

from __future__ import annotations

import inspect
import warnings
from typing import Callable

import keras
import tensorflow as tf


def _name(function: Callable) -> str:
    return getattr(function, "__name__", type(function).__name__)


def per_example(regularizer: Callable, values, logits) -> tf.Tensor:
    """``values``, the regularizer's output for ``logits``, checked to be
    shaped ``(batch,)``: at trace time for the rank, in-graph for the batch.

    Raises:
        ValueError: At trace time, for values of another rank than 1.
        tf.errors.InvalidArgumentError: When the graph runs, for a count
            other than the batch's.

    Example:
        >>> per_example(len, tf.zeros([2, 3]), tf.zeros([2, 3]))  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        ValueError: The regularizer len must return one value per example...
    """
    values = tf.convert_to_tensor(values)
    fix = (
        "Reduce over the classes inside it (e.g. tf.reduce_max(..., "
        "axis=-1)); the model takes the batch mean itself."
    )
    if values.shape.rank != 1:
        raise ValueError(
            f"The regularizer {_name(regularizer)} must return one value per "
            f"example, shaped (batch,); it returned shape {values.shape} for "
            f"logits shaped {logits.shape}. {fix}"
        )
    same_batch = tf.debugging.assert_equal(
        tf.shape(values)[0], tf.shape(logits)[0],
        message=f"The regularizer {_name(regularizer)} must return one value "
        f"per example, shaped (batch,). {fix}",
    )
    with tf.control_dependencies([same_batch]):
        return tf.identity(values)


def finite_step(model, gradients, total, task_loss, c, grad_loss) -> list:
    """The step's weight gradients, after an in-graph check that they and
    the loss are finite (under a ``LossScaleOptimizer``, which skips steps
    with non-finite scaled gradients itself, only the loss is checked).

    Raises:
        tf.errors.InvalidArgumentError: When the graph runs, for a NaN or
            infinite loss or gradient; the message names ``c`` and gives the
            batch's compiled loss, ``c`` and ``grad_loss``. The weights are
            not updated.
    """
    finite = tf.reduce_all(tf.math.is_finite(total))
    if not isinstance(model.optimizer, keras.optimizers.LossScaleOptimizer):
        for gradient in gradients:
            if gradient is not None:
                finite &= tf.reduce_all(tf.math.is_finite(gradient))
    message = (
        f"{type(model).__name__}: the training loss or its weight gradients "
        "are NaN or infinite, so the step stopped before updating the "
        "weights. A large c overflows float32 (c * grad_loss or its "
        "gradient beyond 3.4e38): lower c. At a moderate c, lower the "
        "learning rate or check the data. This batch's compiled loss, c "
        "and grad_loss:"
    )
    check = tf.debugging.Assert(finite, [message, task_loss, c, grad_loss])
    with tf.control_dependencies([check]):
        return [None if g is None else tf.identity(g) for g in gradients]


def _registered(function: Callable) -> bool:
    target = function if (
        inspect.isfunction(function) or inspect.isclass(function)
    ) else type(function)
    try:
        name = keras.saving.get_registered_name(target)
    except AttributeError:
        return False
    return keras.saving.get_registered_object(name) is target


def warn_unless_registered(function: Callable, argument: str) -> None:
    """Warns when ``keras.saving`` cannot find ``function`` at load time: a
    lambda, or a function or class not registered with
    ``keras.saving.register_keras_serializable``.

    Example:
        >>> import warnings
        >>> with warnings.catch_warnings(record=True) as caught:
        ...     warnings.simplefilter("always")
        ...     warn_unless_registered(lambda logits, labels: logits, "regularizer")
        >>> "register_keras_serializable" in str(caught[0].message)
        True
    """
    if _registered(function):
        return
    kind = "a lambda" if _name(function) == "<lambda>" else "not registered"
    warnings.warn(
        f"The {argument} {_name(function)} is {kind}: the model saves, but "
        "keras.models.load_model cannot rebuild it. Make it a named function "
        "decorated with @keras.saving.register_keras_serializable("
        "package='your_package') (or pass it to load_model in custom_objects).",
        UserWarning,
        stacklevel=3,
    )
