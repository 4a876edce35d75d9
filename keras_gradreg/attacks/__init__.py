"""Adversarial attacks in L-inf, L2 and L1, each one compiled graph per batch.

Threat model: white-box, in the norm ``norm`` of the attack (``"linf"``,
the default: the attacker may change each input feature by at most
``eps``; ``"l2"``; ``"l1"``); adversarial examples are also kept in
``[clip_min, clip_max]`` (default ``[0, 1]``; pass None for unbounded
features such as MFCCs). Each attack's ``norms`` attribute lists the norms
it supports (:func:`supported_norms`); asking for another one raises a
``ValueError`` naming them.

* :func:`fgsm`: Fast Gradient Sign Method (Goodfellow et al., 2015); in L2
  the fast gradient method (FGM).
* :func:`bim`: Basic Iterative Method, the paper's BIM (Kurakin et al., 2017).
* :func:`cw_linf`: BIM on the capped C&W margin loss, the paper's "C&W"
  (Carlini & Wagner, 2017; confidence k = 50).
* :func:`pgd`: PGD with random start and restarts (Madry et al., 2018).
* :func:`apgd`: Auto-PGD with CE or DLR loss (Croce & Hein, 2020).
* :func:`apgd_t`: APGD on the targeted DLR loss, one run per target class.
* :func:`fab_t`: targeted Fast Adaptive Boundary attack, minimum L-inf norm
  (Croce & Hein, 2020).
* :func:`square`: Square Attack, score-based black-box random search
  (Andriushchenko et al., 2020); it uses no gradient.
* :func:`autoattack`: the AutoAttack ensemble (Croce & Hein, 2020), each
  attack on the points still robust.

:data:`ATTACKS` names them all (``"cw"`` is :func:`cw_linf`); it is the only
list of attack names in keras-gradreg: evaluation, the command line, the
examples and the benchmarks read it. Every attack is called as
``attack(model, x, y, eps, **options)`` and owns its defaults (BIM, C&W and
PGD: 10 steps of ``2.5 * eps / steps``). Adding an attack is one module and
one line in :data:`ATTACKS`. Optional attributes of an attack function:
``title`` (its name in tables, e.g. ``"C&W"``), ``single_step = True``
(the masking checks compare the multi-step attacks with a single-step one),
``headline = True`` (the first column of every table: AutoAttack),
``black_box = True`` (it reads no gradient: the masking checks compare it
with the gradient attacks; Square), ``norms`` (the threat models it
supports, names in :data:`NORMS`; an attack without it is L-inf only),
``losses`` (the losses an evaluation runs it with, one column each: APGD's
CE and DLR) and ``parts`` (an
ensemble: ``parts(**options)`` names the attacks it runs; AutoAttack).
Named selections (:data:`PAPER_ATTACKS`, :data:`DEFAULT_ATTACKS`,
:data:`QUICK_ATTACKS`, :data:`SELECTION_ATTACKS`, :data:`EXTRA_ATTACKS`)
are the defaults of the command line and the examples.

Models must return logits. A :class:`keras_gradreg.GradRegModel` is attacked
through ``model.logits``, and a functional or Sequential model whose last
layer applies a softmax through its pre-softmax logits; any other model is
taken to return logits as is.

Example:
    >>> import keras, numpy as np
    >>> model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3)])
    >>> x = np.random.rand(8, 4).astype("float32")
    >>> x_adv = ATTACKS["bim"](model, x, np.zeros(8, "int32"), 0.1)
    >>> bool(np.abs(x_adv - x).max() <= 0.1 + 1e-6)
    True
"""

from __future__ import annotations

import inspect
from typing import Callable, Dict, Union

from keras_gradreg.attacks._norms import NORMS
from keras_gradreg.attacks.apgd import apgd
from keras_gradreg.attacks.apgd import apgd_t
from keras_gradreg.attacks.autoattack import autoattack
from keras_gradreg.attacks.fab import fab_t
from keras_gradreg.attacks.gradient import bim
from keras_gradreg.attacks.gradient import cw_linf
from keras_gradreg.attacks.gradient import fgsm
from keras_gradreg.attacks.gradient import pgd
from keras_gradreg.attacks.losses import cw_loss
from keras_gradreg.attacks.losses import dlr_loss
from keras_gradreg.attacks.losses import targeted_dlr_loss
from keras_gradreg.attacks.square import square

