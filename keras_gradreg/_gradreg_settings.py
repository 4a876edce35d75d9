"""The settings of a ``GradRegModel``: checked, and as saved in its config.

The penalty weight ``c`` (at most :data:`C_MAX`, since it lives in a
float32 variable), the regularizer and norm (names or callables), the
method of the penalty's weight gradient (:data:`METHODS`), the
finite-difference step and the penalized fraction of each batch. A built-in
regularizer or norm is saved by its name, any other callable as a Keras
object (with a warning when ``keras.saving`` cannot find it at load time).

Example:
    >>> settings = checked(0.1, "logit_margin", "l1", "finite_difference",
    ...                    0.01, 1.0)
    >>> settings["norm"].__name__, serialized(settings["norm"], "norm")
    ('l1', 'l1')
"""

from __future__ import annotations

from typing import Callable, Union

import keras

from keras_gradreg import _checks
from keras_gradreg import _step_checks
from keras_gradreg import regularizers as regs

METHODS = ("double_backprop", "finite_difference")
"""How the penalty's weight gradient is computed."""

C_MAX = 3.4e38
"""The largest ``c``: c lives in a float32 variable, so it must fit there."""

FUNCTIONS = ("regularizer", "norm")
"""The settings that hold a function."""


def checked_c(value) -> float:
    """``c`` as a float, ``>= 0`` and at most :data:`C_MAX`."""
    return _checks.number("c", value, 0.0, maximum=C_MAX)


def checked(c, regularizer: Union[str, Callable], norm: Union[str, Callable],
            method: str, fd_step, penalty_fraction) -> dict:
    """The constructor arguments of a ``GradRegModel``, checked, with the
    regularizer and norm resolved to functions.

    Raises:
        ValueError: For a number out of range or not finite, an unknown
            regularizer, norm or method, or ``"finite_difference"`` with a
            custom norm.
        TypeError: For a number argument that is not a number.
    """
    settings = dict(
        c=checked_c(c),
        method=_checks.choice("method", method, METHODS),
        fd_step=_checks.number("fd_step", fd_step, 0.0, strict=True),
        penalty_fraction=_checks.number(
            "penalty_fraction", penalty_fraction, 0.0, strict=True,
            maximum=1.0),
    )
    settings["regularizer"] = regs.get_regularizer(regularizer)
    settings["norm"] = regs.get_norm(norm)
    if (settings["method"] == "finite_difference"
            and settings["norm"] not in regs.FD_DIRECTIONS):
        raise ValueError(
            "method='finite_difference' supports the norms "
            "'squared_l2', 'l2' and 'l1', not a custom callable."
        )
    return settings


def serialized(function: Callable, argument: str):
    """The config entry of a regularizer or norm: a built-in's name, else
    the Keras serialization of ``function``."""
    name = regs.name_of(function)
    if isinstance(name, str):
        return name
    _step_checks.warn_unless_registered(function, argument)
    return keras.saving.serialize_keras_object(function)


def deserialized(config: dict, custom_objects=None) -> dict:
    """``config`` with its serialized functions rebuilt (names stay names)."""
    config = dict(config)
    for key in FUNCTIONS:
        if isinstance(config.get(key), dict):
            config[key] = keras.saving.deserialize_keras_object(
                config[key], custom_objects=custom_objects
            )
    return config
