"""FAB-T: the targeted Fast Adaptive Boundary attack, L-inf, L2 or L1.

Croce & Hein (ICML 2020), "Minimally distorted adversarial examples with a
fast adaptive boundary attack"; the third attack of AutoAttack. FAB looks
for the smallest perturbation in the norm p that changes the class. Per
target t and iteration, at the current point x_k:

* linearize the boundary between the true class y and t:
  f(z) ~ f(x_k) + g . (z - x_k) with f = Z_t - Z_y and g its input gradient;
* project x_k and the original point x onto that hyperplane within the
  clip box in the norm p (:func:`project_linf`, :func:`project_l2`,
  :func:`project_l1`): steps d_k and d_0;
* mix them, biased towards the original point:
  alpha = min(||d_k||_p / (||d_k||_p + ||d_0||_p), alpha_max),
  x_{k+1} = clip((1 - alpha)(x_k + eta d_k) + alpha (x + eta d_0)),
  with the extrapolation eta = 1.05 and alpha_max = 0.1;
* when x_{k+1} is misclassified, remember it if it is the closest so far
  and step back towards x: x_{k+1} = x + beta (x_{k+1} - x), beta = 0.9.

Targets are the classes with the highest clean logits besides the true one,
tried in order on the examples not yet broken within eps.
"""

from __future__ import annotations

import functools
from typing import Optional

import tensorflow as tf

from keras_gradreg import _checks
from keras_gradreg.attacks import _core
from keras_gradreg.attacks import _norms
from keras_gradreg.attacks import losses as attack_losses

__all__ = ["fab_t", "project_linf", "project_l2", "project_l1"]

ALPHA_MAX = 0.1
ETA = 1.05
BETA = 0.9
# Stands in for an unbounded side of the clip range.
_FAR = 1e10


def project_linf(points, normal, offset, low, high) -> tf.Tensor:
    """Smallest L-inf step onto a hyperplane inside a box, per row.

    Solves min ||d||_inf s.t. normal . (points + d) = offset and
    low <= points + d <= high. With c = offset - normal . points (made >= 0
    by flipping the normal's sign), the best step moves each coordinate
    towards the hyperplane by min(r, room_i), where room_i is its distance to
    the box in that direction and r the smallest radius with
    sum_i |normal_i| min(r, room_i) = c: a concave piecewise-linear
    equation solved on the coordinates sorted by room. If the box does not
    reach the hyperplane the step goes to the box's nearest corner.

    Args:
        points: Shaped ``(n, features)``.
        normal: Hyperplane normals, shaped ``(n, features)``.
        offset: Hyperplane offsets, shaped ``(n,)``.
        low: Lower box bounds, broadcastable to ``points``.
        high: Upper box bounds, broadcastable to ``points``.

    Returns:
        The steps ``d``, shaped ``(n, features)``.

    Example:
        >>> d = project_linf(tf.constant([[0.0, 0.0]]), tf.constant([[1.0, 2.0]]),
        ...                  tf.constant([3.0]), -10.0, 10.0)
        >>> d.numpy()
        array([[1., 1.]], dtype=float32)
    """
    normal, gap, room = _towards_hyperplane(points, normal, offset, low, high)
    radius = _capped_radius(tf.abs(normal), room, gap)
    return tf.sign(normal) * tf.minimum(radius[:, None], room)


def _towards_hyperplane(points, normal, offset, low, high):
    """The normal flipped so the hyperplane lies on its positive side, the
    gap ``offset - normal . points >= 0`` and each coordinate's room towards
    it inside the box (0 where the normal is 0)."""
    gap = offset - tf.reduce_sum(normal * points, axis=1)
    flip = tf.where(gap < 0, -tf.ones_like(gap), tf.ones_like(gap))
    normal = normal * flip[:, None]
    gap = gap * flip
    room = tf.where(normal > 0, high - points, points - low)
    room = tf.where(tf.equal(normal, 0), tf.zeros_like(room), room)
    return normal, gap, room


