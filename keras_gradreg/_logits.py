"""The one way to get a model's float32 logits Z(x), duck-typed.

Yu et al.'s regularizers (Eq. 3) and the attacks' losses are defined on the
pre-softmax logits Z. :func:`logits_function` finds them for any model:

* a model with a ``logits(x, training)`` method (the keras-gradreg wrappers)
  is asked for them;
* a functional or Sequential model whose last layer applies a softmax is
  cut before it: the logits are the softmax's input;
* any other model or callable is taken to return logits as is.

:func:`looks_like_probabilities` tells from outputs when that last guess is
wrong (a subclassed model, or ``keras.ops.softmax`` at the end).

This module imports nothing from keras_gradreg, so every floor can use it.
"""

from __future__ import annotations

from typing import Callable

import keras
import numpy as np
import tensorflow as tf

__all__ = [
    "ends_in_softmax", "pre_softmax_function", "at_least_float32",
    "logits_function", "looks_like_probabilities", "PROBABILITIES_WARNING",
]

PROBABILITIES_WARNING = (
    "The model's outputs look like probabilities (non-negative rows summing "
    "to 1), but they are used as logits: C&W and DLR losses then overstate "
    "robustness. Return logits (no softmax at the end), or end a functional "
    "or Sequential model with a softmax layer so its logits can be recovered."
)


def _is_softmax(activation) -> bool:
    if activation is None:
        return False
    softmax_fns = (keras.activations.softmax, tf.nn.softmax)
    name = getattr(activation, "__name__", "")
    return activation in softmax_fns or name == "softmax"


def _last_layer(model):
    """The last layer of a functional or Sequential model, else None."""
    layers = getattr(model, "layers", None)
    if not layers or not isinstance(model, keras.Model):
        return None
    functional = any(cls.__name__ == "Functional" for cls in type(model).__mro__)
    if not functional and not isinstance(model, keras.Sequential):
        return None  # subclassed model: the graph cannot be inspected.
    return layers[-1]


def ends_in_softmax(model) -> bool:
    """Whether a functional or Sequential model's last layer is a softmax.

    Example:
        >>> net = keras.Sequential([keras.Input((2,)),
        ...                         keras.layers.Dense(3, "softmax")])
        >>> ends_in_softmax(net)
        True
    """
    last = _last_layer(model)
    if last is None:
        return False
    if isinstance(last, keras.layers.Softmax):
        return True
    return _is_softmax(getattr(last, "activation", None))


def pre_softmax_function(model) -> Callable:
    """Returns ``f(x, training) -> logits`` for a model ending in a softmax.

    Raises:
        ValueError: If the softmax's input cannot be recovered.
    """
    last = _last_layer(model)
    fix = (
        "Make the model return logits (e.g. Dense(num_classes) with no "
        "activation), or end it with a linear layer followed by "
        "keras.layers.Softmax()."
    )
    try:
        features = keras.Model(model.inputs, last.input)
    except (AttributeError, ValueError, TypeError) as error:
        raise ValueError(
            "The base model ends in a softmax and its pre-softmax logits "
            f"cannot be recovered ({error}). {fix}"
        ) from error
    if isinstance(last, (keras.layers.Softmax, keras.layers.Activation)):
        return lambda x, training: features(x, training=training)
    if isinstance(last, keras.layers.Dense):

        def dense_logits(x, training):
            hidden = features(x, training=training)
            logits = keras.ops.matmul(hidden, last.kernel)
            if last.use_bias:
                logits = logits + last.bias
            return logits

        return dense_logits
    raise ValueError(
        f"The base model's last layer {last.name!r} ({type(last).__name__}) "
        f"applies a softmax, and its logits cannot be recovered. {fix}"
    )


def at_least_float32(tensor: tf.Tensor) -> tf.Tensor:
    """Casts float16/bfloat16 to float32; keeps float32 and float64."""
    if tensor.dtype in (tf.float16, tf.bfloat16):
        return tf.cast(tensor, tf.float32)
    return tensor


def logits_function(model, training: bool = False) -> Callable:
    """Returns ``f(x) -> float32 logits`` of ``model`` (see module docstring).

    Args:
        model: A model with a ``logits(x, training)`` method, a Keras model,
            or a callable returning logits.
        training: The mode the model runs in.

    Raises:
        TypeError: If ``model`` is not callable.

    Example:
        >>> net = keras.Sequential([keras.Input((2,)),
        ...                         keras.layers.Dense(3, "softmax")])
        >>> z = logits_function(net)(np.ones((1, 2), "float32"))
        >>> bool(np.allclose(z, np.ones((1, 2)) @ net.layers[-1].kernel))
        True
    """
    if callable(getattr(model, "logits", None)):
        return tf.autograph.experimental.do_not_convert(
            lambda x: tf.cast(model.logits(x, training=training), tf.float32)
        )
    if ends_in_softmax(model):
        pre_softmax = pre_softmax_function(model)
        return tf.autograph.experimental.do_not_convert(
            lambda x: tf.cast(pre_softmax(x, training), tf.float32)
        )
    if isinstance(model, keras.layers.Layer):
        return tf.autograph.experimental.do_not_convert(
            lambda x: tf.cast(model(x, training=training), tf.float32)
        )
    if callable(model):
        return lambda x: tf.cast(model(x), tf.float32)
    raise TypeError(
        f"model must be a Keras model or a callable returning logits, got "
        f"{type(model).__name__}."
    )


def looks_like_probabilities(outputs, tolerance: float = 1e-3) -> bool:
    """Whether every row of ``outputs`` is non-negative and sums to 1.

    Logits almost never do; a classifier returning probabilities always
    does. Needs at least 2 classes.

    Example:
        >>> looks_like_probabilities([[0.2, 0.8], [1.0, 0.0]])
        True
        >>> looks_like_probabilities([[2.0, -1.0]])
        False
    """
    values = np.asarray(outputs, dtype="float64")
    if values.ndim < 2 or values.shape[-1] < 2 or values.size == 0:
        return False
    if not np.all(np.isfinite(values)) or np.any(values < -tolerance):
        return False
    return bool(np.all(np.abs(values.sum(axis=-1) - 1.0) <= tolerance))
