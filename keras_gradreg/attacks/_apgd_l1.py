"""APGD's L1 run: the adaptive sparsity schedule of Croce & Hein (2021).

"Mind the box: l1-APGD for sparse adversarial attacks on image
classifiers" (ICCV 2021). Where the L-inf and L2 APGD halve a step size
(:mod:`keras_gradreg.attacks.apgd`), L1-APGD adapts how many coordinates a
step moves:

* each step moves ``step`` (in L1) spread evenly over the share ``k`` of
  the coordinates with the largest ``|gradient|``, then projects exactly
  onto the L1 ball within the clip box (:func:`_norms.l1_box_projection`);
  no momentum;
* the step starts at ``eps`` and ``k`` at 20% (in the decreasing-eps
  schedule, at two thirds of the start point's sparsity);
* every 4% of the steps: ``k`` becomes two thirds of the sparsity of the
  best point so far; if that sparsity fell by more than 5% since the last
  check, the step resets to ``eps`` and the run restarts from the best
  point, else the step shrinks by 1.5 (never below ``eps / 10``);
* the decreasing-eps schedule (AutoAttack's L1 default): 30% of the steps
  at ``3 eps``, 30% at ``2 eps``, the rest at ``eps``, each stage starting
  from the previous stage's best point projected into the smaller ball.
  Only the last stage's successes count.
"""

from __future__ import annotations

import tensorflow as tf

from keras_gradreg.attacks import _core
from keras_gradreg.attacks import _norms
from keras_gradreg.attacks import losses as attack_losses

INITIAL_SPARSITY = 0.2
SPARSITY_DROP = 0.95
STEP_SHRINK = 1.5
MIN_STEP_FRACTION = 0.1
CHECK_FRACTION = 0.04
SCHEDULE = ((3.0, 0.3), (2.0, 0.3), (1.0, None))
"""(eps multiple, share of the steps) of the decreasing-eps stages; the last
stage takes the remaining steps."""


def step_and_track(logits_fn, objective, x_adv, labels, targeted, eot, best):
    """Loss and gradient at the new iterate ``x_adv``, and the best points.

    Shared by every APGD run. ``best`` is ``(adversarial_point, fooled,
    best_point, best_gradient, best_loss)``: the last misclassified iterate
    of each example and whether there is one, and its highest-loss iterate
    with that iterate's gradient and loss.

    Returns:
        ``(loss, gradient, best)`` with ``best`` updated.
    """
    x_best_adv, fooled, x_best, grad_best, loss_best = best
    logits, loss, gradient = _core.loss_and_gradient(
        logits_fn, objective, x_adv, labels, eot
    )
    succeeded = attack_losses.success(logits, labels, targeted)
    x_best_adv = _core.where(succeeded, x_adv, x_best_adv)
    fooled = fooled | succeeded
    improved = loss > loss_best
    x_best = _core.where(improved, x_adv, x_best)
    grad_best = _core.where(improved, gradient, grad_best)
    loss_best = tf.where(improved, loss, loss_best)
    return loss, gradient, (x_best_adv, fooled, x_best, grad_best, loss_best)


def _sparsity(delta) -> tf.Tensor:
    """Number of non-zero coordinates per example, as float32."""
    flat = tf.reshape(delta, [tf.shape(delta)[0], -1])
    return tf.reduce_sum(tf.cast(tf.not_equal(flat, 0), tf.float32), axis=1)


def _stage(logits_fn, objective, x, labels, targeted, steps, eps, start,
           clip_min, clip_max, has_min, has_max, eot, given_start):
    """One L1-APGD run of ``steps`` at radius ``eps`` from ``start``.

    Returns:
        ``(best_point, best_loss, adversarial_point, fooled)``.
    """
    def bounded(point):
        return _norms.project(point, x, eps, "l1", clip_min, clip_max,
                              has_min, has_max)

    x_adv = bounded(start)
    logits, loss, gradient = _core.loss_and_gradient(
        logits_fn, objective, x_adv, labels, eot
    )
    fooled = attack_losses.success(logits, labels, targeted)
    best = (x_adv, fooled, x_adv, gradient, loss)
    batch = tf.shape(x)[0]
    features = tf.cast(tf.reduce_prod(tf.shape(x)[1:]), tf.float32)
    eps32 = tf.cast(eps, tf.float32)
    step = tf.fill([batch], eps32)
    if given_start:
        sparsity_old = _sparsity(x_adv - x)
        share = sparsity_old / features / STEP_SHRINK
    else:
        sparsity_old = tf.fill([batch], features)
        share = tf.fill([batch], INITIAL_SPARSITY)
    interval = tf.maximum(
        tf.cast(CHECK_FRACTION * tf.cast(steps, tf.float32), tf.int32), 1
    )
    since_check = tf.constant(0)
    for _ in tf.range(steps):
        move = _norms.direction(gradient, "l1", share)
        step_x = tf.cast(_core.per_example(step, x_adv), x_adv.dtype)
        x_adv = bounded(x_adv + step_x * move)
        _, gradient, best = step_and_track(
            logits_fn, objective, x_adv, labels, targeted, eot, best
        )

        since_check += 1
        if since_check == interval:
            since_check = tf.constant(0)
            _, _, x_best, grad_best, _ = best
            sparsity_now = _sparsity(x_best - x)
            sparser = sparsity_now / sparsity_old < SPARSITY_DROP
            share = sparsity_now / features / STEP_SHRINK
            step = tf.where(sparser, eps32, step / STEP_SHRINK)
            step = tf.clip_by_value(step, MIN_STEP_FRACTION * eps32, eps32)
            sparsity_old = sparsity_now
            x_adv = _core.where(sparser, x_best, x_adv)
            gradient = _core.where(sparser, grad_best, gradient)
    x_best_adv, fooled, x_best, _, loss_best = best
    return x_best, loss_best, x_best_adv, fooled


def run(logits_fn, objective, x, labels, targeted, steps, eps, start,
        clip_min, clip_max, has_min, has_max, eot=1, decreasing=True):
    """L1-APGD from the random point ``start`` (projected here).

    With ``decreasing`` the three stages of the decreasing-eps schedule
    share the ``steps``; else one run at ``eps``.

    Returns:
        ``(best_point, best_loss, adversarial_point, fooled)`` of the run at
        ``eps`` (the last stage).
    """
    if not decreasing:
        return _stage(logits_fn, objective, x, labels, targeted, steps, eps,
                      start, clip_min, clip_max, has_min, has_max, eot,
                      given_start=False)
    done = tf.constant(0)
    point = start
    result = None
    for multiple, share in SCHEDULE:
        if share is None:
            stage_steps = tf.maximum(steps - done, 0)
        else:
            stage_steps = tf.cast(
                tf.math.ceil(share * tf.cast(steps, tf.float32)), tf.int32
            )
        stage_eps = multiple * eps
        result = _stage(logits_fn, objective, x, labels, targeted,
                        stage_steps, stage_eps, point, clip_min, clip_max,
                        has_min, has_max, eot, given_start=True)
        point = result[0]
        done += stage_steps
    return result
