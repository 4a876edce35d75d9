"""Fixed-step gradient attacks: FGSM / FGM, BIM, C&W-L-inf and PGD.

Threat model: white-box, in the norm ``norm`` (``"linf"``, the default;
``"l2"``; ``"l1"``; C&W-L-inf is L-inf only). The attacker knows the model
and its gradients and may move the input by at most ``eps`` in that norm;
the result is also kept inside ``[clip_min, clip_max]`` (pass None for
unbounded features such as MFCCs). All four attacks share one compiled loop,

    x_{k+1} = Proj_{B_eps(x) and clip range}(x_k + step_size * d(dL/dx_k)),

with d the unit steepest-ascent direction of the norm (``sign(g)`` for
L-inf, ``g / ||g||_2`` for L2, the sparse L1 step of
:func:`keras_gradreg.attacks._norms.direction`), and differ in the loss L,
the start point and restarts:

* FGSM (Goodfellow et al., 2015): one step of size eps on cross-entropy;
  with ``norm="l2"`` the fast gradient method (FGM).
* BIM (Kurakin et al., 2017): ``steps`` steps on cross-entropy from x.
* C&W-L-inf: the BIM iteration on the capped C&W margin loss of Carlini &
  Wagner (2017), ``min(max_{i != t} Z_i - Z_t, confidence)`` -- the
  attack of Yu et al.'s Tables 1-3 (confidence k = 50).
* PGD (Madry et al., 2018): a random start in the eps-ball and restarts;
  per example the strongest restart is kept.
"""

from __future__ import annotations

import functools
from typing import Optional

import tensorflow as tf

from keras_gradreg import _checks
from keras_gradreg.attacks import _core
from keras_gradreg.attacks import _norms
from keras_gradreg.attacks import losses as attack_losses

__all__ = ["fgsm", "bim", "cw_linf", "pgd"]


def _build(logits_fn, x_example, targeted, has_min, has_max, *, loss,
           random_start, restarts, norm):
    """Compiles the steepest-ascent loop for one (model, settings)."""
    project = _core.projector(has_min, has_max, norm)

    def run(x, labels, seed, steps, eps, step_size, confidence, sparsity,
            clip_min, clip_max):
        objective = attack_losses.objective(loss, targeted, confidence)
        direction = None
        if norm != "linf":
            direction = _core.ascent_direction(
                norm, has_min, has_max, clip_min, clip_max, sparsity
            )

        def project_around_x(x_adv):
            return project(x_adv, x, eps, clip_min, clip_max)

        def attack_once(restart):
            x_adv = x
            if random_start:
                x_adv = project_around_x(
                    _core.random_start(x, eps, seed, restart, norm)
                )
            return _core.signed_gradient_steps(
                logits_fn, objective, x_adv, labels, steps, step_size,
                project_around_x, direction,
            )

        if restarts == 1:
            return attack_once(0)
        batch = tf.shape(x)[0]
        best_x = x
        best_success = tf.zeros([batch], tf.bool)
        best_value = tf.fill([batch], float("-inf"))
        for restart in tf.range(restarts):
            x_adv = attack_once(restart)
            logits = tf.cast(logits_fn(x_adv), tf.float32)
            value = objective(logits, labels)
            succeeded = attack_losses.success(logits, labels, targeted)
            better = (succeeded & ~best_success) | (
                tf.equal(succeeded, best_success) & (value > best_value)
            )
            best_x = _core.where(better, x_adv, best_x)
            best_value = tf.where(better, value, best_value)
            best_success = best_success | succeeded
        return best_x

    return _core.trace_once(run, _core.signature(x_example, 6))


