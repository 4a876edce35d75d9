"""The geometry of the three threat models: L-inf, L2 and L1 balls in a box.

An attack in norm p moves an input x to a point x' with ``||x' - x||_p <=
eps`` inside the clip box ``[clip_min, clip_max]``. Per norm this module
gives, as graph-safe functions on batched tensors (one ball per example):

* :func:`size`: ``||delta||_p`` per example;
* :func:`direction`: the steepest-ascent direction of unit norm for a
  gradient g: ``sign(g)`` (L-inf), ``g / ||g||_2`` (L2), and for L1 the
  sparse step of Croce & Hein (2021, "Mind the box") and Tramer & Boneh
  (2019, SLIDE): ``sign(g)`` on the largest ``sparsity`` share of the
  coordinates that can still move inside the box, divided by their count;
* :func:`project`: onto the eps-ball within the box: L-inf clips (exact);
  L2 rescales to the ball, then clips (AutoAttack's projection; the result
  lies in both); L1 is the exact Euclidean projection onto the L1 ball
  intersected with the box (:func:`l1_box_projection`), which Croce & Hein
  (2021) found to matter;
* :func:`random_start`: uniform in the L-inf cube, uniform on the L2 sphere,
  and for L1 Gaussian noise projected onto the L1 ball (AutoAttack's starts).
"""

from __future__ import annotations

from typing import Optional, Sequence

import tensorflow as tf

NORMS = ("linf", "l2", "l1")
"""The threat models, by name: the ``norm=`` of every attack."""

TITLES = {"linf": "L-inf", "l2": "L2", "l1": "L1"}
"""Each norm's name in tables and plots."""

L1_SPARSITY = 0.05
"""Share of the coordinates an L1 step of the fixed-step attacks moves."""


def check(norm, supported: Sequence[str] = NORMS, attack: str = "") -> str:
    """Returns ``norm`` if it is one of ``supported``, else raises.

    Raises:
        ValueError: Naming the norms ``attack`` supports.

    Example:
        >>> check("l2")
        'l2'
    """
    if isinstance(norm, str) and norm in supported:
        return norm
    who = f"{attack} supports" if attack else "Supported norms are"
    known = "" if norm in NORMS else f" (the norms are {list(NORMS)})"
    raise ValueError(
        f"Unsupported norm {norm!r}{known}: {who} {list(supported)}."
    )


def _flat(values: tf.Tensor) -> tf.Tensor:
    return tf.reshape(values, [tf.shape(values)[0], -1])


def _per_example(values: tf.Tensor, like: tf.Tensor) -> tf.Tensor:
    shape = tf.concat(
        [tf.shape(values), tf.ones([tf.rank(like) - 1], tf.int32)], axis=0
    )
    return tf.reshape(values, shape)


def size(delta, norm: str) -> tf.Tensor:
    """Per-example ``||delta||_p``, shaped ``(batch,)``.

    Example:
        >>> size(tf.constant([[3.0, -4.0]]), "l1").numpy()
        array([7.], dtype=float32)
    """
    flat = _flat(tf.convert_to_tensor(delta))
    if norm == "linf":
        return tf.reduce_max(tf.abs(flat), axis=1)
    if norm == "l2":
        return tf.sqrt(tf.reduce_sum(tf.square(flat), axis=1))
    if norm == "l1":
        return tf.reduce_sum(tf.abs(flat), axis=1)
    raise ValueError(check(norm))


def movable(x_adv, gradient, clip_min, clip_max, has_min: bool,
            has_max: bool) -> tf.Tensor:
    """Coordinates whose ascent step ``sign(gradient)`` stays inside the box.

    A feature at ``clip_max`` with a positive gradient (or at ``clip_min``
    with a negative one) cannot move; an L1 step spent on it is lost.
    """
    up = gradient > 0
    down = gradient < 0
    if has_max:
        up = up & (x_adv < clip_max)
    if has_min:
        down = down & (x_adv > clip_min)
    return up | down


