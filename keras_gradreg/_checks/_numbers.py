"""Checks of scalar settings: numbers, integers, clip ranges, seeds, names.

Example:
    >>> integer("steps", 10, minimum=1)
    10
"""

from __future__ import annotations

import math
import numbers
from typing import Iterable, Optional

import numpy as np
import tensorflow as tf

FLOAT32_MAX = float(np.finfo(np.float32).max)
# The largest magnitude a setting without its own maximum may have. Inputs
# and models compute in float32 (largest 3.4e38): an eps of 1e39 is inf
# there, and one near it overflows x + eps, a step of 2.5 * eps, a squared
# L2 distance or the logits of such an input. 1e15 leaves room for all.
LARGEST = 1e15


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

    Without a ``maximum``, ``value`` must be at most ``LARGEST`` (1e15) in
    magnitude: float32 results computed from a larger setting overflow to
    inf or NaN. With one, it must still be finite in float32.

    Returns:
        ``float(value)``, or None for an optional None.

    Raises:
        ArgumentTypeError: If ``value`` is not a real number (a
            ``TypeError``, also a ``ValueError``).
        ValueError: If it is NaN, infinite (also in float32), too large
            for float32 results, or out of bounds.

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
        >>> number("eps", 1e39, minimum=0.0)  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        ValueError: eps=1e+39 is not finite in float32 ...
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
    if abs(value) > FLOAT32_MAX:
        raise ValueError(
            f"{name}={value!r} is not finite in float32 (largest "
            f"{FLOAT32_MAX:.4g}), the precision inputs and models compute in: "
            f"{name} must be {_allowed('a finite number', bounds, optional)}."
        )
    if maximum is None and abs(value) > LARGEST:
        raise ValueError(
            f"{name}={value!r} is too large: float32 results computed from it "
            f"(inputs moved by it, their logits) overflow to inf or NaN. "
            f"{name} must be at most {LARGEST:g} in magnitude."
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
