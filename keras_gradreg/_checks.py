"""The one set of argument validators: numbers, labels and inputs.

Models, attacks, evaluation and the command line check what they are given
with these functions, so the same input gets the same answer everywhere:

* :func:`number` and :func:`integer`: Python or NumPy scalars (never bools),
  finite, within bounds, optionally None; :func:`number_in_graph` checks a
  scalar tensor (a variable) when the graph runs.
* :func:`clip_range`, :func:`seed`: the usual attack settings.
* :func:`choice`: one of a few names (a loss, a method, a TensorBoard run).
* :func:`labels`: sparse integer-valued class indices in ``[0, classes)``,
  or one-hot rows as wide as the number of classes.
* :func:`inputs`: a floating-point batch, finite, inside
  ``[clip_min, clip_max]``.

Wrong types raise ``TypeError`` (for numbers and names an
:class:`ArgumentTypeError`, which is also a ``ValueError``), wrong values
``ValueError``; every message names the argument, the value and what is
allowed.

Example:
    >>> import numpy as np
    >>> number("eps", np.float32(0.25), minimum=0.0)
    0.25
    >>> labels([[0, 1, 0], [1, 0, 0]], num_classes=3)
    array([1, 0], dtype=int32)
"""

from __future__ import annotations

import math
import numbers
from typing import Iterable, Optional

import numpy as np
import tensorflow as tf

__all__ = [
    "ArgumentTypeError", "is_number", "number", "integer", "number_in_graph",
    "clip_range", "seed", "choice", "labels", "inputs",
]


# Numbers ------------------------------------------------------------------


class ArgumentTypeError(TypeError, ValueError):
    """An argument of the wrong type (``c="0.1"``, ``steps=1.5``, ``eps=True``).

    A ``TypeError``, and also a ``ValueError``: the per-module validators
    these functions replaced raised ``ValueError`` for every bad argument,
    and code that catches ``ValueError`` keeps catching it.
    """


def _scalar(value):
    """The item of a 0-d NumPy array or eager tensor; anything else as is."""
    if isinstance(value, tf.Tensor) and value.shape.rank == 0 and hasattr(
        value, "numpy"
    ):
        value = value.numpy()
    if isinstance(value, np.ndarray) and value.ndim == 0:
        value = value[()]
    return value


def is_number(value) -> bool:
    """Whether ``value`` is a real Python or NumPy scalar (not a bool).

    0-d NumPy arrays and eager tensors count as their value.

    Example:
        >>> is_number(np.float32(0.1)), is_number(True), is_number("1")
        (True, False, False)
    """
    value = _scalar(value)
    return isinstance(value, numbers.Real) and not isinstance(
        value, (bool, np.bool_)
    )


def _bounds(minimum, strict: bool, maximum, strict_maximum: bool) -> str:
    """``"> 0 and <= 1"``: the allowed range, for messages."""
    parts = []
    if minimum is not None:
        parts.append(f"{'>' if strict else '>='} {minimum}")
    if maximum is not None:
        parts.append(f"{'<' if strict_maximum else '<='} {maximum}")
    return " and ".join(parts)


def _allowed(kind: str, bounds: str, optional: bool) -> str:
    """``"a finite number > 0 or None"``: what an argument may be."""
    return kind + (f" {bounds}" if bounds else "") + (
        " or None" if optional else ""
    )


def number(
    name: str,
    value,
    minimum: Optional[float] = None,
    strict: bool = False,
    maximum: Optional[float] = None,
    *,
    strict_maximum: bool = False,
    optional: bool = False,
) -> Optional[float]:
    """Returns ``value`` as a float after checking it is a finite number.

    Args:
        name: The argument's name, for the message.
        value: A Python or NumPy real scalar (bools are rejected).
        minimum: Lower bound, or None for none.
        strict: Whether ``value`` must exceed ``minimum`` (``>``) rather
            than reach it (``>=``).
        maximum: Upper bound, or None for none.
        strict_maximum: Whether ``value`` must stay below ``maximum``
            (``<``) rather than reach it (``<=``): ``dropout`` in
            ``[0, 1)``.
        optional: Whether None is allowed (and returned as is).

    Returns:
        ``float(value)``, or None for an optional None.

    Raises:
        ArgumentTypeError: If ``value`` is not a real number (a
            ``TypeError``, also a ``ValueError``).
        ValueError: If it is NaN, infinite or out of bounds.

    Example:
        >>> number("step_size", 0.5, minimum=0.0, strict=True)
        0.5
        >>> number("eps", float("nan"))
        Traceback (most recent call last):
        ...
        ValueError: eps must be a finite number, got nan.
        >>> number("dropout", 1.0, 0.0, maximum=1.0, strict_maximum=True)
        Traceback (most recent call last):
        ...
        ValueError: dropout must be >= 0.0 and < 1.0, got 1.0.
    """
    if optional and value is None:
        return None
    bounds = _bounds(minimum, strict, maximum, strict_maximum)
    if not is_number(value):
        raise ArgumentTypeError(
            f"{name} must be {_allowed('a number', bounds, optional)}, got "
            f"{value!r}."
        )
    value = float(_scalar(value))
    if not math.isfinite(value):
        raise ValueError(
            f"{name} must be {_allowed('a finite number', bounds, optional)}, "
            f"got {value!r}."
        )
    too_small = minimum is not None and (
        value < minimum or (strict and value == minimum)
    )
    too_large = maximum is not None and (
        value > maximum or (strict_maximum and value == maximum)
    )
    if too_small or too_large:
        raise ValueError(f"{name} must be {bounds}, got {value!r}.")
    return value


