"""Checks of data: class labels (sparse or one-hot) and input batches.

Example:
    >>> labels([2, 0], num_classes=3)
    array([2, 0], dtype=int32)
"""

from __future__ import annotations

from typing import Optional

import numpy as np
import tensorflow as tf


def _as_array(value, name: str) -> np.ndarray:
    if isinstance(value, tf.Tensor):
        if not tf.executing_eagerly() or not hasattr(value, "numpy"):
            raise TypeError(f"{name} must be concrete values, not a symbolic tensor.")
        return value.numpy()
    try:
        array = np.asarray(value)
    except (TypeError, ValueError) as error:
        raise TypeError(f"{name} must be an array, got {type(value).__name__}.") from error
    if array.dtype == object:
        raise TypeError(f"{name} must be a numeric array, got {type(value).__name__}.")
    return array


def _first(mask: np.ndarray) -> int:
    return int(np.flatnonzero(mask)[0])


def labels(
    y,
    num_classes: Optional[int] = None,
    batch: Optional[int] = None,
    name: str = "y",
) -> np.ndarray:
    """Sparse int32 class indices from sparse or one-hot labels, checked.

    Accepts integer-valued class indices shaped ``(batch,)`` or
    ``(batch, 1)`` (integer or float dtype) and one-hot rows shaped
    ``(batch, num_classes)``.

    Args:
        y: The labels: an array, list or eager tensor.
        num_classes: The model's number of classes, when known: sparse
            labels must lie in ``[0, num_classes)`` and one-hot rows must be
            ``num_classes`` wide.
        batch: The number of examples the labels go with, when known.
        name: The argument's name, for messages.

    Returns:
        A NumPy ``int32`` array shaped ``(batch,)``.

    Raises:
        TypeError: For non-numeric labels.
        ValueError: For a scalar, a label that is not an integer (0.6), NaN,
            negative or ``>= num_classes``, one-hot rows of the wrong width or
            that are not one-hot, or a count that differs from ``batch``.

    Example:
        >>> labels(np.array([0.0, 2.0]), num_classes=3)
        array([0, 2], dtype=int32)
        >>> labels([0.6, 1.4])  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        ValueError: y must hold integer class indices; y[0] is 0.6. Round ...
    """
    y = _as_array(y, name)
    if not (np.issubdtype(y.dtype, np.number) or y.dtype == np.bool_):
        raise TypeError(f"{name} must hold numbers, got dtype {y.dtype}.")
    if y.ndim == 0:
        raise ValueError(
            f"{name} must have a batch dimension: got a scalar. Pass integer "
            "labels shaped (batch,) or one-hot labels shaped (batch, classes)."
        )
    if y.ndim > 2 or (y.ndim == 2 and y.shape[1] == 0):
        raise ValueError(
            f"{name} must be shaped (batch,), (batch, 1) or (batch, classes), "
            f"got shape {y.shape}."
        )
    if y.ndim == 2 and y.shape[1] > 1:
        sparse = _one_hot_rows(y, num_classes, name)
    else:
        sparse = _class_indices(y.reshape(-1), num_classes, name)
    if batch is not None and len(sparse) != batch:
        raise ValueError(
            f"{name} has {len(sparse)} entries but x has {batch} examples."
        )
    return sparse


def _one_hot_rows(y: np.ndarray, num_classes, name: str) -> np.ndarray:
    if num_classes is not None and y.shape[1] != num_classes:
        raise ValueError(
            f"One-hot {name} has {y.shape[1]} columns but the model has "
            f"{num_classes} classes. Pass integer labels shaped (batch,) or "
            "one-hot labels shaped (batch, num_classes)."
        )
    values = y.astype(np.float64)
    entries_ok = (values == 0) | (values == 1)
    rows_ok = entries_ok.all(axis=1) & (values.sum(axis=1) == 1)
    if not rows_ok.all():
        row = _first(~rows_ok)
        raise ValueError(
            f"{name} is shaped (batch, {y.shape[1]}) but row {row} is not "
            f"one-hot (one 1, the rest 0): {y[row].tolist()}. For soft labels "
            f"pass the classes, e.g. np.argmax({name}, axis=-1)."
        )
    return np.argmax(values, axis=1).astype(np.int32)


