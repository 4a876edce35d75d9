"""Eq. 3-4 of Yu et al. on a batch: the penalty's forward pass and norms.

Which examples get the penalty (all, or a random ``penalty_fraction``
while training), the base's logits for the whole batch from one forward
pass that an input tape records on the penalized part, Reg on those
logits (Eq. 3), and the per-example L_norm(dReg/dx) (Eq. 4) by double
backpropagation or by finite differences. ``GradRegModel``'s steps call
:func:`penalized_forward` inside their outer tape, so that the penalty's
weight gradient is recorded.

Example:
    >>> import keras
    >>> from keras_gradreg import regularizers as regs
    >>> base = keras.Sequential([keras.Input((2,)), keras.layers.Dense(3)])
    >>> logits, labels, penalties, index = penalized_forward(
    ...     lambda x, training: base(x, training=training), regs.logit_margin,
    ...     regs.squared_l2, "double_backprop", 0.01, 1.0, None,
    ...     tf.ones((4, 2)), tf.constant([0, 1, 2, 0]), training=False)
    >>> tuple(logits.shape), tuple(penalties.shape), index.numpy().tolist()
    ((4, 3), (4,), [0, 1, 2, 3])
"""

from __future__ import annotations

from typing import Callable

import keras
import tensorflow as tf

from keras_gradreg import _step_checks
from keras_gradreg import regularizers as regs
from keras_gradreg._wrapper import _at_least_float32
from keras_gradreg._wrapper import _check_logits
from keras_gradreg._wrapper import _checked_labels


def penalized_forward(logits_fn: Callable, regularizer: Callable,
                      norm: Callable, method: str, fd_step: float,
                      fraction: float, seed, x, y, training: bool):
    """Eq. 3-4 on the forward pass the loss uses.

    Args:
        logits_fn: ``(x, training) -> logits`` of the base.
        regularizer: Reg, ``(logits, labels) -> per-example values``.
        norm: L_norm, ``gradients -> per-example values``.
        method: ``"double_backprop"`` or ``"finite_difference"``.
        fd_step: The finite-difference step.
        fraction: The share of the batch penalized while training.
        seed: The seed generator that draws that share (below 1).
        x: The batch's inputs.
        y: Its labels, sparse or one-hot.
        training: Whether the base runs in training mode (and only
            ``fraction`` of the batch is penalized).

    Returns:
        ``(logits, labels, penalties, index)``: the base's raw logits and
        the labels of the whole batch, the per-example L_norm(dReg/dx) of
        the penalized examples (all of them, or a random ``fraction``
        while training) and their indices.
    """
    x_pen, index, order = _split(x, fraction, seed, training)
    with tf.GradientTape() as input_tape:
        input_tape.watch(x_pen)
        logits = _forward(logits_fn, x_pen, x, index, order, training)
        labels = _checked_labels(y, logits)
        penalized_logits = tf.gather(logits, index)
        penalized_labels = tf.gather(labels, index)
        reg = _step_checks.per_example(  # Eq. 3: Reg(x) on float32 logits
            regularizer,
            regularizer(_at_least_float32(penalized_logits), penalized_labels),
            penalized_logits,
        )
    # Eq. 4. The gradient of a vector target is that of its sum: each
    # example's Reg depends only on its own input, so this is every
    # dReg_i/dx_i.
    input_grads = input_tape.gradient(reg, x_pen)
    if method == "finite_difference":
        penalties = regs.finite_difference_norm(
            lambda inputs: logits_fn(inputs, training), regularizer, norm,
            x_pen, penalized_labels, reg, tf.stop_gradient(input_grads),
            fd_step,
        )
    else:
        penalties = norm(input_grads)
    return logits, labels, tf.cast(penalties, dtype(x_pen, reg)), index


def _split(x, fraction: float, seed, training: bool):
    """Which examples get the penalty: all, or (while training) a random
    ``fraction``.

    Returns ``(x_pen, penalized, order)``: the penalized inputs, their
    indices in the batch and, with a fraction, the permutation that puts
    them first (None when every example is penalized).
    """
    batch = tf.shape(x)[0]
    if fraction >= 1.0 or not training:
        # identity: inside a tf.cond branch, a tensor from outside the
        # branch is captured on first use, so watch the branch's own copy.
        return tf.identity(x), tf.range(batch), None
    order = keras.random.shuffle(tf.range(batch), seed=seed)
    count = tf.cast(
        tf.math.ceil(fraction * tf.cast(batch, tf.float32)), tf.int32
    )
    penalized = order[:count]
    return tf.gather(x, penalized), penalized, order


def _forward(logits_fn: Callable, x_pen, x, penalized, order,
             training: bool):
    """The base's raw logits for the whole batch, in batch order.

    With a fraction (``order`` not None) the base runs on the penalized
    part (recorded by the input tape) and on the rest separately.
    """
    if order is None:
        return _check_logits(logits_fn(x_pen, training))
    rest = tf.gather(x, order[tf.shape(penalized)[0]:])
    logits = tf.concat(
        [_check_logits(logits_fn(x_pen, training)),
         _check_logits(logits_fn(rest, training))],
        axis=0,
    )
    return tf.gather(logits, tf.math.invert_permutation(order))


def batch_mean(values, sample_weight, indices) -> tf.Tensor:
    """Mean like Keras' "sum_over_batch_size" reduction, each value
    weighted by the ``sample_weight`` of the example at ``indices``."""
    count = tf.cast(tf.shape(values)[0], values.dtype)
    if sample_weight is not None:
        weights = tf.gather(tf.reshape(sample_weight, [-1]), indices)
        values = values * tf.cast(weights, values.dtype)
    return tf.reduce_sum(values) / tf.maximum(count, 1.0)


def dtype(x, logits) -> tf.DType:
    """float64 for float64 models, else float32 (also under mixed precision)."""
    if tf.float64 in (x.dtype, logits.dtype):
        return tf.float64
    return tf.float32


def penalized_count(x, c) -> tf.Tensor:
    """The batch's examples counted in ``grad_loss``: all, or none at c = 0."""
    return tf.where(c > 0, tf.shape(x)[0], 0)