def direction(gradient, norm: str, sparsity=L1_SPARSITY,
              can_move: Optional[tf.Tensor] = None) -> tf.Tensor:
    """The unit-norm steepest-ascent direction of ``gradient`` per example.

    Args:
        gradient: ``d loss / dx``, shaped ``(batch, ...)``.
        norm: ``"linf"`` (``sign(g)``), ``"l2"`` (``g / ||g||_2``; 0 where
            g is 0) or ``"l1"`` (``sign(g)`` on the ``ceil(sparsity * n)``
            coordinates of largest ``|g|``, divided by their count, so its
            L1 norm is 1).
        sparsity: For L1: the share of the ``n`` coordinates moved, a scalar
            or one per example, in ``(0, 1]``.
        can_move: For L1: a boolean mask shaped like ``gradient`` of the
            coordinates allowed to move (:func:`movable`); None for all.

    Returns:
        A tensor shaped like ``gradient``.

    Example:
        >>> direction(tf.constant([[1.0, -3.0, 2.0, 0.5]]), "l1", 0.5).numpy()
        array([[ 0. , -0.5,  0.5,  0. ]], dtype=float32)
    """
    gradient = tf.convert_to_tensor(gradient)
    if norm == "linf":
        return tf.sign(gradient)
    if norm == "l2":
        length = _per_example(size(gradient, "l2"), gradient)
        safe = tf.where(length > 0, length, tf.ones_like(length))
        return gradient / safe
    if norm != "l1":
        raise ValueError(check(norm))
    flat = _flat(gradient)
    if can_move is not None:
        flat = tf.where(_flat(can_move), flat, tf.zeros_like(flat))
    magnitude = tf.abs(flat)
    features = tf.shape(flat)[1]
    share = tf.cast(sparsity, tf.float32) * tf.ones([tf.shape(flat)[0]])
    count = tf.cast(tf.math.ceil(share * tf.cast(features, tf.float32)),
                    tf.int32)
    count = tf.clip_by_value(count, 1, features)
    ranked = tf.sort(magnitude, axis=1, direction="DESCENDING")
    threshold = tf.gather(ranked, count - 1, axis=1, batch_dims=1)
    chosen = (magnitude >= threshold[:, None]) & (magnitude > 0)
    signs = tf.sign(flat) * tf.cast(chosen, flat.dtype)
    total = tf.reduce_sum(tf.abs(signs), axis=1, keepdims=True)
    signs = signs / tf.maximum(total, 1.0)
    return tf.reshape(signs, tf.shape(gradient))


def l1_box_projection(delta, eps, lower=None, upper=None) -> tf.Tensor:
    """Euclidean projection of ``delta`` onto ``{d: ||d||_1 <= eps, lower <= d
    <= upper}``, per example (Croce & Hein, 2021, exact).

    The box holds 0 (``lower <= 0 <= upper``). By the KKT conditions the
    projection is ``d_i = sign(v_i) min(max(|v_i| - lam, 0), b_i)``, with
    ``b_i`` the room of coordinate i towards ``v_i``'s sign (capped at
    ``|v_i|``) and ``lam >= 0`` the smallest threshold with ``||d||_1 <=
    eps``. ``||d(lam)||_1`` is piecewise linear and non-increasing in lam,
    with kinks at ``|v_i| - b_i`` and ``|v_i|``: the kinks are sorted, the
    norm at each one is a cumulative sum, and lam is interpolated on the
    segment that crosses eps. No iteration, O(n log n) per example.

    Args:
        delta: The perturbations to project, shaped ``(batch, ...)``.
        eps: The L1 radius, ``>= 0``: a scalar.
        lower: ``clip_min - x``, broadcastable to ``delta`` (all ``<= 0``),
            or None for no lower bound.
        upper: ``clip_max - x`` (all ``>= 0``), or None.

    Returns:
        The projected perturbations, shaped like ``delta``.

    Example:
        >>> l1_box_projection(tf.constant([[3.0, 1.0]]), 2.0).numpy()
        array([[2., 0.]], dtype=float32)
        >>> l1_box_projection(tf.constant([[3.0, 1.0]]), 2.0, upper=1.5).numpy()
        array([[1.5, 0.5]], dtype=float32)
    """
    delta = tf.convert_to_tensor(delta)
    dtype = delta.dtype
    values = _flat(delta)
    magnitude = tf.abs(values)
    room = magnitude
    if upper is not None:
        upper = _flat(tf.broadcast_to(tf.cast(upper, dtype), tf.shape(delta)))
        room = tf.where(values > 0, tf.minimum(room, upper), room)
    if lower is not None:
        lower = _flat(tf.broadcast_to(tf.cast(lower, dtype), tf.shape(delta)))
        room = tf.where(values < 0, tf.minimum(room, -lower), room)
    room = tf.maximum(room, 0.0)
    eps = tf.cast(eps, dtype) if tf.is_tensor(eps) else tf.constant(eps, dtype)
    clipped = tf.reduce_sum(room, axis=1)
    # Coordinate i shrinks at slope -1 for lam in (|v_i| - b_i, |v_i|).
    kinks = tf.concat([magnitude - room, magnitude], axis=1)
    slopes = tf.concat([tf.ones_like(room), -tf.ones_like(room)], axis=1)
    order = tf.argsort(kinks, axis=1, stable=True)
    kinks = tf.gather(kinks, order, batch_dims=1)
    active = tf.cumsum(tf.gather(slopes, order, batch_dims=1), axis=1)
    drops = active[:, :-1] * (kinks[:, 1:] - kinks[:, :-1])
    norms = clipped[:, None] - tf.concat(
        [tf.zeros_like(drops[:, :1]), tf.cumsum(drops, axis=1)], axis=1
    )
    above = tf.reduce_sum(tf.cast(norms > eps[..., None], tf.int32), axis=1)
    segment = tf.clip_by_value(above - 1, 0, tf.shape(kinks)[1] - 1)
    start = tf.gather(kinks, segment, batch_dims=1)
    excess = tf.gather(norms, segment, batch_dims=1) - eps
    slope = tf.maximum(tf.gather(active, segment, batch_dims=1), 1.0)
    threshold = tf.maximum(start + excess / slope, 0.0)
    # One Newton step on the segment found: the threshold from direct sums,
    # not from the cumulative ones, is as exact as the dtype allows.
    full = magnitude - room >= threshold[:, None]
    shrinking = ~full & (magnitude > threshold[:, None])
    count = tf.reduce_sum(tf.cast(shrinking, dtype), axis=1)
    fixed = tf.reduce_sum(tf.where(full, room, tf.zeros_like(room)), axis=1)
    moving = tf.reduce_sum(tf.where(shrinking, magnitude, tf.zeros_like(room)),
                           axis=1)
    refined = (fixed + moving - eps) / tf.maximum(count, 1.0)
    threshold = tf.where(count > 0, tf.maximum(refined, 0.0), threshold)
    threshold = tf.where(clipped > eps, threshold, tf.zeros_like(clipped))
    shrunk = tf.clip_by_value(magnitude - threshold[:, None], 0.0, room)
    # Rounding may leave the norm a few ulps above eps: scale down (inside
    # the box, which holds 0).
    total = tf.reduce_sum(shrunk, axis=1)
    shrunk *= tf.where(total > eps, eps / tf.maximum(total, 1e-30),
                       tf.ones_like(total))[:, None]
    return tf.reshape(tf.sign(values) * shrunk, tf.shape(delta))


