"""Checks of the arrays given to ``fit``, ``evaluate`` and ``predict``.

A training model checks NumPy arrays and eager tensors with these before
Keras builds a dataset from them, so that empty data, inputs shaped for
another base, NaN or string labels and NaN or negative sample weights
stop the call with one clear message before any step runs. Datasets and
generators are checked in the step instead.

Example:
    >>> import numpy as np
    >>> input_shape_error((64, 3, 8, 8), (8, 8, 3))  # doctest: +ELLIPSIS
    'x is shaped (64, 3, 8, 8) but the base model takes inputs shaped (batch, 8, 8, 3)...'
"""

from __future__ import annotations

from typing import Optional, Sequence

import numpy as np
import tensorflow as tf

from keras_gradreg._checks._arrays import labels as checked_labels


def is_array(value) -> bool:
    """Whether ``value`` is one NumPy array or eager tensor (not a dataset,
    a generator, a dict or a list of inputs)."""
    if isinstance(value, np.ndarray):
        return True
    return isinstance(value, tf.Tensor) and hasattr(value, "numpy")


def _shape_text(shape: Sequence) -> str:
    return "(batch, " + ", ".join(
        "any" if size is None else str(size) for size in shape) + ")"


def input_shape_error(shape: Sequence, input_shape: Optional[Sequence],
                      name: str = "x") -> Optional[str]:
    """The message for inputs of ``shape`` that a base taking
    ``(batch,) + input_shape`` cannot take, or None when they fit (a None
    size in either fits anything)."""
    if input_shape is None:
        return None
    features, expected = tuple(shape[1:]), tuple(input_shape)
    fits = len(features) == len(expected) and all(
        got is None or want is None or got == want
        for got, want in zip(features, expected))
    if fits:
        return None
    message = (
        f"{name} is shaped {tuple(shape)} but the base model takes inputs "
        f"shaped {_shape_text(expected)}.")
    if sorted(map(str, features)) == sorted(map(str, expected)):
        message += (
            " The sizes are the same in another order: channels-first data "
            "for a channels-last model? Transpose it, e.g. "
            f"np.transpose({name}, (0, 2, 3, 1)).")
    else:
        message += " Reshape the data or build the base for its shape."
    return message


def _array(value, name: str) -> np.ndarray:
    array = value.numpy() if isinstance(value, tf.Tensor) else np.asarray(value)
    if not (np.issubdtype(array.dtype, np.number) or array.dtype == np.bool_):
        raise TypeError(f"{name} must hold numbers, got dtype {array.dtype}.")
    return array


def _check_labels(y, examples: int, num_classes: Optional[int], name: str):
    y = _array(y, name)
    if np.issubdtype(y.dtype, np.inexact) and not np.isfinite(y).all():
        index = int(np.flatnonzero(~np.isfinite(y.reshape(len(y), -1)).all(1))[0])
        raise ValueError(
            f"{name} holds NaN or infinite labels (the first at index {index}). "
            "Remove or repair those examples first.")
    if y.ndim == 2 and y.shape[1] > 1:  # one-hot (or soft) rows
        if num_classes is not None and y.shape[1] != num_classes:
            raise ValueError(
                f"One-hot {name} has {y.shape[1]} columns but the model has "
                f"{num_classes} classes.")
        if len(y) != examples:
            raise ValueError(
                f"{name} has {len(y)} entries but x has {examples} examples.")
        return
    checked_labels(y, num_classes, batch=examples, name=name)


def _check_sample_weight(weights, examples: int, name: str) -> None:
    weights = _array(weights, name)
    if weights.ndim == 0 or len(weights) != examples:
        raise ValueError(
            f"{name} must hold one weight per example ({examples}), got shape "
            f"{weights.shape}.")
    bad = ~np.isfinite(weights) | (weights < 0)
    if bad.any():
        index = np.unravel_index(int(np.flatnonzero(bad)[0]), weights.shape)[0]
        value = weights[index]
        raise ValueError(
            f"{name} must hold finite weights >= 0; {name}[{index}] is "
            f"{value.tolist() if np.ndim(value) else value}.")


def arrays(
    what: str,
    x,
    y=None,
    sample_weight=None,
    *,
    input_shape: Optional[Sequence] = None,
    num_classes: Optional[int] = None,
    prefix: str = "",
) -> None:
    """Checks the arrays of one ``fit``/``evaluate``/``predict`` call.

    Only NumPy arrays and eager tensors are checked (see :func:`is_array`).

    Args:
        what: The call, for messages (``"fit"``).
        x: The inputs.
        y: The labels, or None.
        sample_weight: The sample weights, or None.
        input_shape: The base's input shape without the batch axis (None
            sizes fit anything), when known.
        num_classes: The model's number of classes, when known.
        prefix: Put before the argument names (``"validation_data: "``).

    Raises:
        TypeError: For string (or other non-numeric) labels or weights.
        ValueError: For no examples, inputs of another shape than the base
            takes, NaN, infinite, non-integer or out-of-range labels, a label
            count that differs from the inputs', and NaN, infinite or
            negative sample weights.
    """
    if not is_array(x):
        return
    shape = tuple(x.shape)
    if len(shape) == 0 or shape[0] == 0:
        raise ValueError(
            f"{prefix}x holds no examples (shape {shape}): {what} needs at "
            "least one.")
    message = input_shape_error(shape, input_shape, f"{prefix}x")
    if message:
        raise ValueError(message)
    if y is not None and (is_array(y) or isinstance(y, list)):
        _check_labels(y, shape[0], num_classes, f"{prefix}y")
    if sample_weight is not None and (
            is_array(sample_weight) or isinstance(sample_weight, list)):
        _check_sample_weight(sample_weight, shape[0], f"{prefix}sample_weight")