def _capped_radius(weight, cap, gap):
    """The smallest r >= 0 with sum_i weight_i min(r, cap_i) = gap, per row
    (``_FAR`` where even r = max cap falls short): the concave
    piecewise-linear equation solved on the coordinates sorted by cap."""
    order = tf.argsort(cap, axis=1)
    cap_sorted = tf.gather(cap, order, batch_dims=1)
    weight_sorted = tf.gather(weight, order, batch_dims=1)
    covered = tf.cumsum(weight_sorted * cap_sorted, axis=1, exclusive=True)
    tail = tf.reduce_sum(weight, axis=1, keepdims=True) - tf.cumsum(
        weight_sorted, axis=1, exclusive=True
    )
    reach = covered + cap_sorted * tail
    segment = tf.reduce_sum(tf.cast(reach < gap[:, None], tf.int32), axis=1)
    features = tf.shape(cap)[1]
    feasible = segment < features
    segment = tf.minimum(segment, features - 1)
    radius = (gap - tf.gather(covered, segment, batch_dims=1)) / tf.maximum(
        tf.gather(tail, segment, batch_dims=1), 1e-30
    )
    return tf.where(feasible, tf.maximum(radius, 0.0), _FAR)


def project_l2(points, normal, offset, low, high) -> tf.Tensor:
    """Smallest L2 step onto a hyperplane inside a box, per row.

    Solves min ||d||_2 s.t. normal . (points + d) = offset and
    low <= points + d <= high. By the KKT conditions the step is
    ``d_i = clip(t normal_i)`` to the box, with t >= 0 (the normal's sign
    flipped towards the hyperplane) the root of the non-decreasing
    ``sum_i normal_i^2 min(t, room_i / |normal_i|) = gap``: the same
    sorted piecewise-linear equation as :func:`project_linf`. If the box does
    not reach the hyperplane the step goes to the box's nearest corner.

    Example:
        >>> d = project_l2(tf.constant([[0.0, 0.0]]), tf.constant([[3.0, 4.0]]),
        ...                tf.constant([5.0]), -10.0, 10.0)
        >>> d.numpy().round(6)
        array([[0.6, 0.8]], dtype=float32)
    """
    normal, gap, room = _towards_hyperplane(points, normal, offset, low, high)
    magnitude = tf.abs(normal)
    cap = tf.where(magnitude > 0, room / tf.maximum(magnitude, 1e-30),
                   tf.zeros_like(room))
    scale = _capped_radius(tf.square(normal), cap, gap)
    return normal * tf.minimum(scale[:, None], cap)


def project_l1(points, normal, offset, low, high) -> tf.Tensor:
    """Smallest L1 step onto a hyperplane inside a box, per row.

    Solves min ||d||_1 s.t. normal . (points + d) = offset and
    low <= points + d <= high: a fractional knapsack. The coordinates of
    largest ``|normal_i|`` buy the most of the gap per unit of L1 norm, so
    they move first, each as far as the box lets it, until the gap is
    covered. If the box does not reach the hyperplane every coordinate moves
    to the box's corner.

    Example:
        >>> d = project_l1(tf.constant([[0.0, 0.0]]), tf.constant([[1.0, 2.0]]),
        ...                tf.constant([3.0]), -1.0, 1.0)
        >>> d.numpy()
        array([[1., 1.]], dtype=float32)
    """
    normal, gap, room = _towards_hyperplane(points, normal, offset, low, high)
    weight = tf.abs(normal)
    order = tf.argsort(weight, axis=1, direction="DESCENDING", stable=True)
    weight_sorted = tf.gather(weight, order, batch_dims=1)
    room_sorted = tf.gather(room, order, batch_dims=1)
    bought = weight_sorted * room_sorted
    before = tf.cumsum(bought, axis=1, exclusive=True)
    last = tf.reduce_sum(tf.cast(before + bought < gap[:, None], tf.int32),
                         axis=1)
    features = tf.shape(room)[1]
    feasible = last < features
    last = tf.minimum(last, features - 1)
    partial = (gap - tf.gather(before, last, batch_dims=1)) / tf.maximum(
        tf.gather(weight_sorted, last, batch_dims=1), 1e-30
    )
    index = tf.range(features)[None, :]
    amount = tf.where(
        index < last[:, None], room_sorted,
        tf.where(index == last[:, None],
                 tf.minimum(tf.maximum(partial, 0.0)[:, None], room_sorted),
                 tf.zeros_like(room_sorted)),
    )
    amount = tf.where(feasible[:, None], amount, room_sorted)
    amount = tf.gather(amount, tf.argsort(order, axis=1), batch_dims=1)
    return tf.sign(normal) * amount


