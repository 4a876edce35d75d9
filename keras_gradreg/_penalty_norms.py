"""The norms L_norm of the input gradient dReg/dx that the penalty takes.

``squared_l2``, ``l2``, ``l1``, ``linf``: per-example norms of a batch of
gradients shaped ``(batch, ...)``. By norm duality an eps-perturbation in
norm p changes Reg by at most about ``eps * ||dReg/dx||_q`` with q the dual
norm: ``l1`` pairs with L-inf threats, ``l2`` (or ``squared_l2``) with L2
and ``linf`` with L1. :data:`FD_DIRECTIONS` gives, for each, the direction
in which the norm of a gradient is its inner product, which the
finite-difference penalty steps along. All are importable from
:mod:`keras_gradreg.regularizers`.
"""

from __future__ import annotations

from typing import Callable, Union

import keras
import tensorflow as tf


def _flat(gradients: tf.Tensor) -> tf.Tensor:
    gradients = tf.convert_to_tensor(gradients)
    return tf.reshape(gradients, [tf.shape(gradients)[0], -1])


@keras.saving.register_keras_serializable(package="keras_gradreg")
def squared_l2(gradients) -> tf.Tensor:
    """Per-example sum of squares of the input gradient (the paper's l2 loss).

    Args:
        gradients: dReg/dx, shaped ``(batch, ...)``.

    Returns:
        A tensor shaped ``(batch,)``.

    Example:
        >>> squared_l2(tf.constant([[3.0, 4.0]])).numpy()
        array([25.], dtype=float32)
    """
    return tf.reduce_sum(tf.square(_flat(gradients)), axis=-1)


@keras.saving.register_keras_serializable(package="keras_gradreg")
def l2(gradients) -> tf.Tensor:
    """Per-example Euclidean norm of the input gradient.

    Its gradient at a zero input gradient is defined as 0 (no NaN): the square
    root is taken through a ``tf.where`` guard.

    Args:
        gradients: dReg/dx, shaped ``(batch, ...)``.

    Returns:
        A tensor shaped ``(batch,)``.

    Example:
        >>> l2(tf.constant([[3.0, 4.0]])).numpy()
        array([5.], dtype=float32)
    """
    sum_squares = squared_l2(gradients)
    positive = sum_squares > 0
    safe = tf.where(positive, sum_squares, tf.ones_like(sum_squares))
    return tf.where(positive, tf.sqrt(safe), tf.zeros_like(sum_squares))


@keras.saving.register_keras_serializable(package="keras_gradreg")
def l1(gradients) -> tf.Tensor:
    """Per-example L1 norm of the input gradient.

    The L1 norm is the dual of the L-inf norm: to first order, the largest
    change of Reg under a perturbation with ``||delta||_inf <= eps`` is
    ``eps * ||dReg/dx||_1``. Penalizing it therefore targets the L-inf threat
    model that FGSM, BIM and PGD use.

    Args:
        gradients: dReg/dx, shaped ``(batch, ...)``.

    Returns:
        A tensor shaped ``(batch,)``.

    Example:
        >>> l1(tf.constant([[3.0, -4.0]])).numpy()
        array([7.], dtype=float32)
    """
    return tf.reduce_sum(tf.abs(_flat(gradients)), axis=-1)


@keras.saving.register_keras_serializable(package="keras_gradreg")
def linf(gradients) -> tf.Tensor:
    """Per-example L-inf norm (largest absolute entry) of the input gradient.

    The L-inf norm is the dual of the L1 norm: to first order, the largest
    change of Reg under a perturbation with ``||delta||_1 <= eps`` is
    ``eps * ||dReg/dx||_inf``, reached by moving the single feature of the
    largest gradient. Penalizing it targets L1 threats (sparse attacks).

    Args:
        gradients: dReg/dx, shaped ``(batch, ...)``.

    Returns:
        A tensor shaped ``(batch,)``.

    Example:
        >>> linf(tf.constant([[3.0, -4.0]])).numpy()
        array([4.], dtype=float32)
    """
    return tf.reduce_max(tf.abs(_flat(gradients)), axis=-1)


NORMS = {"squared_l2": squared_l2, "l2": l2, "l1": l1, "linf": linf}


def get_norm(identifier: Union[str, Callable]) -> Callable:
    """Returns the norm function for a name or a callable.

    Args:
        identifier: ``"squared_l2"``, ``"l2"``, ``"l1"``, ``"linf"`` or a
            callable
            ``gradients -> per-example values``.

    Returns:
        The norm function.

    Raises:
        ValueError: For an unknown name or a non-callable.

    Example:
        >>> get_norm("l1") is l1
        True
    """
    return by_name(identifier, NORMS, "norm")


def by_name(identifier: Union[str, Callable], table: dict, kind: str,
            alternative: str = "") -> Callable:
    """The function ``table`` holds under the name ``identifier``, or
    ``identifier`` itself if it is callable.

    Args:
        identifier: A name of ``table`` or a callable.
        table: Name -> function.
        kind: What the functions are, for the error (``"norm"``).
        alternative: Appended to the list of names in the error of an
            unknown name (e.g. the signature a callable needs).

    Raises:
        ValueError: For an unknown name or a non-callable.
    """
    if isinstance(identifier, str):
        if identifier not in table:
            raise ValueError(
                f"Unknown {kind} {identifier!r}. Use one of "
                f"{sorted(table)}{alternative}."
            )
        return table[identifier]
    if callable(identifier):
        return identifier
    raise ValueError(f"{kind} must be a name or a callable, got {identifier!r}.")


def _unit_l2(gradients):
    flat = tf.reshape(gradients, [tf.shape(gradients)[0], -1])
    norms = tf.norm(flat, axis=-1)
    safe = tf.where(norms > 0, norms, tf.ones_like(norms))
    shape = tf.concat([tf.shape(norms), tf.ones_like(tf.shape(gradients)[1:])], 0)
    return gradients / tf.reshape(safe, shape)


def _largest_entry(gradients):
    """sign(g_i) on one entry of largest |g_i| per example, 0 elsewhere."""
    flat = tf.reshape(gradients, [tf.shape(gradients)[0], -1])
    largest = tf.argmax(tf.abs(flat), axis=-1, output_type=tf.int32)
    one_hot = tf.one_hot(largest, tf.shape(flat)[1], dtype=flat.dtype)
    return tf.reshape(one_hot * tf.sign(flat), tf.shape(gradients))


# The direction d in which each norm of g is its inner product <g, d>.
FD_DIRECTIONS = {squared_l2: _unit_l2, l2: _unit_l2, l1: tf.sign,
                 linf: _largest_entry}
