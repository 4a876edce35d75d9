"""The paper's regularizer functions Reg(x) and the norms of dReg/dx.

Ground floor of keras-gradreg: what Eq. (2) and (3) of Yu et al. define.

* ``logit_margin``: Reg(x) = max_{i != t} Z(x)_i - Z(x)_t (Eq. 3), the paper's
  regularizer ("Logit-reg").
* ``cross_entropy``: Reg(x) = CE(softmax(Z(x)), t), the baseline of Ross &
  Doshi-Velez (2017) ("Xent-reg").
* ``squared_l2``, ``l2``, ``l1``, ``linf``: per-example norms L_norm of the
  input gradient dReg/dx. By norm duality an eps-perturbation in norm p
  changes Reg by at most about ``eps * ||dReg/dx||_q`` with q the dual norm:
  ``l1`` pairs with L-inf threats, ``l2`` (or ``squared_l2``) with L2 and
  ``linf`` with L1. They are defined in ``_penalty_norms`` and importable
  from here.

All functions are usable without :class:`keras_gradreg.GradRegModel`, e.g.

>>> import numpy as np
>>> logits = np.array([[2.0, 1.0, 0.5]], "float32")
>>> float(logit_margin(logits, np.array([0]))[0])
-1.0
"""

from __future__ import annotations

from typing import Callable, Union

import keras
import tensorflow as tf

from keras_gradreg._penalty_norms import FD_DIRECTIONS
from keras_gradreg._penalty_norms import NORMS
from keras_gradreg._penalty_norms import by_name
from keras_gradreg._penalty_norms import get_norm
from keras_gradreg._penalty_norms import l1
from keras_gradreg._penalty_norms import l2
from keras_gradreg._penalty_norms import linf
from keras_gradreg._penalty_norms import squared_l2

__all__ = [
    "logit_margin",
    "cross_entropy",
    "squared_l2",
    "l2",
    "l1",
    "linf",
    "get_regularizer",
    "get_norm",
    "sparse_labels",
    "input_gradients",
    "finite_difference_norm",
]

RegularizerFn = Callable[[tf.Tensor, tf.Tensor], tf.Tensor]


def sparse_labels(labels, num_classes: int | None = None) -> tf.Tensor:
    """Returns integer class indices shaped ``(batch,)``.

    Accepts sparse labels shaped ``(batch,)`` or ``(batch, 1)`` and one-hot
    (or soft) labels shaped ``(batch, num_classes)``; the latter are reduced
    by ``argmax``.

    Args:
        labels: Label tensor or array.
        num_classes: Number of classes; when given, a ``(batch, num_classes)``
            label tensor with ``num_classes > 1`` is taken as one-hot.

    Returns:
        An ``int32`` tensor of shape ``(batch,)``.

    Raises:
        ValueError: For scalar labels or one-hot labels of the wrong width.
        tf.errors.InvalidArgumentError: For float sparse labels that are not
            integer-valued (e.g. 0.6), and when ``num_classes`` is given and
            a label lies outside ``[0, num_classes)`` (checked in-graph).

    Example:
        >>> sparse_labels([[0, 1, 0], [1, 0, 0]], num_classes=3).numpy()
        array([1, 0], dtype=int32)
    """
    labels = tf.convert_to_tensor(labels)
    rank = labels.shape.rank
    if rank == 2 and labels.shape[-1] is not None and labels.shape[-1] > 1:
        if num_classes is not None and labels.shape[-1] != num_classes:
            raise ValueError(
                f"One-hot labels have {labels.shape[-1]} columns but the model "
                f"has {num_classes} classes. Pass integer labels shaped "
                "(batch,) or one-hot labels shaped (batch, num_classes)."
            )
        return tf.argmax(labels, axis=-1, output_type=tf.int32)
    if rank == 2 or (rank is not None and rank > 2):
        labels = tf.reshape(labels, [-1])
    elif rank == 0:
        raise ValueError(
            "Labels must have a batch dimension: got a scalar. Pass integer "
            "labels shaped (batch,) or one-hot labels shaped (batch, classes)."
        )
    if labels.dtype.is_floating:
        # 0.6 or 1.4 is no class: a loss would truncate it, a round would
        # move it; reject it instead.
        integer_valued = tf.debugging.Assert(
            tf.reduce_all(tf.equal(labels, tf.round(labels))),
            ["Labels must be integer class indices (or one-hot rows); got "
             "float labels with a fractional part."],
        )
        with tf.control_dependencies([integer_valued]):
            labels = tf.identity(labels)
    labels = tf.cast(labels, tf.int32)
    if num_classes is None:
        return labels
    message = (
        f"Labels must be integers in [0, {num_classes}) for a model with "
        f"{num_classes} classes (or one-hot rows of length {num_classes})."
    )
    checks = [
        tf.debugging.assert_non_negative(labels, message=message),
        tf.debugging.assert_less(labels, num_classes, message=message),
    ]
    with tf.control_dependencies(checks):
        return tf.identity(labels)