_PROJECTIONS = {"linf": project_linf, "l2": project_l2, "l1": project_l1}


def _build(logits_fn, x_example, targeted, has_min, has_max, *, targets,
           norm="linf"):
    """Compiles FAB-T for one (model, settings)."""
    shape = x_example.shape.as_list()[1:]
    project = _PROJECTIONS[norm]

    def size(delta):
        if norm == "linf":
            return tf.reduce_max(tf.abs(delta), 1)
        return _norms.size(delta, norm)

    def attack_target(x0, labels, target, steps, low, high, alpha_max):
        """One FAB run towards ``target``: (closest adversarial, distance)."""

        def objective(logits, labels):
            true = tf.gather(logits, labels, axis=1, batch_dims=1)
            return tf.gather(logits, target, axis=1, batch_dims=1) - true

        dtype = x0.dtype
        x1 = x0
        closest = x0
        distance = tf.fill(tf.shape(labels), tf.constant(float("inf"), dtype))
        for _ in tf.range(steps):
            _, value, gradient = _core.loss_and_gradient(
                logits_fn, objective, tf.reshape(x1, [-1] + shape), labels
            )
            normal = tf.reshape(gradient, tf.shape(x1))
            offset = tf.reduce_sum(normal * x1, axis=1) - tf.cast(value, dtype)
            step_now = project(x1, normal, offset, low, high)
            step_origin = project(x0, normal, offset, low, high)
            size_now = tf.maximum(size(step_now), 1e-8)
            size_origin = tf.maximum(size(step_origin), 1e-8)
            alpha = tf.minimum(size_now / (size_now + size_origin), alpha_max)
            alpha = alpha[:, None]
            x1 = (1 - alpha) * (x1 + ETA * step_now) + alpha * (
                x0 + ETA * step_origin
            )
            x1 = tf.clip_by_value(x1, low, high)
            logits = tf.cast(logits_fn(tf.reshape(x1, [-1] + shape)), tf.float32)
            broken = attack_losses.success(logits, labels, False)
            moved = size(x1 - x0)
            closer = broken & (moved < distance)
            closest = _core.where(closer, x1, closest)
            distance = tf.where(closer, moved, distance)
            x1 = _core.where(broken, x0 + BETA * (x1 - x0), x1)
        return closest, distance

    def run(x, labels, seed, steps, eps, clip_min, clip_max):
        del seed  # FAB-T's single run starts at x: nothing random.
        flat = tf.reshape(x, [tf.shape(x)[0], -1])
        low = tf.fill(tf.shape(flat), tf.constant(-_FAR, x.dtype))
        high = tf.fill(tf.shape(flat), tf.constant(_FAR, x.dtype))
        if has_min:
            low = tf.fill(tf.shape(flat), clip_min)
        if has_max:
            high = tf.fill(tf.shape(flat), clip_max)
        logits = tf.cast(logits_fn(x), tf.float32)
        classes = logits.shape[-1]
        count = min(targets, classes - 1)
        others = tf.where(
            tf.one_hot(labels, classes) > 0, float("-inf"), logits
        )
        ranked = tf.math.top_k(others, k=count).indices
        wrong = attack_losses.success(logits, labels, False)
        distance = tf.where(wrong, tf.zeros_like(wrong, x.dtype), float("inf"))
        closest = flat
        alpha_max = tf.constant(ALPHA_MAX, x.dtype)
        for index in tf.range(count):
            done = distance <= eps
            if tf.reduce_all(done):
                break
            left = tf.where(~done)[:, 0]
            found, found_distance = attack_target(
                tf.gather(flat, left), tf.gather(labels, left),
                tf.gather(ranked[:, index], left), steps,
                tf.gather(low, left), tf.gather(high, left), alpha_max,
            )
            closer = found_distance < tf.gather(distance, left)
            chosen = tf.boolean_mask(left, closer)[:, None]
            closest = tf.tensor_scatter_nd_update(
                closest, chosen, tf.boolean_mask(found, closer)
            )
            distance = tf.tensor_scatter_nd_update(
                distance, chosen, tf.boolean_mask(found_distance, closer)
            )
        within = distance <= eps
        return tf.reshape(_core.where(within, closest, flat), tf.shape(x))

    return _core.trace_once(run, _core.signature(x_example, 3))