def _sign_gradient_attack(
    model, x, y, *, eps, step_size, steps, loss, random_start, restarts,
    confidence, clip_min, clip_max, target, seed, batch_size, norm="linf",
    sparsity=_norms.L1_SPARSITY, supported=_norms.NORMS, name="",
) -> tf.Tensor:
    norm = _norms.check(norm, supported, name)
    sparsity = _checks.number("sparsity", sparsity, 0.0, strict=True,
                              maximum=1.0)
    eps = _checks.number("eps", eps, 0.0, strict=False)
    steps = _checks.integer("steps", steps)
    if step_size is None:
        step_size = _core.default_step_size(eps, steps)
    step_size = _checks.number("step_size", step_size, 0.0, strict=True)
    restarts = _checks.integer("restarts", restarts)
    confidence = _checks.number("confidence", confidence, 0.0, strict=False)
    _checks.choice("loss", loss, ("ce", "cw"))
    random_start = bool(random_start)
    return _core.run_attack(
        model, x, y, target=target, clip_min=clip_min, clip_max=clip_max,
        settings=("sign_gradient", loss, random_start, restarts, norm),
        build=functools.partial(_build, loss=loss, random_start=random_start,
                                restarts=restarts, norm=norm),
        steps=steps, scalars=[eps, step_size, confidence, sparsity],
        seed=seed, batch_size=batch_size)


def fgsm(
    model,
    x,
    y,
    eps: float,
    clip_min: Optional[float] = 0.0,
    clip_max: Optional[float] = 1.0,
    target=None,
    batch_size: Optional[int] = 256,
    norm: str = "linf",
) -> tf.Tensor:
    """Fast Gradient Sign Method: clip(x + eps * sign(dCE/dx)); FGM in L2.

    Goodfellow et al. (2015), "Explaining and Harnessing Adversarial
    Examples". One gradient step of size ``eps`` in the norm ``norm`` on the
    cross-entropy of the model's logits: ``eps * sign(g)`` (L-inf),
    ``eps * g / ||g||_2`` (L2, the fast gradient method), or for L1 ``eps``
    spread over the 5% of features with the largest ``|g|`` that can still
    move, projected onto the L1 ball within the clip range.

    Args:
        model: A Keras model returning logits (or a
            :class:`keras_gradreg.GradRegModel`, attacked through its
            logits), or a callable ``x -> logits``.
        x: Float inputs shaped ``(batch, ...)``, numpy or tensor.
        y: True labels, sparse or one-hot; None uses the model's predictions.
        eps: Radius in the norm ``norm``, ``>= 0``.
        clip_min: Lower bound of valid inputs, or None for unbounded.
        clip_max: Upper bound of valid inputs, or None for unbounded.
        target: Optional target classes; the step then descends the
            cross-entropy of the target (a targeted attack).
        batch_size: Examples per compiled call; None for one batch.
        norm: The threat model: ``"linf"`` (default), ``"l2"`` or ``"l1"``.

    Returns:
        Adversarial examples, a tensor shaped and typed like ``x``.

    Raises:
        ValueError, TypeError: For invalid arguments (negative eps, clip_min
            >= clip_max, non-float x, x outside the clip range, ...).

    Example:
        >>> import keras, numpy as np
        >>> model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3)])
        >>> x = np.full((2, 4), 0.5, "float32")
        >>> x_adv = fgsm(model, x, [0, 1], eps=0.1)
        >>> bool(np.all(np.abs(x_adv - x) <= 0.1 + 1e-6))
        True
    """
    eps = _checks.number("eps", eps, 0.0, strict=False)
    # One step of size eps; at eps = 0 the projection keeps x whatever the step.
    return _sign_gradient_attack(
        model, x, y, eps=eps, step_size=eps or 1.0, steps=1, loss="ce",
        random_start=False, restarts=1, confidence=0.0, clip_min=clip_min,
        clip_max=clip_max, target=target, seed=0, batch_size=batch_size,
        norm=norm, supported=fgsm.norms, name="fgsm",
    )


fgsm.norms = _norms.NORMS
fgsm.single_step = True
fgsm.title = "FGSM"