def _true_class_mask(logits: tf.Tensor, labels) -> tf.Tensor:
    num_classes = logits.shape[-1]
    labels = sparse_labels(labels, num_classes)
    depth = num_classes if num_classes is not None else tf.shape(logits)[-1]
    return tf.cast(tf.one_hot(labels, depth, dtype=tf.int32), tf.bool)


@keras.saving.register_keras_serializable(package="keras_gradreg")
def logit_margin(logits, labels) -> tf.Tensor:
    """Per-example logit margin Reg(x) = max_{i != t} Z_i - Z_t (Eq. 3).

    Positive exactly when the example is misclassified. The true class is
    masked with ``tf.where`` and the row minimum (never a large sentinel
    constant), so the function is safe in float16.

    Args:
        logits: Pre-softmax class scores Z, shaped ``(batch, num_classes)``.
        labels: True classes, sparse ``(batch,)`` or one-hot.

    Returns:
        A tensor shaped ``(batch,)`` in the dtype of ``logits``.

    Example:
        >>> z = tf.constant([[3.0, 1.0, 2.0]])
        >>> logit_margin(z, [0]).numpy()
        array([-1.], dtype=float32)
    """
    logits = tf.convert_to_tensor(logits)
    is_true = _true_class_mask(logits, labels)
    true_logit = tf.reduce_sum(
        tf.where(is_true, logits, tf.zeros_like(logits)), axis=-1
    )
    row_min = tf.reduce_min(logits, axis=-1, keepdims=True)
    wrong_logits = tf.where(is_true, row_min, logits)
    return tf.reduce_max(wrong_logits, axis=-1) - true_logit


@keras.saving.register_keras_serializable(package="keras_gradreg")
def cross_entropy(logits, labels) -> tf.Tensor:
    """Per-example softmax cross-entropy, the Xent-reg regularizer.

    Ross & Doshi-Velez (2017), "Improving the Adversarial Robustness and
    Interpretability of Deep Neural Networks by Regularizing their Input
    Gradients".

    Args:
        logits: Pre-softmax class scores, shaped ``(batch, num_classes)``.
        labels: True classes, sparse ``(batch,)`` or one-hot.

    Returns:
        A tensor shaped ``(batch,)``.

    Example:
        >>> z = tf.constant([[0.0, 0.0]])
        >>> round(float(cross_entropy(z, [1])[0]), 4)
        0.6931
    """
    logits = tf.convert_to_tensor(logits)
    labels = sparse_labels(labels, logits.shape[-1])
    return tf.nn.sparse_softmax_cross_entropy_with_logits(
        labels=labels, logits=logits
    )


REGULARIZERS = {"logit_margin": logit_margin, "cross_entropy": cross_entropy}


def get_regularizer(identifier: Union[str, RegularizerFn]) -> RegularizerFn:
    """Returns the regularizer function for a name or a callable.

    Args:
        identifier: ``"logit_margin"``, ``"cross_entropy"`` or a callable
            ``(logits, labels) -> per-example values``.

    Returns:
        The regularizer function.

    Raises:
        ValueError: For an unknown name or a non-callable.

    Example:
        >>> get_regularizer("logit_margin") is logit_margin
        True
    """
    return by_name(identifier, REGULARIZERS, "regularizer",
                   " or a callable (logits, labels) -> per-example values")