def fab_t(
    model,
    x,
    y,
    eps: float,
    steps: int = 100,
    targets: int = 9,
    clip_min: Optional[float] = 0.0,
    clip_max: Optional[float] = 1.0,
    batch_size: Optional[int] = 256,
    norm: str = "linf",
) -> tf.Tensor:
    """FAB-T: targeted minimum-norm attack, counted at radius ``eps``.

    Croce & Hein (ICML 2020); see the module docstring for the iteration
    (alpha_max 0.1, eta 1.05, beta 0.9, as in the paper and AutoAttack).
    FAB searches the smallest perturbation inside ``[clip_min, clip_max]``
    that changes the class; an example counts as broken when that
    perturbation is within ``eps`` in the norm ``norm``. Threat model:
    white-box, L-inf, L2 or L1.

    Args:
        model: A Keras model returning logits, a GradRegModel, or a callable.
        x: Float inputs shaped ``(batch, ...)``.
        y: True labels, sparse or one-hot; None uses the model's predictions.
        eps: Radius at which a perturbation counts, ``>= 0``.
        steps: Iterations per target, ``>= 1`` (AutoAttack uses 100).
        targets: Number of target classes, ``>= 1``; capped at classes - 1
            (AutoAttack uses 9).
        clip_min: Lower bound of valid inputs, or None.
        clip_max: Upper bound of valid inputs, or None.
        batch_size: Examples per compiled call; None for one batch.
        norm: The threat model: ``"linf"`` (default), ``"l2"`` or ``"l1"``.

    Returns:
        Shaped like ``x``: the closest misclassified point found when its
        distance to ``x`` in the norm is at most ``eps``, else ``x`` itself.

    Raises:
        ValueError, TypeError: For invalid arguments.

    Example:
        >>> import keras, numpy as np
        >>> model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3)])
        >>> x = np.full((2, 4), 0.5, "float32")
        >>> x_adv = fab_t(model, x, [0, 1], eps=0.1, steps=10)
        >>> bool(np.abs(x_adv - x).max() <= 0.1)
        True
    """
    norm = _norms.check(norm, fab_t.norms, "fab_t")
    eps = _checks.number("eps", eps, 0.0, strict=False)
    steps = _checks.integer("steps", steps)
    targets = _checks.integer("targets", targets)
    return _core.run_attack(
        model, x, y, clip_min=clip_min, clip_max=clip_max,
        settings=("fab_t", targets, norm),
        build=functools.partial(_build, targets=targets, norm=norm),
        steps=steps, scalars=[eps], batch_size=batch_size)


fab_t.title = "FAB-T"
fab_t.norms = _norms.NORMS
