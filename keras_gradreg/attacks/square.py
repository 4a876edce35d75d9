"""Square Attack, L-inf, of Andriushchenko et al. (2020).

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

Inputs shaped ``(batch, h, w, c)`` are images (channels last); ``(batch, h,
w)`` gets one channel; a flat ``(batch, n)`` vector is one column of ``n``
features whose windows are runs of ``round(p * n)`` features.
"""

from __future__ import annotations

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


def _build(logits_fn, x_example, has_min, has_max):
    """Compiles the Square Attack for one (model, settings)."""
    shape = x_example.shape.as_list()[1:]
    height, width, channels = _image_shape(shape)

    def margin(x_image, labels):
        """Z_y - max_{i != y} Z_i: positive while classified correctly."""
        x_flat = tf.reshape(x_image, [-1] + shape)
        logits = tf.cast(logits_fn(x_flat), tf.float32)
        correct = tf.equal(tf.argmax(logits, -1, output_type=tf.int32), labels)
        return -regs.logit_margin(logits, labels), correct

    def step(x_image, labels, low, high, best, best_margin, correct, draw, p,
             eps):
        """One query on the examples still classified correctly."""
        left = tf.where(correct)[:, 0]
        n_left = tf.shape(left)[0]
        current = tf.gather(best, left)
        low_left, high_left = tf.gather(low, left), tf.gather(high, left)
        center = tf.gather(x_image, left)
        corners = tf.random.stateless_uniform([n_left, 2], draw)
        signs = tf.sign(tf.random.stateless_uniform(
            [n_left, 1, 1, channels],
            tf.random.experimental.stateless_fold_in(draw, 1),
            minval=-1.0, maxval=1.0, dtype=x_image.dtype,
        ))
        signs = tf.where(tf.equal(signs, 0.0), tf.ones_like(signs), signs)
        side_h, side_w = _window_sides(p, height, width)
        top = tf.cast(
            corners[:, 0] * tf.cast(height - side_h + 1, tf.float32), tf.int32
        )
        start = tf.cast(
            corners[:, 1] * tf.cast(width - side_w + 1, tf.float32), tf.int32
        )
        rows, cols = tf.range(height)[None, :], tf.range(width)[None, :]
        in_rows = (rows >= top[:, None]) & (rows < top[:, None] + side_h)
        in_cols = (cols >= start[:, None]) & (cols < start[:, None] + side_w)
        window = in_rows[:, :, None, None] & in_cols[:, None, :, None]
        window = tf.broadcast_to(window, tf.shape(current))
        moved = tf.clip_by_value(center + eps * signs, low_left, high_left)
        candidate = tf.where(window, moved, current)
        # A square that changes nothing is a wasted query: flip its signs.
        unchanged = tf.reduce_all(
            tf.abs(candidate - current) < 1e-7, axis=[1, 2, 3]
        )
        signs = tf.where(unchanged[:, None, None, None], -signs, signs)
        moved = tf.clip_by_value(center + eps * signs, low_left, high_left)
        candidate = tf.where(window, moved, current)
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

    def run(x, labels, seed, queries, eps, p_init, clip_min, clip_max):
        x_image = tf.reshape(x, [-1, height, width, channels])
        low, high = x_image - eps, x_image + eps
        if has_min:
            low = tf.maximum(low, clip_min)
        if has_max:
            high = tf.minimum(high, clip_max)
        batch = tf.shape(x)[0]
        draw = tf.random.experimental.stateless_fold_in(seed, 0)
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
                _fraction(index, queries, p_init), eps,
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
    """Square Attack, L-inf: random search on the margin, no gradients.

    Andriushchenko et al. (ECCV 2020); see the module docstring for the
    search. Threat model: black-box (scores only), L-inf radius ``eps``
    inside ``[clip_min, clip_max]``. An example already misclassified is
    returned at its stripes start point, still inside the ball.

    Args:
        model: A Keras model returning logits, a GradRegModel, or a callable.
        x: Float inputs shaped ``(batch, ...)``.
        y: True labels, sparse or one-hot; None uses the model's predictions.
        eps: L-inf radius, ``>= 0``.
        queries: Model evaluations per example, ``>= 1``, the start
            included (AutoAttack uses 5000).
        p_init: Initial fraction of the pixels in a square, in ``(0, 1]``
            (0.8 for L-inf in the paper).
        seed: Seed of the random search; None draws one from NumPy.
        clip_min: Lower bound of valid inputs, or None.
        clip_max: Upper bound of valid inputs, or None.
        batch_size: Examples per compiled call; None for one batch.
        norm: The threat model; only ``"linf"``.

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
    if batch_size is not None:
        batch_size = _checks.integer("batch_size", batch_size)
    seed = _checks.seed(seed)
    x, labels, _ = _core.prepare(model, x, y, None, clip_min, clip_max)
    settings = (
        "square", clip_min is not None, clip_max is not None,
        tuple(x.shape.as_list()[1:]), x.dtype.name,
    )
    run = _core.compiled(
        model,
        settings,
        lambda logits_fn: _build(
            logits_fn, x, clip_min is not None, clip_max is not None
        ),
    )
    scalars = [eps, p_init, clip_min or 0.0, clip_max or 0.0]
    return _core.run_batched(run, x, labels, seed, queries, scalars, batch_size)


square.title = "Square"
square.norms = ("linf",)
square.black_box = True  # score-based: it never reads a gradient
