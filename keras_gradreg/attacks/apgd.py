"""Auto-PGD (APGD) of Croce & Hein (2020), in L-inf, L2 and L1.

"Reliable evaluation of adversarial robustness with an ensemble of diverse
parameter-free attacks" (ICML 2020). PGD without a step size to tune. In
L-inf and L2 (``d`` the norm's unit steepest-ascent direction: ``sign(g)``,
``g / ||g||_2``):

* step size starts at 2 * eps per example;
* momentum: z = P(x_k + eta * d(grad)),
  x_{k+1} = P(x_k + 0.75 (z - x_k) + 0.25 (x_k - x_{k-1}))
  (no momentum on the first step);
* checkpoints: the first after 22% of the steps, then intervals shrinking by
  3% of the steps down to 6%. At a checkpoint the step of an example is
  halved, and it restarts from its best point so far, if its loss increased
  in at most 75% of the steps since the last checkpoint, or if its step was
  not halved at the last checkpoint and its best loss has not improved
  since;
* per example the attack returns a misclassified iterate if it found one,
  otherwise its highest-loss point; over restarts, a misclassified point
  beats the highest loss.

The oscillation test counts increases of the loss over consecutive
iterates since the previous checkpoint (the first interval compares with the
loss at the start point).

In L1 the run adapts the sparsity of its steps instead, and by default
shares its steps over a decreasing eps (Croce & Hein, ICCV 2021, "Mind the
box"): :mod:`keras_gradreg.attacks._apgd_l1`. The runs themselves are in
``_apgd_run`` (L-inf, L2) and ``_apgd_l1``; this module holds the attacks'
arguments, restarts and targets.
"""

from __future__ import annotations

import functools
from typing import Optional

import tensorflow as tf

from keras_gradreg import _checks
from keras_gradreg.attacks import _apgd_run
from keras_gradreg.attacks import _core
from keras_gradreg.attacks import _norms
from keras_gradreg.attacks import losses as attack_losses

__all__ = ["apgd", "apgd_t"]

def _build(logits_fn, x_example, targeted, has_min, has_max, *, loss,
           restarts, eot, norm="linf", decreasing=False):
    """Compiles APGD with restarts for one (model, settings)."""
    project = _core.projector(has_min, has_max, norm)

    def run(x, labels, seed, steps, eps, clip_min, clip_max):
        objective = attack_losses.objective(loss, targeted, 0.0)
        logits = tf.cast(logits_fn(x), tf.float32)
        best_x = x
        best_loss = objective(logits, labels)
        fooled = attack_losses.success(logits, labels, targeted)
        for restart in tf.range(restarts):
            point, point_loss, adversarial, run_fooled = _apgd_run.random_run(
                logits_fn, objective, project, x, labels, targeted, steps,
                eps, seed, restart, clip_min, clip_max, has_min, has_max,
                eot, norm, decreasing,
            )
            newly_fooled = run_fooled & ~fooled
            higher = ~fooled & ~run_fooled & (point_loss > best_loss)
            best_x = _core.where(newly_fooled, adversarial, best_x)
            best_x = _core.where(higher, point, best_x)
            best_loss = tf.where(higher, point_loss, best_loss)
            fooled = fooled | run_fooled
        return best_x

    return _core.trace_once(run, _core.signature(x_example, 3))