def bim(
    model,
    x,
    y,
    eps: float,
    step_size: Optional[float] = None,
    steps: int = 10,
    clip_min: Optional[float] = 0.0,
    clip_max: Optional[float] = 1.0,
    target=None,
    batch_size: Optional[int] = 256,
    norm: str = "linf",
    sparsity: float = _norms.L1_SPARSITY,
) -> tf.Tensor:
    """Basic Iterative Method: iterated FGSM on cross-entropy, projected.

    Kurakin et al. (2017), "Adversarial examples in the physical world"; the
    paper's BIM (10 steps of 0.05 on MNIST). Starts at ``x`` (no random
    start) and returns the last iterate. In L2 and L1 each step moves
    ``step_size`` along the norm's steepest-ascent direction.

    Args:
        model: A Keras model returning logits, a GradRegModel, or a callable.
        x: Float inputs shaped ``(batch, ...)``.
        y: True labels, sparse or one-hot; None uses the model's predictions.
        eps: Radius in the norm ``norm``, ``>= 0``.
        step_size: Size of each step in that norm, ``> 0``; None (the
            default) takes ``2.5 * eps / steps``.
        steps: Number of steps, ``>= 1`` (default 10).
        clip_min: Lower bound of valid inputs, or None.
        clip_max: Upper bound of valid inputs, or None.
        target: Optional target classes for a targeted attack.
        batch_size: Examples per compiled call; None for one batch.
        norm: The threat model: ``"linf"`` (default), ``"l2"`` or ``"l1"``.
        sparsity: With ``norm="l1"``: the share of the features each step
            moves (those of largest ``|gradient|`` that can still move),
            in ``(0, 1]``.

    Returns:
        Adversarial examples shaped like ``x``.

    Raises:
        ValueError, TypeError: For invalid arguments.

    Example:
        >>> import keras, numpy as np
        >>> model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3)])
        >>> x = np.full((2, 4), 0.5, "float32")
        >>> bim(model, x, [0, 1], eps=0.1, step_size=0.02, steps=10).shape
        TensorShape([2, 4])
    """
    return _sign_gradient_attack(
        model, x, y, eps=eps, step_size=step_size, steps=steps, loss="ce",
        random_start=False, restarts=1, confidence=0.0, clip_min=clip_min,
        clip_max=clip_max, target=target, seed=0, batch_size=batch_size,
        norm=norm, sparsity=sparsity, supported=bim.norms, name="bim",
    )


bim.norms = _norms.NORMS


def cw_linf(
    model,
    x,
    y,
    eps: float,
    step_size: Optional[float] = None,
    steps: int = 10,
    confidence: float = 50.0,
    clip_min: Optional[float] = 0.0,
    clip_max: Optional[float] = 1.0,
    target=None,
    batch_size: Optional[int] = 256,
) -> tf.Tensor:
    """The paper's "C&W" attack: BIM on the capped C&W margin loss.

    Maximizes ``min(max_{i != t} Z_i - Z_t, confidence)``, i.e. minimizes
    Carlini & Wagner's (2017) ``max(Z_t - max_{i != t} Z_i, -confidence)``
    with sign-gradient steps projected to the eps-ball, starting at ``x``.
    Once an example's wrong-class margin exceeds ``confidence`` its gradient
    is zero and it stops moving.

    Args:
        model: A Keras model returning logits, a GradRegModel, or a callable.
        x: Float inputs shaped ``(batch, ...)``.
        y: True labels, sparse or one-hot; None uses the model's predictions.
        eps: L-inf radius, ``>= 0``.
        step_size: L-inf size of each step, ``> 0``; None (the default)
            takes ``2.5 * eps / steps``.
        steps: Number of steps, ``>= 1`` (default 10).
        confidence: The cap k, ``>= 0`` (the paper uses 50).
        clip_min: Lower bound of valid inputs, or None.
        clip_max: Upper bound of valid inputs, or None.
        target: Optional target classes: maximizes
            ``min(Z_target - max_{i != target} Z_i, confidence)``.
        batch_size: Examples per compiled call; None for one batch.

    Returns:
        Adversarial examples shaped like ``x``.

    Raises:
        ValueError, TypeError: For invalid arguments.

    Example:
        >>> import keras, numpy as np
        >>> model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3)])
        >>> x = np.full((2, 4), 0.5, "float32")
        >>> cw_linf(model, x, [0, 1], eps=0.1, step_size=0.02, steps=5).shape
        TensorShape([2, 4])
    """
    return _sign_gradient_attack(
        model, x, y, eps=eps, step_size=step_size, steps=steps, loss="cw",
        random_start=False, restarts=1, confidence=confidence,
        clip_min=clip_min, clip_max=clip_max, target=target, seed=0,
        batch_size=batch_size,
    )