def _class_indices(y: np.ndarray, num_classes, name: str) -> np.ndarray:
    if y.dtype == np.bool_:
        raise TypeError(f"{name} must hold class indices, got booleans.")
    if np.issubdtype(y.dtype, np.complexfloating):
        raise TypeError(f"{name} must hold real class indices, got {y.dtype}.")
    if np.issubdtype(y.dtype, np.floating):
        bad = ~np.isfinite(y) | (y != np.round(y))
        if bad.any():
            index = _first(bad)
            raise ValueError(
                f"{name} must hold integer class indices; {name}[{index}] is "
                f"{y[index]}. Round or cast them deliberately first."
            )
    if y.size and y.min() < 0:
        index = _first(y < 0)
        raise ValueError(
            f"{name} must hold class indices >= 0; {name}[{index}] is "
            f"{y[index]}."
        )
    if num_classes is not None and y.size and y.max() >= num_classes:
        index = _first(y >= num_classes)
        raise ValueError(
            f"{name} must hold class indices in [0, {num_classes}) for a model "
            f"with {num_classes} classes; {name}[{index}] is {y[index]}."
        )
    if y.size and y.max() > np.iinfo(np.int32).max:
        raise ValueError(f"{name} holds a class index too large for int32.")
    return y.astype(np.int32)


# Inputs -------------------------------------------------------------------


def inputs(
    x,
    clip_min: Optional[float] = None,
    clip_max: Optional[float] = None,
    name: str = "x",
) -> tf.Tensor:
    """A floating-point batch ``x``, finite and inside the clip range.

    Args:
        x: A batch shaped ``(batch, features...)``: array or eager tensor.
        clip_min: Smallest valid value, or None for unbounded.
        clip_max: Largest valid value, or None for unbounded.
        name: The argument's name, for messages.

    Returns:
        ``x`` as a tensor of its own floating dtype.

    Raises:
        TypeError: For non-floating inputs (cast and rescale them first).
        ValueError: For a batch without features, NaN or infinite values, or
            values outside ``[clip_min, clip_max]``.

    Example:
        >>> inputs(np.zeros((2, 3), "float32"), 0.0, 1.0).shape
        TensorShape([2, 3])
    """
    try:
        x = tf.convert_to_tensor(x)
    except (TypeError, ValueError) as error:
        raise TypeError(
            f"{name} must be one array or tensor of inputs, got "
            f"{type(x).__name__}."
        ) from error
    if not x.dtype.is_floating:
        raise TypeError(
            f"{name} must hold floating-point inputs, got {x.dtype}. Cast "
            f"them first, e.g. {name} = {name}.astype('float32') / 255."
        )
    if x.shape.rank is None or x.shape.rank < 2:
        raise ValueError(
            f"{name} must be a batch shaped (batch, features...), got shape "
            f"{x.shape}."
        )
    if not int(tf.size(x)):
        return x
    finite = tf.reduce_all(tf.math.is_finite(x), axis=list(range(1, x.shape.rank)))
    if not bool(tf.reduce_all(finite)):
        bad = np.flatnonzero(~finite.numpy())
        raise ValueError(
            f"{name} contains NaN or infinite values ({len(bad)} example(s), "
            f"the first at index {int(bad[0])}). Remove or repair them first."
        )
    if clip_min is not None and float(tf.reduce_min(x)) < clip_min:
        raise ValueError(
            f"{name} has values below clip_min={clip_min} (min "
            f"{float(tf.reduce_min(x)):g}); pass clip_min=None for unbounded "
            "features or rescale the inputs."
        )
    if clip_max is not None and float(tf.reduce_max(x)) > clip_max:
        raise ValueError(
            f"{name} has values above clip_max={clip_max} (max "
            f"{float(tf.reduce_max(x)):g}); pass clip_max=None for unbounded "
            "features or rescale the inputs (e.g. pixels 0-255 -> x / 255)."
        )
    return x