def apgd(
    model,
    x,
    y,
    eps: float,
    steps: int = 100,
    loss: str = "ce",
    restarts: int = 1,
    seed: Optional[int] = None,
    clip_min: Optional[float] = 0.0,
    clip_max: Optional[float] = 1.0,
    target=None,
    batch_size: Optional[int] = 256,
    eot_iter: int = 1,
    norm: str = "linf",
    decreasing_eps: Optional[bool] = None,
) -> tf.Tensor:
    """Auto-PGD with its step-size schedule, momentum and restarts.

    Croce & Hein (2020; L1: 2021). See the module docstring for the
    schedule. Threat model: white-box, radius ``eps`` in the norm ``norm``
    inside ``[clip_min, clip_max]``.
    An example already misclassified (or, with ``target``, already classified
    as its target) is returned unchanged.

    Args:
        model: A Keras model returning logits, a GradRegModel, or a callable.
        x: Float inputs shaped ``(batch, ...)``.
        y: True labels, sparse or one-hot; None uses the model's predictions.
        eps: Radius in the norm ``norm``, ``>= 0``.
        steps: Iterations per restart, ``>= 1`` (AutoAttack uses 100).
        loss: ``"ce"`` (cross-entropy) or ``"dlr"`` (Difference of Logits
            Ratio, needs >= 3 classes; untargeted only).
        restarts: Number of random restarts, ``>= 1``.
        seed: Seed of the random starts; None draws one from NumPy.
        clip_min: Lower bound of valid inputs, or None.
        clip_max: Upper bound of valid inputs, or None.
        target: Optional target classes (with ``loss="ce"``): descends the
            target's cross-entropy.
        batch_size: Examples per compiled call; None for one batch.
        eot_iter: Gradient samples averaged per step (expectation over
            transformation, for randomized models; AutoAttack's "rand"
            version uses 20). 1 for deterministic models.
        norm: The threat model: ``"linf"`` (default), ``"l2"`` or ``"l1"``.
        decreasing_eps: With ``norm="l1"``, share the steps over radii
            ``3 eps, 2 eps, eps`` (30%, 30%, 40%; AutoAttack's L1 schedule).
            None (default) means True for L1; other norms take no schedule.

    Returns:
        Adversarial examples shaped like ``x``.

    Raises:
        ValueError, TypeError: For invalid arguments, an unsupported norm,
            or ``decreasing_eps=True`` outside L1.

    Example:
        >>> import keras, numpy as np
        >>> model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3)])
        >>> x = np.full((2, 4), 0.5, "float32")
        >>> apgd(model, x, [0, 1], eps=0.1, steps=10, seed=0).shape
        TensorShape([2, 4])
        >>> x_adv = apgd(model, x, [0, 1], eps=0.5, steps=10, seed=0, norm="l1")
        >>> bool(np.abs(x_adv - x).sum(axis=1).max() <= 0.5 + 1e-5)
        True
    """
    norm = _norms.check(norm, apgd.norms, "apgd")
    decreasing = _decreasing(decreasing_eps, norm)
    eps = _checks.number("eps", eps, 0.0, strict=False)
    steps = _checks.integer("steps", steps)
    restarts = _checks.integer("restarts", restarts)
    eot_iter = _checks.integer("eot_iter", eot_iter)
    _checks.choice("loss", loss, ("ce", "dlr"))
    if loss == "dlr" and target is not None:
        raise ValueError("loss='dlr' is untargeted; use loss='ce' with target.")
    return _core.run_attack(
        model, x, y, target=target, clip_min=clip_min, clip_max=clip_max,
        settings=("apgd", loss, restarts, eot_iter, norm, decreasing),
        build=functools.partial(_build, loss=loss, restarts=restarts,
                                eot=eot_iter, norm=norm,
                                decreasing=decreasing),
        steps=steps, scalars=[eps], seed=seed, batch_size=batch_size)


def _decreasing(decreasing_eps, norm: str) -> bool:
    """The L1 decreasing-eps schedule: on by default in L1, else refused."""
    if decreasing_eps is None:
        return norm == "l1"
    if decreasing_eps and norm != "l1":
        raise ValueError(
            f"decreasing_eps=True is L1's schedule; norm={norm!r} takes none."
        )
    return bool(decreasing_eps)


# APGD-T -----------------------------------------------------------------


def _build_targeted(logits_fn, x_example, targeted, has_min, has_max, *,
                    targets, norm="linf", decreasing=False):
    """Compiles APGD-T (one run per target) for one (model, settings)."""
    project = _core.projector(has_min, has_max, norm)

    def run(x, labels, seed, steps, eps, clip_min, clip_max):
        logits = tf.cast(logits_fn(x), tf.float32)
        classes = logits.shape[-1]
        count = min(targets, classes - 1)
        others = tf.where(
            tf.one_hot(labels, classes) > 0, float("-inf"), logits
        )
        ranked = tf.math.top_k(others, k=count).indices
        fooled = attack_losses.success(logits, labels, False)
        best_x = x
        for index in tf.range(count):
            if tf.reduce_all(fooled):
                break
            # Attack only the examples no earlier target has fooled.
            remaining = tf.where(~fooled)[:, 0]
            x_left = tf.gather(x, remaining)
            labels_left = tf.gather(labels, remaining)
            targets_left = tf.gather(ranked[:, index], remaining)

            def objective(z, y, targets_left=targets_left):
                return attack_losses.targeted_dlr_loss(z, y, targets_left)

            _, _, adversarial, run_fooled = _apgd_run.random_run(
                logits_fn, objective, project, x_left, labels_left, False,
                steps, eps, seed, index, clip_min, clip_max, has_min,
                has_max, 1, norm, decreasing,
            )
            broken = tf.boolean_mask(remaining, run_fooled)[:, None]
            best_x = tf.tensor_scatter_nd_update(
                best_x, broken, tf.boolean_mask(adversarial, run_fooled)
            )
            fooled = tf.tensor_scatter_nd_update(
                fooled, remaining[:, None], run_fooled
            )
        return best_x

    return _core.trace_once(run, _core.signature(x_example, 3))


