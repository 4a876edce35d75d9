"""Square Attack, L-inf and L2, of Andriushchenko et al. (2020).

"Square Attack: a query-efficient black-box adversarial attack via random
search" (ECCV 2020). Threat model: black-box, score-based, L-inf. The
attacker sees only the model's logits (never a gradient), so gradient
masking cannot fool it: a model that resists gradient attacks but not Square
is masking its gradients.

* start: vertical stripes, x + eps * s with one random sign s per example,
  column and channel;
* each query: pick a random square window of side ``round(sqrt(p * h * w))``
  per example and set the perturbation inside it to ``+eps`` or ``-eps``
  (a random sign per channel; flipped if it would leave the point
  unchanged); keep it if the margin ``Z_y - max_{i != y} Z_i`` decreases;
* ``p`` starts at ``p_init`` and halves after 10, 50, 200, 500, 1000, 2000,
  4000, 6000 and 8000 of 10000 queries (the schedule rescaled to the
  budget);
* an example stops as soon as it is misclassified.

In L2 (``norm="l2"``) the proposals are the paper's L2 ones:

* start: a grid of up to 5 x 5 tiles, each a bump of concentric rectangles
  (the rectangle at Chebyshev distance k from a tile's centre adds
  1 / (k + 1)^2) that is positive over the tile's top half and negative over
  the rest, with a random sign per channel; the whole scaled to L2 norm eps;
* each query: two random windows of odd side ``max(round(sqrt(p h w)), 3)``;
  window 1 gets a fresh bump (random sign per channel, randomly transposed)
  plus its old perturbation normalized, rescaled per channel to hold the
  mass both windows held plus what the ball has left; window 2 is zeroed;
  the perturbation is rescaled to L2 norm eps, then clipped to the box.

Inputs shaped ``(batch, h, w, c)`` are images (channels last); ``(batch, h,
w)`` gets one channel; a flat ``(batch, n)`` vector is one column of ``n``
features whose windows are runs of ``round(p * n)`` features.
"""

from __future__ import annotations

import functools
from typing import Optional

import numpy as np
import tensorflow as tf

from keras_gradreg import _checks
from keras_gradreg import regularizers as regs
from keras_gradreg.attacks import _core
from keras_gradreg.attacks import _norms

__all__ = ["square"]

# Iterations (out of 10000) after which p halves (Andriushchenko et al.).
_HALVINGS = (10, 50, 200, 500, 1000, 2000, 4000, 6000, 8000)


def _image_shape(shape: list) -> tuple:
    """``(h, w, c)`` of an example shaped ``shape`` (without the batch)."""
    if len(shape) == 1:
        return shape[0], 1, 1
    if len(shape) == 2:
        return shape[0], shape[1], 1
    return shape[0], shape[1], int(np.prod(shape[2:]))


def _fraction(index, queries, p_init):
    """p at iteration ``index`` of ``queries``, the paper's schedule."""
    scaled = tf.cast(index, tf.float32) * 10000.0 / tf.cast(queries, tf.float32)
    scaled = tf.floor(scaled)
    halvings = tf.add_n([tf.cast(scaled > h, tf.float32) for h in _HALVINGS])
    return tf.cast(p_init, tf.float32) / tf.pow(2.0, halvings)


def _window_sides(p, height, width):
    """Side lengths of the square (or run, for one column) at fraction p."""
    if width == 1:
        side = tf.round(p * height)
        side = tf.clip_by_value(side, 1.0, float(max(height - 1, 1)))
        return tf.cast(side, tf.int32), tf.constant(1)
    side = tf.round(tf.sqrt(p * height * width))
    side = tf.clip_by_value(side, 1.0, float(max(min(height, width) - 1, 1)))
    side = tf.cast(side, tf.int32)
    return side, side


def _l2_side(p, height, width):
    """Side of L2 Square's windows at fraction p: odd, at least 3 (the
    reference's), at most the image (one column: runs of ``p * height``)."""
    if width == 1:
        side = tf.maximum(tf.round(p * height), 3.0)
    else:
        side = tf.maximum(tf.round(tf.sqrt(p * height * width)), 3.0)
    side = tf.cast(side, tf.int32)
    side = tf.where(side % 2 == 0, side + 1, side)
    side_h = tf.minimum(side, height)
    side_w = tf.constant(1) if width == 1 else tf.minimum(side, width)
    return side_h, side_w