def project(x_adv, x, eps, norm: str, clip_min, clip_max, has_min: bool,
            has_max: bool) -> tf.Tensor:
    """``x_adv`` moved into the ``norm`` eps-ball around ``x`` and the box.

    L-inf: clip to the ball, then to the box (exact). L2: rescale
    ``x_adv - x`` to length at most eps, then clip to the box (AutoAttack's
    projection, inside both). L1: :func:`l1_box_projection` (exact).

    Example:
        >>> x = tf.constant([[0.5, 0.5]])
        >>> moved = project(x + [[0.6, 0.8]], x, 0.5, "l2", 0.0, 1.0, True, True)
        >>> moved.numpy().round(4)
        array([[0.8, 0.9]], dtype=float32)
    """
    if norm == "linf":
        x_adv = tf.clip_by_value(x_adv, x - eps, x + eps)
    elif norm == "l2":
        delta = x_adv - x
        length = _per_example(size(delta, "l2"), delta)
        scale = tf.where(length > eps, eps / tf.maximum(length, 1e-30),
                         tf.ones_like(length))
        x_adv = x + delta * scale
    elif norm == "l1":
        # The box again after the sum: x + (clip_min - x) may round an ulp
        # outside it; clipping moves towards x, so it stays in the ball.
        x_adv = x + l1_box_projection(
            x_adv - x, eps,
            lower=clip_min - x if has_min else None,
            upper=clip_max - x if has_max else None,
        )
    else:
        raise ValueError(check(norm))
    if has_min:
        x_adv = tf.maximum(x_adv, clip_min)
    if has_max:
        x_adv = tf.minimum(x_adv, clip_max)
    return x_adv


def random_start(x, eps, seed, norm: str = "linf") -> tf.Tensor:
    """A random point of the eps-ball around ``x``, from a stateless seed.

    L-inf: uniform in the cube. L2: uniform on the sphere of radius eps
    (a normalized Gaussian, as AutoAttack). L1: standard Gaussian noise
    projected onto the L1 ball of radius eps (as AutoAttack: a sparse
    start). Callers project the result into the clip box.

    Example:
        >>> x = tf.zeros([2, 5])
        >>> start = random_start(x, 1.5, tf.constant([0, 1], tf.int64), "l2")
        >>> bool(tf.reduce_all(tf.abs(size(start, "l2") - 1.5) < 1e-5))
        True
    """
    if norm == "linf":
        noise = tf.random.stateless_uniform(
            tf.shape(x), seed=seed, minval=-1.0, maxval=1.0, dtype=x.dtype
        )
        return x + eps * noise
    noise = tf.random.stateless_normal(tf.shape(x), seed=seed, dtype=x.dtype)
    return x + gaussian_to_ball(noise, eps, norm)


def gaussian_to_ball(noise, eps, norm: str) -> tf.Tensor:
    """Standard Gaussian ``noise`` made a random L2 or L1 perturbation:
    rescaled onto the L2 sphere of radius eps, or projected onto the L1
    ball (:func:`random_start`'s starts, for callers with their own
    random generator)."""
    if norm == "l2":
        return eps * direction(noise, "l2")
    if norm == "l1":
        return l1_box_projection(noise, eps)
    raise ValueError(check(norm, ("l2", "l1")))
