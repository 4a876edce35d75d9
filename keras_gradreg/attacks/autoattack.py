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
"""

from __future__ import annotations

from typing import Optional

import keras
import numpy as np
import tensorflow as tf

from keras_gradreg import _checks
from keras_gradreg.attacks import _core
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


def _parts(version, classes, steps, targets, queries, eot_iter, seed):
    """``[(name, attack, kwargs)]`` of ``version`` for a model's classes."""
    eot = eot_iter if version == "rand" else 1
    options = {
        "apgd_ce": (apgd, {"steps": steps, "loss": "ce", "seed": seed,
                           "eot_iter": eot}),
        "apgd_dlr": (apgd, {"steps": steps, "loss": "dlr", "seed": seed,
                            "eot_iter": eot}),
        "apgd_t": (apgd_t, {"steps": steps, "targets": targets, "seed": seed}),
        "fab_t": (fab_t, {"steps": steps, "targets": targets}),
        "square": (square, {"queries": queries, "seed": seed}),
    }
    return [
        (name,) + options[name] for name in VERSIONS[version]
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
    targets: int = 9,
    queries: int = 5000,
    eot_iter: int = 20,
    clip_min: Optional[float] = 0.0,
    clip_max: Optional[float] = 1.0,
    batch_size: Optional[int] = 256,
    verbose: int = 1,
    return_breakers: bool = False,
):
    """AutoAttack, L-inf: the attacks of ``version`` on the points still robust.

    Croce & Hein (ICML 2020); see the module docstring for the versions.
    Per batch, each attack in turn runs on the examples classified correctly
    so far; an example it misclassifies keeps that adversarial point and the
    attack's name. Threat model: white-box (and, through Square, black-box),
    L-inf radius ``eps`` inside ``[clip_min, clip_max]``.

    Args:
        model: A Keras model returning logits, a GradRegModel, or a callable.
        x: Float inputs shaped ``(batch, ...)``.
        y: True labels, sparse or one-hot; None uses the model's predictions.
        eps: L-inf radius, ``>= 0``.
        version: ``"standard"``, ``"fast"`` or ``"rand"``.
        seed: Seed of the random attacks; None draws one from NumPy.
        steps: Iterations of APGD and FAB (per target), ``>= 1``.
        targets: Target classes of APGD-T and FAB-T, ``>= 1``.
        queries: Square's queries per example, ``>= 1``.
        eot_iter: Gradient samples per APGD step in ``"rand"``, ``>= 1``.
        clip_min: Lower bound of valid inputs, or None.
        clip_max: Upper bound of valid inputs, or None.
        batch_size: Examples per batch; None for one batch.
        verbose: 1 shows a ``keras.utils.Progbar`` over batches and attacks
            with the time left; 0 is silent.
        return_breakers: Also return which attack broke each example.

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
    eps = _checks.number("eps", eps, 0.0, strict=False)
    _checks.choice("version", version, VERSIONS)
    steps = _checks.integer("steps", steps)
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
                       seed)
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


def _part_names(version: str = "standard", **options) -> tuple:
    """The names of the attacks ``autoattack(..., version=version)`` runs
    (the values its ``return_breakers`` array may hold, besides
    ``"clean"`` and ``""``)."""
    del options  # Only the version chooses the parts.
    return VERSIONS[version]


autoattack.title = "AutoAttack"
autoattack.headline = True  # the first column of every table
autoattack.parts = _part_names  # an ensemble: names of its parts by options
