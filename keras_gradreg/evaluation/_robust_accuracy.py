"""Accuracy of one model under one attack."""

from __future__ import annotations

from typing import Callable, Union

import keras
import tensorflow as tf

from keras_gradreg import _checks
from keras_gradreg import attacks as attacks_lib
from keras_gradreg.attacks import _core
from keras_gradreg.evaluation import _batches


def robust_accuracy(
    model,
    data,
    attack: Union[str, Callable, None] = attacks_lib.pgd,
    eps: float = 0.0,
    batch_size: int = 256,
    verbose: int = 1,
    **attack_kwargs,
) -> float:
    """Accuracy of ``model`` on adversarial examples crafted against it.

    Args:
        model: A Keras model returning logits, or a GradRegModel.
        data: ``(x, y)`` arrays, or a ``tf.data.Dataset`` of ``(x, y)``
            elements, batched or not (unbatched ones are batched here), as
            ``keras.Model.fit`` takes them. A dataset of dicts (tfds
            without ``as_supervised=True``) is refused with the ``map``
            that turns it into ``(x, y)``.
        attack: A name in :data:`keras_gradreg.attacks.ATTACKS`, a
            callable ``attack(model, x, y, eps=eps, **kwargs) -> x_adv``
            (default :func:`keras_gradreg.attacks.pgd`), or None for clean
            accuracy. Each attack owns its defaults (BIM, C&W and PGD: 10
            steps of ``2.5 * eps / steps``).
        eps: Radius in the attack's norm (its ``norm=``, default L-inf);
            0 gives clean accuracy.
        batch_size: Examples per batch (for arrays and unbatched datasets).
        verbose: 1 shows a ``keras.utils.Progbar``, 0 is silent.
        **attack_kwargs: Forwarded to the attack (e.g. ``steps``, ``seed``,
            ``clip_min``).

    Returns:
        The fraction of examples still classified correctly.

    Raises:
        ValueError, TypeError: For an unknown attack, a negative eps or
            malformed data.

    Example:
        >>> import keras, numpy as np
        >>> from keras_gradreg import attacks
        >>> model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3)])
        >>> x, y = np.random.rand(16, 4).astype("float32"), np.zeros(16)
        >>> clean = robust_accuracy(model, (x, y), None, verbose=0)
        >>> robust_accuracy(model, (x, y), attacks.fgsm, 0.1, verbose=0) <= clean
        True
    """
    _checks.number("eps", eps, 0.0, strict=False)
    batch_size = _checks.integer("batch_size", batch_size)
    attack_fn = None if attack is None else _batches.attack_function(attack)
    batches, count = _batches.batches(data, batch_size, model)
    progbar = keras.utils.Progbar(count, verbose=verbose, unit_name="batch")
    correct, total = 0, 0
    for x, labels in batches:
        if total == 0 and (attack_fn is None or eps == 0):
            _core.warn_if_probabilities(model, tf.convert_to_tensor(x))
        if attack_fn is not None and eps > 0:
            x = _batches.craft(model, x, labels, attack_fn, eps, attack_kwargs)
        correct += int(_batches.correct(model, x, labels, batch_size).sum())
        total += len(labels)
        progbar.add(1, [("accuracy", correct / max(total, 1))])
    if total == 0:
        raise ValueError("data holds no examples.")
    return correct / total
