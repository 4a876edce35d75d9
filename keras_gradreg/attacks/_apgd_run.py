"""One APGD run in L-inf or L2: step-size schedule, momentum, checkpoints.

The schedule of Croce & Hein (2020) that :mod:`keras_gradreg.attacks.apgd`
describes: the step starts at ``2 * eps`` per example, momentum 0.75 after
the first step, and at each checkpoint (the first after 22% of the steps,
then intervals shrinking by 3% of the steps down to 6%) an example's step
halves and it restarts from its best point if its loss oscillated or
stalled. :func:`random_run` starts a run of any norm from a random point
of the ball (L1's run is in ``_apgd_l1``).
"""

from __future__ import annotations

import tensorflow as tf

from keras_gradreg.attacks import _apgd_l1
from keras_gradreg.attacks import _core
from keras_gradreg.attacks import _norms
from keras_gradreg.attacks import losses as attack_losses

MOMENTUM = 0.75
"""Weight of the new step against the previous one (none on the first)."""
OSCILLATION_FRACTION = 0.75
"""An example whose loss rose in at most this share of the steps since the
last checkpoint oscillates: its step halves."""


def schedule(steps: tf.Tensor):
    """First checkpoint interval, its decrement and its minimum (in steps)."""
    first = tf.maximum(22 * steps // 100, 1)
    decrement = tf.maximum(3 * steps // 100, 1)
    minimum = tf.maximum(6 * steps // 100, 1)
    return first, decrement, minimum


def run(logits_fn, objective, project, x, labels, targeted, steps, eps,
        start, clip_min, clip_max, eot=1, norm="linf"):
    """One L-inf or L2 APGD run from ``start``, shared by ``apgd`` and
    ``apgd_t``.

    ``objective(logits, labels)`` is the per-example loss to maximize and
    ``eot`` the number of gradient samples averaged per step.

    Returns:
        ``(best_point, best_loss, adversarial_point, fooled)``.
    """
    def bounded(point):
        return project(point, x, eps, clip_min, clip_max)

    x_adv = bounded(start)
    logits, loss, gradient = _core.loss_and_gradient(
        logits_fn, objective, x_adv, labels, eot
    )
    fooled = attack_losses.success(logits, labels, targeted)
    x_best_adv, x_best, grad_best, loss_best = x_adv, x_adv, gradient, loss
    best = (x_best_adv, fooled, x_best, grad_best, loss_best)
    batch = tf.shape(x)[0]
    step = tf.fill([batch], 2.0 * tf.cast(eps, tf.float32))
    interval, decrement, minimum = schedule(steps)
    since_check = tf.constant(0)
    increases = tf.zeros([batch], tf.float32)
    previous_loss = loss
    loss_best_at_check = loss_best
    halved_at_check = tf.ones([batch], tf.bool)
    x_previous = x_adv

    for i in tf.range(steps):
        momentum = tf.where(i > 0, MOMENTUM, 1.0)
        step_x = tf.cast(_core.per_example(step, x_adv), x_adv.dtype)
        momentum_x = tf.cast(momentum, x_adv.dtype)
        if norm == "linf":
            z = bounded(x_adv + step_x * tf.sign(gradient))
        else:
            z = bounded(x_adv + step_x * _norms.direction(gradient, norm))
        x_next = bounded(
            x_adv + momentum_x * (z - x_adv)
            + (1 - momentum_x) * (x_adv - x_previous)
        )
        x_previous, x_adv = x_adv, x_next
        loss, gradient, best = _apgd_l1.step_and_track(
            logits_fn, objective, x_adv, labels, targeted, eot, best
        )
        x_best_adv, fooled, x_best, grad_best, loss_best = best
        increases += tf.cast(loss > previous_loss, tf.float32)
        previous_loss = loss

        since_check += 1
        at_check = tf.equal(since_check, interval)
        oscillating = increases <= OSCILLATION_FRACTION * tf.cast(
            interval, tf.float32
        )
        stalled = ~halved_at_check & (loss_best_at_check >= loss_best)
        halve = at_check & (oscillating | stalled)
        step = tf.where(halve, step / 2.0, step)
        x_adv = _core.where(halve, x_best, x_adv)
        gradient = _core.where(halve, grad_best, gradient)
        halved_at_check = tf.where(at_check, halve, halved_at_check)
        loss_best_at_check = tf.where(at_check, loss_best, loss_best_at_check)
        increases = tf.where(at_check, tf.zeros_like(increases), increases)
        interval = tf.where(
            at_check, tf.maximum(interval - decrement, minimum), interval
        )
        since_check = tf.where(at_check, 0, since_check)
    return x_best, loss_best, x_best_adv, fooled


def random_run(logits_fn, objective, project, x, labels, targeted, steps,
               eps, seed, restart, clip_min, clip_max, has_min, has_max,
               eot, norm, decreasing):
    """One APGD run of ``norm`` from a random point of the ball (of the
    first, largest radius of L1's decreasing-eps schedule)."""
    if norm == "l1":
        radius = eps * _apgd_l1.SCHEDULE[0][0] if decreasing else eps
        start = _core.random_start(x, radius, seed, restart, "l1")
        return _apgd_l1.run(
            logits_fn, objective, x, labels, targeted, steps, eps, start,
            clip_min, clip_max, has_min, has_max, eot, decreasing,
        )
    start = _core.random_start(x, eps, seed, restart, norm)
    return run(
        logits_fn, objective, project, x, labels, targeted, steps, eps,
        start, clip_min, clip_max, eot, norm,
    )