__all__ = [
    "ATTACKS", "PAPER_ATTACKS", "DEFAULT_ATTACKS", "QUICK_ATTACKS",
    "SELECTION_ATTACKS", "EXTRA_ATTACKS", "get", "accepts", "is_single_step",
    "NORMS", "supported_norms",
    "fgsm", "bim", "cw_linf", "pgd", "apgd", "apgd_t", "fab_t", "square",
    "autoattack", "cw_loss", "dlr_loss", "targeted_dlr_loss",
]

ATTACKS: Dict[str, Callable] = {
    "fgsm": fgsm,
    "bim": bim,
    "cw": cw_linf,
    "pgd": pgd,
    "apgd": apgd,
    "apgd_t": apgd_t,
    "fab_t": fab_t,
    "square": square,
    "autoattack": autoattack,
}
"""Every attack by name: ``attack(model, x, y, eps, **options) -> x_adv``."""

PAPER_ATTACKS = ("fgsm", "bim", "cw")
"""The attacks of Yu et al.'s Tables 1-3, names in :data:`ATTACKS`."""

DEFAULT_ATTACKS = PAPER_ATTACKS + ("pgd",)
"""The paper's attacks and PGD with random start (Madry et al. 2018): what
``keras-gradreg evaluate`` runs unless told otherwise."""

QUICK_ATTACKS = ("fgsm", "pgd")
"""One single-step and one random-start multi-step attack: the quick
before / after reading of ``keras-gradreg finetune``."""

SELECTION_ATTACKS = ("fgsm", "bim")
"""The attacks whose mean accuracy on validation data chooses the penalty
weight c (``examples/sweep_c.py``)."""

EXTRA_ATTACKS = ("pgd", "apgd")
"""Stronger attacks beyond the paper's that the examples add as honesty
checks (PGD with restarts; APGD with each of its ``losses``)."""


def get(attack: Union[str, Callable]) -> Callable:
    """The attack named ``attack`` in :data:`ATTACKS`, or ``attack`` itself.

    Args:
        attack: A name in :data:`ATTACKS` or a callable
            ``attack(model, x, y, eps=eps, **options) -> x_adv``.

    Returns:
        The attack function.

    Raises:
        ValueError: For a name that is not in :data:`ATTACKS`.
        TypeError: For something that is neither a string nor callable.

    Example:
        >>> get("cw") is cw_linf
        True
    """
    if callable(attack):
        return attack
    if not isinstance(attack, str):
        raise TypeError(
            f"attack must be a name in {sorted(ATTACKS)} or a callable "
            f"attack(model, x, y, eps=eps, **options) -> x_adv, got "
            f"{attack!r}."
        )
    if attack in ATTACKS:
        return ATTACKS[attack]
    raise ValueError(
        f"Unknown attack {attack!r}: use one of {sorted(ATTACKS)} or a "
        "callable attack(model, x, y, eps=eps, **options) -> x_adv."
    )


def accepts(attack: Union[str, Callable], option: str) -> bool:
    """Whether ``attack`` takes the keyword argument ``option``.

    An attack with ``**options`` in its signature takes every option.

    Example:
        >>> accepts("pgd", "step_size"), accepts("apgd", "step_size")
        (True, False)
    """
    try:
        parameters = inspect.signature(get(attack)).parameters
    except (TypeError, ValueError):  # builtins without a signature
        return False
    if option in parameters:
        return parameters[option].kind is not inspect.Parameter.POSITIONAL_ONLY
    return any(p.kind is inspect.Parameter.VAR_KEYWORD
               for p in parameters.values())


def is_single_step(attack: Union[str, Callable]) -> bool:
    """Whether ``attack`` takes one gradient step (its ``single_step`` flag).

    Example:
        >>> is_single_step("fgsm"), is_single_step("bim")
        (True, False)
    """
    return bool(getattr(get(attack), "single_step", False))


def supported_norms(attack: Union[str, Callable]) -> tuple:
    """The threat models ``attack`` supports (its ``norms`` attribute).

    An attack without the attribute (a user's callable) is taken to be
    L-inf only.

    Example:
        >>> supported_norms("pgd"), supported_norms("cw")
        (('linf', 'l2', 'l1'), ('linf',))
    """
    return tuple(getattr(get(attack), "norms", ("linf",)))


# Defaults of the shells that watch training --------------------------------

__all__ += ["EPOCH_ATTACK"]

EPOCH_ATTACK = "fgsm"
"""The attack that watches a training run at each epoch end, a name in
:data:`ATTACKS`: the default of ``callbacks.RobustAccuracyCallback`` and the
attack of the command line's and the examples' TensorBoard logging. One
gradient step, cheap enough to run every epoch."""