def _rings(rows, cols, dtype):
    """A ``rows x cols`` bump of concentric rectangles, unit L2 norm: the
    rectangle at Chebyshev distance k from the centre adds 1 / (k + 1)^2 to
    every cell inside it (Andriushchenko et al.'s L2 proposal)."""
    centre_r, centre_c = rows // 2, cols // 2
    count = tf.maximum(centre_r + 1, centre_c + 1)
    distance = tf.maximum(
        tf.abs(tf.range(rows) - centre_r)[:, None],
        tf.abs(tf.range(cols) - centre_c)[None, :],
    )
    rings = tf.range(count)
    weights = 1.0 / tf.cast(rings + 1, dtype) ** 2
    inside = tf.cast(rings[None, None, :] >= distance[:, :, None], dtype)
    bump = tf.reduce_sum(inside * weights, axis=-1)
    return bump / tf.maximum(tf.norm(bump), 1e-12)


def _eta(side_h, side_w, dtype, flip=None):
    """The L2 proposal of a window: a positive bump over its top half and a
    negative one over the rest, unit L2 norm; transposed when ``flip`` (a
    square window's boolean tensor; None never)."""
    eta = tf.concat([_rings(side_h // 2, side_w, dtype),
                     -_rings(side_h - side_h // 2, side_w, dtype)], axis=0)
    eta = eta / tf.maximum(tf.norm(eta), 1e-12)
    if flip is None:
        return eta
    return tf.cond(flip, lambda: tf.transpose(eta), lambda: eta)


def _placed(pattern, top, left, height, width):
    """``pattern`` (rows x cols) placed at (top, left) of each example's
    ``height x width`` image, 0 outside it: shaped ``(n, h, w, 1)``."""
    rows, cols = tf.shape(pattern)[0], tf.shape(pattern)[1]
    local_r = tf.range(height)[None, :] - top[:, None]
    local_c = tf.range(width)[None, :] - left[:, None]
    inside = ((local_r >= 0) & (local_r < rows))[:, :, None] & (
        (local_c >= 0) & (local_c < cols))[:, None, :]
    r = tf.clip_by_value(local_r, 0, rows - 1)[:, :, None]
    c = tf.clip_by_value(local_c, 0, cols - 1)[:, None, :]
    r, c = tf.broadcast_to(r, tf.shape(inside)), tf.broadcast_to(
        c, tf.shape(inside))
    values = tf.gather_nd(pattern, tf.stack([r, c], axis=-1))
    return tf.where(inside, values, tf.zeros_like(values))[..., None]


def _build(logits_fn, x_example, targeted, has_min, has_max, *,  # noqa: C901
           norm="linf"):
    """Compiles the Square Attack for one (model, settings)."""
    shape = x_example.shape.as_list()[1:]
    height, width, channels = _image_shape(shape)

    def margin(x_image, labels):
        """Z_y - max_{i != y} Z_i: positive while classified correctly."""
        x_flat = tf.reshape(x_image, [-1] + shape)
        logits = tf.cast(logits_fn(x_flat), tf.float32)
        correct = tf.equal(tf.argmax(logits, -1, output_type=tf.int32), labels)
        return -regs.logit_margin(logits, labels), correct

    def window(corners, side_h, side_w):
        """Per example a window of side_h x side_w at a uniform position."""
        top = tf.cast(
            corners[:, 0] * tf.cast(height - side_h + 1, tf.float32), tf.int32
        )
        start = tf.cast(
            corners[:, 1] * tf.cast(width - side_w + 1, tf.float32), tf.int32
        )
        rows, cols = tf.range(height)[None, :], tf.range(width)[None, :]
        in_rows = (rows >= top[:, None]) & (rows < top[:, None] + side_h)
        in_cols = (cols >= start[:, None]) & (cols < start[:, None] + side_w)
        return in_rows[:, :, None, None] & in_cols[:, None, :, None], top, start

    def box(point, clip_min, clip_max):
        if has_min:
            point = tf.maximum(point, clip_min)
        if has_max:
            point = tf.minimum(point, clip_max)
        return point

    def length(values, axis):
        return tf.sqrt(tf.reduce_sum(tf.square(values), axis, keepdims=True))

    def channel_signs(count, draw, dtype):
        """A random sign (never 0) per example and channel."""
        signs = tf.sign(tf.random.stateless_uniform(
            [count, 1, 1, channels],
            tf.random.experimental.stateless_fold_in(draw, 1),
            minval=-1.0, maxval=1.0, dtype=dtype,
        ))
        return tf.where(tf.equal(signs, 0.0), tf.ones_like(signs), signs)

    def propose_l2(center, current, draw, p, eps, clip_min, clip_max):
        """Andriushchenko et al.'s L2 proposal: a new bump in window 1 (kept
        per channel at the mass window 1 and window 2 held, plus what the
        ball has left), window 2 zeroed, the whole rescaled to norm eps."""
        n_left = tf.shape(center)[0]
        delta = current - center
        side_h, side_w = _l2_side(p, height, width)
        corners = tf.random.stateless_uniform([n_left, 4], draw)
        signs = channel_signs(n_left, draw, center.dtype)
        flip = None
        if width > 1:
            flip = tf.random.stateless_uniform(
                [], tf.random.experimental.stateless_fold_in(draw, 2)) > 0.5
        eta = _eta(side_h, side_w, center.dtype, flip)
        first, top, start = window(corners[:, :2], side_h, side_w)
        second, _, _ = window(corners[:, 2:], side_h, side_w)
        zeros = tf.zeros_like(delta)
        in_first = tf.where(first, delta, zeros)
        bump = _placed(eta, top, start, height, width) * signs + in_first / (
            1e-12 + length(in_first, [1, 2]))
        bump = tf.where(first, bump, zeros)
        room = tf.maximum(eps ** 2 - length(delta, [1, 2, 3]) ** 2, 0.0)
        held = length(tf.where(first | second, delta, zeros), [1, 2, 3])
        bump = bump / (1e-12 + length(bump, [1, 2])) * tf.sqrt(
            room / channels + held ** 2)
        delta = tf.where(first, bump, tf.where(second, zeros, delta))
        return box(center + eps * delta / (1e-12 + length(delta, [1, 2, 3])),
                   clip_min, clip_max)

    def start_l2(x_image, seed, eps, clip_min, clip_max):
        """A grid of up to 5 x 5 tiles, each the L2 bump with a random sign
        per channel, rescaled to norm eps (the reference's start)."""
        tile_h, tile_w = max(height // 5, 1), max(width // 5, 1)
        grid = []
        for size, tile in ((height, tile_h), (width, tile_w)):
            offset = max((size - 5 * tile) // 2, 0)
            count = min(5, (size - offset) // tile) if size >= 5 else size
            position = np.arange(size) - offset
            index = position // tile
            valid = (position >= 0) & (index < count)
            grid.append((np.clip(index, 0, count - 1),
                         np.clip(position - index * tile, 0, tile - 1),
                         valid, count))
        (rows, local_r, valid_r, count_r), (cols, local_c, valid_c, count_c) = grid
        eta = _eta(tile_h, tile_w, x_image.dtype)
        pattern = tf.gather(tf.gather(eta, local_r, axis=0), local_c, axis=1)
        pattern *= tf.constant(valid_r[:, None] & valid_c[None, :],
                               x_image.dtype)
        signs = tf.sign(tf.random.stateless_uniform(
            [tf.shape(x_image)[0], count_r, count_c, channels], seed,
            minval=-1.0, maxval=1.0, dtype=x_image.dtype,
        ))
        signs = tf.where(tf.equal(signs, 0.0), tf.ones_like(signs), signs)
        signs = tf.gather(tf.gather(signs, rows, axis=1), cols, axis=2)
        delta = pattern[None, :, :, None] * signs
        return box(x_image + eps * delta / (1e-12 + length(delta, [1, 2, 3])),
                   clip_min, clip_max)

    def step(x_image, labels, low, high, best, best_margin, correct, draw, p,
             eps, clip_min, clip_max):
        """One query on the examples still classified correctly."""
        left = tf.where(correct)[:, 0]
        current = tf.gather(best, left)
        center = tf.gather(x_image, left)
        if norm == "l2":
            candidate = propose_l2(center, current, draw, p, eps, clip_min,
                                   clip_max)
        else:
            candidate = propose_linf(center, current, tf.gather(low, left),
                                     tf.gather(high, left), draw, p, eps)
        new_margin, new_correct = margin(candidate, tf.gather(labels, left))
        old_margin = tf.gather(best_margin, left)
        better = (new_margin < old_margin) | ~new_correct
        kept = _core.where(better, candidate, current)
        best = tf.tensor_scatter_nd_update(best, left[:, None], kept)
        best_margin = tf.tensor_scatter_nd_update(
            best_margin, left[:, None], tf.where(better, new_margin, old_margin)
        )
        correct = tf.tensor_scatter_nd_update(
            correct, left[:, None], new_correct | ~better
        )
        return best, best_margin, correct

    def propose_linf(center, current, low_left, high_left, draw, p, eps):
        """A square of +-eps (a random sign per channel) at a random place."""
        n_left = tf.shape(center)[0]
        corners = tf.random.stateless_uniform([n_left, 2], draw)
        signs = channel_signs(n_left, draw, center.dtype)
        side_h, side_w = _window_sides(p, height, width)
        square_window = tf.broadcast_to(
            window(corners, side_h, side_w)[0], tf.shape(current))
        moved = tf.clip_by_value(center + eps * signs, low_left, high_left)
        candidate = tf.where(square_window, moved, current)
        # A square that changes nothing is a wasted query: flip its signs.
        unchanged = tf.reduce_all(
            tf.abs(candidate - current) < 1e-7, axis=[1, 2, 3]
        )
        signs = tf.where(unchanged[:, None, None, None], -signs, signs)
        moved = tf.clip_by_value(center + eps * signs, low_left, high_left)
        return tf.where(square_window, moved, current)

    def run(x, labels, seed, queries, eps, p_init, clip_min, clip_max):
        x_image = tf.reshape(x, [-1, height, width, channels])
        low, high = x_image - eps, x_image + eps
        if has_min:
            low = tf.maximum(low, clip_min)
        if has_max:
            high = tf.minimum(high, clip_max)
        batch = tf.shape(x)[0]
        draw = tf.random.experimental.stateless_fold_in(seed, 0)
        if norm == "l2":
            best = start_l2(x_image, draw, eps, clip_min, clip_max)
        else:
            stripes = tf.sign(tf.random.stateless_uniform(
                [batch, 1, width, channels], draw, minval=-1.0, maxval=1.0,
                dtype=x.dtype,
            ))
            stripes = tf.where(tf.equal(stripes, 0.0), 1.0, stripes)
            best = tf.clip_by_value(x_image + eps * stripes, low, high)
        best_margin, correct = margin(best, labels)
        for index in tf.range(1, queries):
            if not tf.reduce_any(correct):
                break
            best, best_margin, correct = step(
                x_image, labels, low, high, best, best_margin, correct,
                tf.random.experimental.stateless_fold_in(seed, index),
                _fraction(index, queries, p_init), eps, clip_min, clip_max,
            )
        return tf.reshape(best, tf.shape(x))

    return _core.trace_once(run, _core.signature(x_example, 4))


def square(
    model,
    x,
    y,
    eps: float,
    queries: int = 5000,
    p_init: float = 0.8,
    seed: Optional[int] = None,
    clip_min: Optional[float] = 0.0,
    clip_max: Optional[float] = 1.0,
    batch_size: Optional[int] = 256,
    norm: str = "linf",
) -> tf.Tensor:
    """Square Attack, L-inf or L2: random search on the margin, no gradients.

    Andriushchenko et al. (ECCV 2020); see the module docstring for the
    search. Threat model: black-box (scores only), radius ``eps`` in the
    norm ``norm`` inside ``[clip_min, clip_max]``. An example already
    misclassified is returned at its start point, still inside the ball.

    Args:
        model: A Keras model returning logits, a GradRegModel, or a callable.
        x: Float inputs shaped ``(batch, ...)``.
        y: True labels, sparse or one-hot; None uses the model's predictions.
        eps: Radius in the norm ``norm``, ``>= 0``.
        queries: Model evaluations per example, ``>= 1``, the start
            included (AutoAttack uses 5000).
        p_init: Initial fraction of the pixels in a square, in ``(0, 1]``
            (0.8 for L-inf in the paper).
        seed: Seed of the random search; None draws one from NumPy.
        clip_min: Lower bound of valid inputs, or None.
        clip_max: Upper bound of valid inputs, or None.
        batch_size: Examples per compiled call; None for one batch.
        norm: The threat model: ``"linf"`` (default) or ``"l2"``.

    Returns:
        Adversarial examples shaped like ``x``: per example the lowest-margin
        point found (a misclassified one as soon as one is found).

    Raises:
        ValueError, TypeError: For invalid arguments.

    Example:
        >>> import keras, numpy as np
        >>> model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3)])
        >>> x = np.full((2, 4), 0.5, "float32")
        >>> x_adv = square(model, x, [0, 1], eps=0.1, queries=50, seed=0)
        >>> bool(np.abs(x_adv - x).max() <= 0.1 + 1e-6)
        True
    """
    norm = _norms.check(norm, square.norms, "square")
    eps = _checks.number("eps", eps, 0.0, strict=False)
    queries = _checks.integer("queries", queries)
    p_init = _checks.number("p_init", p_init, 0.0, strict=True, maximum=1.0)
    return _core.run_attack(
        model, x, y, clip_min=clip_min, clip_max=clip_max,
        settings=("square", norm),
        build=functools.partial(_build, norm=norm),
        steps=queries, scalars=[eps, p_init], seed=seed,
        batch_size=batch_size)


square.title = "Square"
square.norms = ("linf", "l2")
square.black_box = True  # score-based: it never reads a gradient