def name_of(function: Callable) -> Union[str, Callable]:
    """Returns the registered short name of a built-in function, else itself."""
    for table in (REGULARIZERS, NORMS):
        for name, candidate in table.items():
            if candidate is function:
                return name
    return function


def finite_difference_norm(
    logits_fn: Callable, regularizer: RegularizerFn, norm: Callable, x,
    labels, reg_values, input_grads, step: float,
) -> tf.Tensor:
    """Finlay & Oberman (2019): the norm of dReg/dx as a difference quotient.

    With ``d`` the (detached) direction in which the gradient's norm is its
    inner product (g/||g||_2 for the L2 norms, sign(g) for L1, the signed
    unit vector of g's largest entry for L-inf),
    ``q = (Reg(x + h d) - Reg(x)) / h`` approximates ||g||; the penalty is
    ``q**2`` (squared_l2) or ``|q|`` (l2, l1): bounded below by 0, so a
    network cannot game it, and its weight gradient needs no second
    derivatives (one more forward pass instead).

    Args:
        logits_fn: ``x -> logits``.
        regularizer: The regularizer Reg.
        norm: ``squared_l2``, ``l2``, ``l1`` or ``linf``.
        x: The inputs.
        labels: Sparse labels of ``x``.
        reg_values: Reg(x), per example.
        input_grads: dReg/dx (pass it through ``tf.stop_gradient``).
        step: The step ``h`` in input units.

    Returns:
        The per-example penalty, in the dtype of ``reg_values``.

    Example:
        >>> w = tf.constant([[1.0, -1.0], [2.0, 0.0]])  # logits = x @ w
        >>> x, labels = tf.constant([[1.0, 0.0]]), tf.constant([0])
        >>> logits_fn = lambda inputs: tf.matmul(inputs, w)
        >>> grads = input_gradients(logits_fn, x, labels)  # d margin / dx
        >>> reg = logit_margin(logits_fn(x), labels)
        >>> q = finite_difference_norm(logits_fn, logit_margin, l1, x, labels,
        ...                            reg, grads, 0.01)
        >>> round(float(q[0]), 3), float(l1(grads)[0])  # exact: Reg is linear here
        (4.0, 4.0)
    """
    direction = FD_DIRECTIONS[norm](input_grads)
    step = tf.cast(step, x.dtype)
    shifted_logits = tf.cast(logits_fn(x + step * direction), reg_values.dtype)
    shifted = regularizer(shifted_logits, labels)
    quotient = (shifted - reg_values) / tf.cast(step, reg_values.dtype)
    if norm is squared_l2:
        return tf.square(quotient)
    return tf.abs(quotient)


def input_gradients(
    logits_fn: Callable, x, labels, regularizer="logit_margin"
) -> tf.Tensor:
    """Gradient of the summed per-example regularizer w.r.t. the input.

    Because each example's Reg depends only on its own input, the gradient of
    the sum gives every example's own dReg/dx.

    Args:
        logits_fn: A callable (e.g. a Keras model) mapping ``x`` to logits.
        x: A float batch of inputs.
        labels: True classes, sparse or one-hot.
        regularizer: A regularizer name or callable.

    Returns:
        dReg/dx, a float tensor shaped like ``x``.

    Example:
        >>> model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(3)])
        >>> input_gradients(model, tf.ones((4, 2)), [0, 1, 2, 0]).shape
        TensorShape([4, 2])
    """
    regularizer = get_regularizer(regularizer)
    x = tf.convert_to_tensor(x)
    if not x.dtype.is_floating:
        raise TypeError(
            f"Inputs must be floating point to take gradients, got {x.dtype}. "
            "Cast them, e.g. x = tf.cast(x, tf.float32) / 255."
        )
    with tf.GradientTape() as tape:
        tape.watch(x)
        logits = tf.cast(logits_fn(x), tf.float32)
        total = tf.reduce_sum(regularizer(logits, labels))
    return tape.gradient(total, x)