def pgd(
    model,
    x,
    y,
    eps: float,
    step_size: Optional[float] = None,
    steps: int = 10,
    restarts: int = 1,
    loss: str = "ce",
    random_start: bool = True,
    seed: Optional[int] = None,
    confidence: float = 50.0,
    clip_min: Optional[float] = 0.0,
    clip_max: Optional[float] = 1.0,
    target=None,
    batch_size: Optional[int] = 256,
    norm: str = "linf",
    sparsity: float = _norms.L1_SPARSITY,
) -> tf.Tensor:
    """Projected Gradient Descent of Madry et al. (2018), L-inf, L2 or L1.

    "Towards Deep Learning Models Resistant to Adversarial Attacks". Each
    restart starts at a random point of the eps-ball (if ``random_start``:
    uniform in the L-inf cube, uniform on the L2 sphere, Gaussian noise
    projected onto the L1 ball) and takes ``steps`` steepest-ascent steps
    of the norm, each projected back into the ball. Per example
    the strongest final iterate over restarts is returned: a successful one
    (misclassified, or classified as ``target``) beats an unsuccessful one,
    ties go to the highest loss. Restart ``r`` of batch ``b`` draws its start
    from the stateless seed ``(seed, b)`` folded with ``r``, so a seed makes
    the result reproducible and restart 0 is the same with any ``restarts``.

    Args:
        model: A Keras model returning logits, a GradRegModel, or a callable.
        x: Float inputs shaped ``(batch, ...)``.
        y: True labels, sparse or one-hot; None uses the model's predictions.
        eps: Radius in the norm ``norm``, ``>= 0``.
        step_size: Size of each step in that norm, ``> 0``; None (the
            default) takes ``2.5 * eps / steps``, Madry et al.'s rule.
        steps: Steps per restart, ``>= 1`` (default 10).
        restarts: Number of restarts, ``>= 1``.
        loss: ``"ce"`` (cross-entropy) or ``"cw"`` (capped C&W margin).
        random_start: Start each restart at a uniform point of the ball.
        seed: Seed of the random starts; None draws one from NumPy.
        confidence: The C&W cap, used with ``loss="cw"``.
        clip_min: Lower bound of valid inputs, or None.
        clip_max: Upper bound of valid inputs, or None.
        target: Optional target classes for a targeted attack.
        batch_size: Examples per compiled call; None for one batch.
        norm: The threat model: ``"linf"`` (default), ``"l2"`` or ``"l1"``.
        sparsity: With ``norm="l1"``: the share of the features each step
            moves, in ``(0, 1]``.

    Returns:
        Adversarial examples shaped like ``x``.

    Raises:
        ValueError, TypeError: For invalid arguments.

    Example:
        >>> import keras, numpy as np
        >>> model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3)])
        >>> x = np.full((2, 4), 0.5, "float32")
        >>> a = pgd(model, x, [0, 1], 0.1, 0.02, 5, restarts=2, seed=1)
        >>> b = pgd(model, x, [0, 1], 0.1, 0.02, 5, restarts=2, seed=1)
        >>> bool(np.array_equal(a, b))
        True
    """
    return _sign_gradient_attack(
        model, x, y, eps=eps, step_size=step_size, steps=steps, loss=loss,
        random_start=random_start, restarts=restarts, confidence=confidence,
        clip_min=clip_min, clip_max=clip_max, target=target, seed=seed,
        batch_size=batch_size, norm=norm, sparsity=sparsity,
        supported=pgd.norms, name="pgd",
    )


pgd.norms = _norms.NORMS
cw_linf.norms = ("linf",)
bim.title, cw_linf.title, pgd.title = "BIM", "C&W", "PGD"
