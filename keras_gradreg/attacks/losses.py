"""The attackers' objectives: C&W, DLR and targeted DLR losses, and success.

Every loss here is maximized by the attacker and returns one float32 value
per example, so that attacks can keep each example's best point.
"""

from __future__ import annotations

from typing import Callable

import tensorflow as tf

from keras_gradreg import regularizers as regs


def cw_loss(logits, labels, confidence: float = 50.0) -> tf.Tensor:
    """Capped C&W margin min(max_{i != t} Z_i - Z_t, confidence), maximized.

    It is minus the L-inf C&W objective max(Z_t - max_{i != t} Z_i, -k) of
    Carlini & Wagner (2017), with ``t`` the true class and ``k`` the
    confidence: once the wrong-class margin reaches ``k`` its gradient is 0
    and the attack stops pushing.

    Args:
        logits: Class scores Z shaped ``(batch, classes)``.
        labels: True classes, sparse or one-hot.
        confidence: The cap k, ``>= 0``.

    Returns:
        A float32 tensor shaped ``(batch,)``, at most ``confidence``.

    Example:
        >>> cw_loss(tf.constant([[5.0, 0.0, 1.0]]), [2], 3.0).numpy()
        array([3.], dtype=float32)
    """
    logits = tf.cast(logits, tf.float32)
    margin = regs.logit_margin(logits, labels)
    return tf.minimum(margin, tf.cast(confidence, tf.float32))


def dlr_loss(logits, labels) -> tf.Tensor:
    """Difference of Logits Ratio of Croce & Hein (2020), maximized.

    DLR = -(Z_y - max_{i != y} Z_i) / (Z_pi1 - Z_pi3 + 1e-12), where
    Z_pi1 >= Z_pi2 >= Z_pi3 are the sorted logits. It is invariant to shifts
    and positive rescaling of the logits.

    Args:
        logits: Class scores shaped ``(batch, classes)`` with >= 3 classes.
        labels: True classes, sparse or one-hot.

    Returns:
        A float32 tensor shaped ``(batch,)``.

    Raises:
        ValueError: With fewer than 3 classes.

    Example:
        >>> dlr_loss(tf.constant([[4.0, 2.0, 0.0]]), [0]).numpy()
        array([-0.5], dtype=float32)
    """
    logits = tf.cast(logits, tf.float32)
    if logits.shape[-1] is not None and logits.shape[-1] < 3:
        raise ValueError(
            "The DLR loss needs at least 3 classes, the model has "
            f"{logits.shape[-1]}. Use loss='ce'."
        )
    top3 = tf.math.top_k(logits, k=3).values
    margin = regs.logit_margin(logits, labels)
    return margin / (top3[:, 0] - top3[:, 2] + 1e-12)


def targeted_dlr_loss(logits, labels, targets) -> tf.Tensor:
    """Targeted Difference of Logits Ratio of Croce & Hein (2020), maximized.

    DLR_t = -(Z_y - Z_t) / (Z_pi1 - (Z_pi3 + Z_pi4) / 2 + 1e-12), with
    Z_pi1 >= ... >= Z_pi4 the sorted logits: the APGD-T loss of AutoAttack.
    It is positive once the target's logit beats the true one, and invariant
    to shifts and positive rescaling of the logits.

    Args:
        logits: Class scores shaped ``(batch, classes)`` with >= 4 classes.
        labels: True classes, sparse or one-hot.
        targets: Target classes, sparse, shaped ``(batch,)``.

    Returns:
        A float32 tensor shaped ``(batch,)``.

    Raises:
        ValueError: With fewer than 4 classes.

    Example:
        >>> targeted_dlr_loss(tf.constant([[4.0, 2.0, 1.0, 0.0]]), [0], [1])
        <tf.Tensor: shape=(1,), dtype=float32, numpy=array([-0.5714286], dtype=float32)>
    """
    logits = tf.cast(logits, tf.float32)
    if logits.shape[-1] is not None and logits.shape[-1] < 4:
        raise ValueError(
            "The targeted DLR loss needs at least 4 classes, the model has "
            f"{logits.shape[-1]}. Use apgd with loss='ce' and target."
        )
    labels = regs.sparse_labels(labels)
    targets = tf.cast(tf.convert_to_tensor(targets), tf.int32)
    top4 = tf.math.top_k(logits, k=4).values
    true = tf.gather(logits, labels, axis=1, batch_dims=1)
    target = tf.gather(logits, targets, axis=1, batch_dims=1)
    scale = top4[:, 0] - (top4[:, 2] + top4[:, 3]) / 2.0 + 1e-12
    return -(true - target) / scale


def objective(loss: str, targeted: bool, confidence) -> Callable:
    """Returns ``f(logits, labels) -> per-example value to maximize``.

    For a targeted attack ``labels`` are the targets and the objective pulls
    the logits towards them.
    """
    if loss == "ce":
        sign = -1.0 if targeted else 1.0
        return lambda z, t: sign * regs.cross_entropy(z, t)
    if loss == "cw":
        if targeted:
            return lambda z, t: tf.minimum(
                -regs.logit_margin(z, t), tf.cast(confidence, tf.float32)
            )
        return lambda z, t: cw_loss(z, t, confidence)
    if loss == "dlr":
        if targeted:
            raise ValueError("loss='dlr' is untargeted; use loss='ce' with target.")
        return dlr_loss
    raise ValueError(f"Unknown loss {loss!r}.")


def success(logits: tf.Tensor, labels: tf.Tensor, targeted: bool) -> tf.Tensor:
    """Per-example attack success: misclassified, or classified as target."""
    predicted = tf.argmax(logits, axis=-1, output_type=tf.int32)
    if targeted:
        return tf.equal(predicted, labels)
    return tf.not_equal(predicted, labels)
