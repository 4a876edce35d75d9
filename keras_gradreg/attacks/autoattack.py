"""AutoAttack: the parameter-free ensemble of Croce & Hein (ICML 2020).

"Reliable evaluation of adversarial robustness with an ensemble of diverse
parameter-free attacks". The attacks run in a fixed order, each only on the
examples that every earlier attack left classified correctly, so the result
is the per-example worst case over the ensemble:

* ``"standard"``: APGD-CE, APGD-T (9 targets), FAB-T (9 targets), Square
  (5000 queries);
* ``"fast"``: APGD-CE, APGD-T;
* ``"rand"``, for randomized models: APGD-CE and APGD-DLR, each averaging 20
  gradient samples per step (expectation over transformation).

APGD-T needs at least 4 classes and APGD-DLR at least 3; with fewer classes
they are skipped.

``norm`` chooses the threat model, with the reference's standard settings
per norm: L-inf and L2 as above (every part in that norm); L1 runs APGD-CE
with 5 restarts and APGD-T with 5 targets, both on L1's decreasing-eps
schedule (Croce & Hein, ICCV 2021), and FAB-T. A part that does not support
the norm (its ``norms``) is left out: Square, which has no L1 version here.
"""

from __future__ import annotations

from typing import Optional

import keras
import numpy as np
import tensorflow as tf

from keras_gradreg import _checks
from keras_gradreg.attacks import _core
from keras_gradreg.attacks import _norms
from keras_gradreg.attacks.apgd import apgd
from keras_gradreg.attacks.apgd import apgd_t
from keras_gradreg.attacks.fab import fab_t
from keras_gradreg.attacks.square import square

__all__ = ["autoattack", "VERSIONS"]

VERSIONS = {
    "standard": ("apgd_ce", "apgd_t", "fab_t", "square"),
    "fast": ("apgd_ce", "apgd_t"),
    "rand": ("apgd_ce", "apgd_dlr"),
}
_MIN_CLASSES = {"apgd_t": 4, "apgd_dlr": 3}
_FUNCTIONS = {"apgd_ce": apgd, "apgd_dlr": apgd, "apgd_t": apgd_t,
              "fab_t": fab_t, "square": square}
# The reference's standard settings per norm that differ from L-inf's.
_L1_RESTARTS = 5
_L1_TARGETS = 5


def _in_norm(version: str, norm: str) -> list:
    """The part names of ``version`` that support ``norm``."""
    return [name for name in VERSIONS[version]
            if norm in getattr(_FUNCTIONS[name], "norms", ("linf",))]


def _parts(version, classes, steps, targets, queries, eot_iter, seed,
           norm="linf"):
    """``[(name, attack, kwargs)]`` of ``version`` for a model's classes."""
    eot = eot_iter if version == "rand" else 1
    restarts = _L1_RESTARTS if norm == "l1" and version != "rand" else 1
    apgd_targets = targets
    if apgd_targets is None:
        apgd_targets = _L1_TARGETS if norm == "l1" else 9
    options = {
        "apgd_ce": {"steps": steps, "loss": "ce", "seed": seed,
                    "eot_iter": eot, "restarts": restarts},
        "apgd_dlr": {"steps": steps, "loss": "dlr", "seed": seed,
                     "eot_iter": eot},
        "apgd_t": {"steps": steps, "targets": apgd_targets, "seed": seed},
        "fab_t": {"steps": steps, "targets": targets or 9},
        "square": {"queries": queries, "seed": seed},
    }
    return [
        (name, _FUNCTIONS[name], dict(options[name], norm=norm))
        for name in _in_norm(version, norm)
        if classes >= _MIN_CLASSES.get(name, 2)
    ]


def _correct(model, x, labels) -> np.ndarray:
    logits = _core.predict_logits(model, x)
    return np.argmax(logits.numpy(), axis=-1) == labels