def integer(
    name: str,
    value,
    minimum: Optional[int] = 1,
    *,
    optional: bool = False,
) -> Optional[int]:
    """Returns ``value`` as an int after checking it is an integer ``>= minimum``.

    Python and NumPy integers are accepted; bools and floats (even 2.0) are
    not.

    Args:
        name: The argument's name, for the message.
        value: A Python or NumPy integer.
        minimum: Lower bound, or None for none.
        optional: Whether None is allowed (and returned as is).

    Raises:
        ArgumentTypeError: If ``value`` is not an integer (a ``TypeError``,
            also a ``ValueError``).
        ValueError: If it is below ``minimum``.

    Example:
        >>> integer("steps", np.int64(10))
        10
        >>> integer("every_n_steps", None, optional=True) is None
        True
    """
    if optional and value is None:
        return None
    value = _scalar(value)
    if not isinstance(value, (int, np.integer)) or isinstance(
        value, (bool, np.bool_)
    ):
        bounds = "" if minimum is None else f">= {minimum}"
        raise ArgumentTypeError(
            f"{name} must be {_allowed('an integer', bounds, optional)}, got "
            f"{value!r}."
        )
    if minimum is not None and value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value!r}.")
    return int(value)


def number_in_graph(
    name: str, value, minimum: Optional[float] = None, hint: str = ""
) -> tf.Tensor:
    """``value``, a scalar tensor, checked when the graph runs: finite and
    ``>= minimum``; the graph-safe :func:`number`, for a value that can
    change between steps (a variable).

    Raises:
        tf.errors.InvalidArgumentError: When the graph runs, if the value is
            NaN, infinite or below ``minimum``; the message names ``name``,
            the allowed range and ``hint``.

    Example:
        >>> float(number_in_graph("c", tf.Variable(0.5), 0.0))
        0.5
        >>> try:
        ...     number_in_graph("c", tf.Variable(-1.0), 0.0)
        ... except tf.errors.InvalidArgumentError as error:
        ...     print(error.message.split("Summarized data: ")[1])
        b'c must be a finite number >= 0.0.'
        -1.0
    """
    value = tf.convert_to_tensor(value)
    valid = tf.math.is_finite(value)
    if minimum is not None:
        valid &= value >= tf.cast(minimum, value.dtype)
    bounds = _bounds(minimum, False, None, False)
    message = f"{name} must be {_allowed('a finite number', bounds, False)}"
    message += f" ({hint})." if hint else "."
    with tf.control_dependencies([tf.debugging.Assert(valid, [message, value])]):
        return tf.identity(value)


def clip_range(clip_min, clip_max) -> tuple:
    """Checks the clip range; either bound may be None (unbounded).

    Returns:
        ``(clip_min, clip_max)`` as floats or None.

    Raises:
        ArgumentTypeError: For a bound that is neither a number nor None.
        ValueError: For a NaN or infinite bound, or ``clip_min >= clip_max``.

    Example:
        >>> clip_range(0, None)
        (0.0, None)
    """
    bounds = []
    for name, value in (("clip_min", clip_min), ("clip_max", clip_max)):
        if value is not None and not is_number(value):
            raise ArgumentTypeError(
                f"{name} must be a number or None, got {value!r}."
            )
        if value is not None and not math.isfinite(_scalar(value)):
            raise ValueError(
                f"{name} must be a finite number or None (unbounded), got "
                f"{value!r}."
            )
        bounds.append(None if value is None else float(_scalar(value)))
    if bounds[0] is not None and bounds[1] is not None and bounds[0] >= bounds[1]:
        raise ValueError(
            f"clip_min must be < clip_max, got clip_min={clip_min!r} and "
            f"clip_max={clip_max!r}. Pass None for an unbounded side."
        )
    return tuple(bounds)


def seed(value) -> int:
    """Returns the seed, drawing one from NumPy's global generator if None.

    Example:
        >>> seed(7)
        7
    """
    if value is None:
        return int(np.random.randint(0, 2**31 - 1))
    return integer("seed", value, minimum=0)


def choice(name: str, value, allowed: Iterable):
    """Returns ``value`` after checking it is one of ``allowed``.

    Raises:
        ArgumentTypeError: For a value of another type than the allowed
            ones (a number where names are allowed).
        ValueError: For a value that is not allowed.

    Example:
        >>> choice("loss", "ce", ("ce", "dlr"))
        'ce'
        >>> choice("norm", "l3", ("l1", "l2"))
        Traceback (most recent call last):
        ...
        ValueError: Unknown norm 'l3': norm must be one of ['l1', 'l2'].
    """
    allowed = tuple(allowed)
    message = f"Unknown {name} {value!r}: {name} must be one of {list(allowed)}."
    if not any(isinstance(value, type(option)) for option in allowed):
        raise ArgumentTypeError(message)
    if value not in allowed:
        raise ValueError(message)
    return value


# Labels -------------------------------------------------------------------


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
