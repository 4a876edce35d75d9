"""The attack that crafts an ``AdversarialTrainingModel``'s training inputs.

A random start of radius ``start_radius`` (uniform in L-inf; in L2 and L1
Gaussian noise scaled into the ball), then ``steps`` steps of the attacks'
sign-gradient loop (``attacks._core``), each followed by a projection onto
the ``eps``-ball and the clip range (onto the clip range only without
``project``). The settings are read from the model: ``eps``,
``step_size``, ``steps``, ``random_start``, ``start_radius``, ``project``,
``loss_name``, ``confidence``, ``attack_norm``, ``clip_min``, ``clip_max``
and its ``seed_generator``.
"""

from __future__ import annotations

from typing import Callable

import keras
import tensorflow as tf

from keras_gradreg.attacks import _core as attack_core
from keras_gradreg.attacks import _norms as attack_norms
from keras_gradreg.attacks import losses as attack_losses


def craft(model, x, labels) -> tf.Tensor:
    """The training attack's adversarial examples for the batch ``x``.

    Args:
        model: The ``AdversarialTrainingModel`` (its attack settings and
            the logits it attacks).
        x: A float batch, checked to be inside the clip range.
        labels: Its labels, sparse or one-hot.

    Returns:
        A tensor shaped like ``x``, not differentiated through.
    """
    objective = attack_losses.objective(model.loss_name, False,
                                        model.confidence)
    project = _projector(model, x)
    x_adv = x
    if model.random_start:
        x_adv = project(x + _noise(model, x))
    direction = None
    if model.attack_norm != "linf":
        direction = attack_core.ascent_direction(
            model.attack_norm, model.clip_min is not None,
            model.clip_max is not None, *_clip_values(model, x.dtype),
        )
    x_adv = attack_core.signed_gradient_steps(
        lambda inputs: model.logits(inputs, training=False), objective,
        x_adv, labels, model.steps, tf.cast(model.step_size, x.dtype),
        project, direction,
    )
    return tf.stop_gradient(x_adv)


def in_clip_range(x, clip_min, clip_max, owner: str) -> tf.Tensor:
    """``x``, after in-graph checks that it lies in ``[clip_min,
    clip_max]`` (a bound of None is not checked); ``owner`` names the model
    in the error."""
    checks = []
    for bound, name, below in ((clip_min, "clip_min", True),
                               (clip_max, "clip_max", False)):
        if bound is None:
            continue
        value = tf.cast(bound, x.dtype)
        inside = tf.reduce_all(x >= value if below else x <= value)
        side = "below" if below else "above"
        checks.append(tf.debugging.Assert(inside, [
            f"{owner} inputs have values {side} "
            f"{name}={bound}: rescale them (e.g. x / 255 for pixels) or "
            f"pass {name}=None for unbounded features."
        ]))
    with tf.control_dependencies([op for op in checks if op is not None]):
        return tf.identity(x)


def _clip(model, x_adv):
    if model.clip_min is not None:
        x_adv = tf.maximum(x_adv, tf.cast(model.clip_min, x_adv.dtype))
    if model.clip_max is not None:
        x_adv = tf.minimum(x_adv, tf.cast(model.clip_max, x_adv.dtype))
    return x_adv


def _projector(model, x) -> Callable:
    """The projection after each step: onto the eps-ball around ``x`` and
    the clip range (the attacks' own, :func:`attacks._core.projector`), or
    (without ``project``) onto the clip range only."""
    if not model.project:
        return lambda x_adv: _clip(model, x_adv)
    project = attack_core.projector(model.clip_min is not None,
                                    model.clip_max is not None,
                                    model.attack_norm)
    eps = tf.cast(model.eps, x.dtype)
    low, high = _clip_values(model, x.dtype)
    return lambda x_adv: project(x_adv, x, eps, low, high)


def _clip_values(model, dtype) -> tuple:
    return tuple(tf.cast(0.0 if bound is None else bound, dtype)
                 for bound in (model.clip_min, model.clip_max))


def _noise(model, x) -> tf.Tensor:
    """The random start's perturbation, of radius ``start_radius``."""
    if model.attack_norm == "linf":
        return keras.random.uniform(
            tf.shape(x), -model.start_radius, model.start_radius,
            dtype=x.dtype, seed=model.seed_generator,
        )
    noise = keras.random.normal(tf.shape(x), dtype=x.dtype,
                                seed=model.seed_generator)
    return attack_norms.gaussian_to_ball(
        noise, tf.cast(model.start_radius, x.dtype), model.attack_norm)