def apgd_t(
    model,
    x,
    y,
    eps: float,
    steps: int = 100,
    targets: int = 9,
    seed: Optional[int] = None,
    clip_min: Optional[float] = 0.0,
    clip_max: Optional[float] = 1.0,
    batch_size: Optional[int] = 256,
    norm: str = "linf",
    decreasing_eps: Optional[bool] = None,
) -> tf.Tensor:
    """APGD-T: Auto-PGD on the targeted DLR loss, one run per target class.

    Croce & Hein (2020), the second attack of AutoAttack. For each of the
    ``targets`` classes with the highest clean logits besides the true one
    (in that order), one APGD run (same schedule as :func:`apgd`, from a
    uniform random point of the ball) maximizes the targeted DLR loss
    :func:`keras_gradreg.attacks.targeted_dlr_loss` on the examples that no
    earlier target has misclassified; the first success is kept. Threat
    model: white-box, radius ``eps`` in the norm ``norm`` inside
    ``[clip_min, clip_max]``.

    Args:
        model: A Keras model returning logits, a GradRegModel, or a callable.
        x: Float inputs shaped ``(batch, ...)``.
        y: True labels, sparse or one-hot; None uses the model's predictions.
        eps: Radius in the norm ``norm``, ``>= 0``.
        steps: Iterations per target, ``>= 1`` (AutoAttack uses 100).
        targets: Number of target classes, ``>= 1``; capped at classes - 1
            (AutoAttack uses 9; 5 in L1).
        seed: Seed of the random starts; None draws one from NumPy.
        clip_min: Lower bound of valid inputs, or None.
        clip_max: Upper bound of valid inputs, or None.
        batch_size: Examples per compiled call; None for one batch.
        norm: The threat model: ``"linf"`` (default), ``"l2"`` or ``"l1"``.
        decreasing_eps: L1's decreasing-eps schedule, as for :func:`apgd`.

    Returns:
        Adversarial examples shaped like ``x``: a misclassified point where
        one was found, else ``x`` itself.

    Raises:
        ValueError, TypeError: For invalid arguments, an unsupported norm
            or fewer than 4 classes.

    Example:
        >>> import keras, numpy as np
        >>> model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(5)])
        >>> x = np.full((2, 4), 0.5, "float32")
        >>> x_adv = apgd_t(model, x, [0, 1], eps=0.1, steps=10, seed=0)
        >>> bool(np.abs(x_adv - x).max() <= 0.1 + 1e-6)
        True
    """
    norm = _norms.check(norm, apgd_t.norms, "apgd_t")
    decreasing = _decreasing(decreasing_eps, norm)
    eps = _checks.number("eps", eps, 0.0, strict=False)
    steps = _checks.integer("steps", steps)
    targets = _checks.integer("targets", targets)
    return _core.run_attack(
        model, x, y, clip_min=clip_min, clip_max=clip_max,
        settings=("apgd_t", targets, norm, decreasing),
        build=functools.partial(_build_targeted, targets=targets, norm=norm,
                                decreasing=decreasing),
        steps=steps, scalars=[eps], seed=seed, batch_size=batch_size)


apgd.title = "APGD"
apgd.norms = _norms.NORMS
# An evaluation runs APGD once per loss, as AutoAttack pairs APGD-CE and
# APGD-DLR.
apgd.losses = ("ce", "dlr")


apgd_t.title = "APGD-T"
apgd_t.norms = _norms.NORMS