def autoattack(
    model,
    x,
    y,
    eps: float,
    version: str = "standard",
    seed: Optional[int] = None,
    steps: int = 100,
    targets: Optional[int] = None,
    queries: int = 5000,
    eot_iter: int = 20,
    clip_min: Optional[float] = 0.0,
    clip_max: Optional[float] = 1.0,
    batch_size: Optional[int] = 256,
    verbose: int = 1,
    return_breakers: bool = False,
    norm: str = "linf",
):
    """AutoAttack: the attacks of ``version`` on the points still robust.

    Croce & Hein (ICML 2020); see the module docstring for the versions.
    Per batch, each attack in turn runs on the examples classified correctly
    so far; an example it misclassifies keeps that adversarial point and the
    attack's name. Threat model: white-box (and, through Square, black-box),
    radius ``eps`` in the norm ``norm`` inside ``[clip_min, clip_max]``.

    Args:
        model: A Keras model returning logits, a GradRegModel, or a callable.
        x: Float inputs shaped ``(batch, ...)``.
        y: True labels, sparse or one-hot; None uses the model's predictions.
        eps: Radius in the norm ``norm``, ``>= 0``.
        version: ``"standard"``, ``"fast"`` or ``"rand"``.
        seed: Seed of the random attacks; None draws one from NumPy.
        steps: Iterations of APGD and FAB (per target), ``>= 1``.
        targets: Target classes of APGD-T and FAB-T, ``>= 1``; None (the
            default) takes the reference's: 9, and 5 for APGD-T in L1.
        queries: Square's queries per example, ``>= 1``.
        eot_iter: Gradient samples per APGD step in ``"rand"``, ``>= 1``.
        clip_min: Lower bound of valid inputs, or None.
        clip_max: Upper bound of valid inputs, or None.
        batch_size: Examples per batch; None for one batch.
        verbose: 1 shows a ``keras.utils.Progbar`` over batches and attacks
            with the time left; 0 is silent.
        return_breakers: Also return which attack broke each example.
        norm: The threat model: ``"linf"`` (default), ``"l2"`` or ``"l1"``.

    Returns:
        The adversarial examples, a tensor shaped like ``x`` (``x`` itself
        where no attack succeeded); with ``return_breakers`` a tuple
        ``(x_adv, broken_by)``, ``broken_by`` a numpy string array holding
        per example the name of the attack that broke it (``"apgd_ce"``,
        ``"apgd_t"``, ``"fab_t"``, ``"square"``, ``"apgd_dlr"``),
        ``"clean"`` if it was misclassified from the start, or ``""``.

    Raises:
        ValueError, TypeError: For invalid arguments.

    Example:
        >>> import keras, numpy as np
        >>> model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(5)])
        >>> x = np.random.rand(8, 4).astype("float32")
        >>> x_adv, broken_by = autoattack(model, x, None, 0.3, "fast", seed=0,
        ...                               steps=10, verbose=0,
        ...                               return_breakers=True)
        >>> bool(np.abs(x_adv - x).max() <= 0.3 + 1e-6), broken_by.shape
        (True, (8,))
    """
    norm = _norms.check(norm, autoattack.norms, "autoattack")
    eps = _checks.number("eps", eps, 0.0, strict=False)
    _checks.choice("version", version, VERSIONS)
    steps = _checks.integer("steps", steps)
    if targets is not None:
        targets = _checks.integer("targets", targets)
    queries = _checks.integer("queries", queries)
    eot_iter = _checks.integer("eot_iter", eot_iter)
    if batch_size is not None:
        batch_size = _checks.integer("batch_size", batch_size)
    seed = _checks.seed(seed)
    x, labels, _ = _core.prepare(model, x, y, None, clip_min, clip_max)
    inputs, labels = x.numpy(), labels.numpy()
    total = len(inputs)
    x_adv = inputs.copy()
    broken_by = np.full(total, "", dtype="<U8")
    if total:
        classes = _core.num_classes(model, x)
        parts = _parts(version, classes, steps, targets, queries, eot_iter,
                       seed, norm)
        size = batch_size or total
        starts = range(0, total, size)
        progbar = keras.utils.Progbar(
            len(starts) * len(parts), verbose=verbose, unit_name="attack",
            stateful_metrics=["robust_accuracy"],
        )
        robust = np.zeros(total, bool)
        for start in starts:
            batch = slice(start, start + size)
            robust[batch] = _correct(model, inputs[batch], labels[batch])
            broken_by[batch][~robust[batch]] = "clean"
            for name, attack, kwargs in parts:
                left = start + np.flatnonzero(robust[batch])
                if len(left):
                    found = attack(
                        model, inputs[left], labels[left], eps,
                        clip_min=clip_min, clip_max=clip_max, batch_size=None,
                        **kwargs,
                    ).numpy()
                    fooled = ~_correct(model, found, labels[left])
                    x_adv[left[fooled]] = found[fooled]
                    broken_by[left[fooled]] = name
                    robust[left[fooled]] = False
                done = robust[: start + size]
                progbar.add(1, [("robust_accuracy", float(done.mean()))])
    x_adv = tf.convert_to_tensor(x_adv)
    return (x_adv, broken_by) if return_breakers else x_adv


def _part_names(version: str = "standard", norm: str = "linf",
                **options) -> tuple:
    """The names of the attacks ``autoattack(..., version=version,
    norm=norm)`` runs (the values its ``return_breakers`` array may hold,
    besides ``"clean"`` and ``""``)."""
    del options  # Only the version and the norm choose the parts.
    return tuple(_in_norm(version, norm))


autoattack.title = "AutoAttack"
autoattack.norms = _norms.NORMS
autoattack.headline = True  # the first column of every table
autoattack.parts = _part_names  # an ensemble: names of its parts by options
