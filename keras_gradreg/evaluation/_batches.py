"""Attack lookup, crafting and data batching of the evaluation.

* :func:`attack_function`: an attack name of ``attacks.ATTACKS`` or a
  callable.
* :func:`craft`: adversarial examples (each attack owns its defaults).
* :func:`correct`: which examples a model classifies correctly.
* :func:`batches`: ``(x, sparse labels)`` numpy batches of arrays or a
  ``tf.data.Dataset``.
"""

from __future__ import annotations

import inspect
from typing import Callable

import numpy as np
import tensorflow as tf

from keras_gradreg import _atomic
from keras_gradreg import _checks
from keras_gradreg import attacks as attacks_lib
from keras_gradreg.attacks import _core


def attack_function(attack) -> Callable:
    """The attack named ``attack`` in ``attacks.ATTACKS``, or ``attack``."""
    return attacks_lib.get(attack)


def craft(model, x, y, attack: Callable, eps: float, kwargs: dict,
          breakers: bool = False):
    """Adversarial examples; the attack supplies its own defaults.

    An attack that can report which of its parts broke each example (it
    takes ``return_breakers``, as :func:`~keras_gradreg.attacks.autoattack`
    does) runs silently (the caller's progress bar counts batches). With
    ``breakers`` this returns ``(x_adv, broken_by)``: the name of the part
    that broke each example for such an attack, None for any other.
    """
    _atomic.fault_point("attack")  # a test hook: killed mid-chunk
    kwargs = dict(kwargs)
    if names_parameter(attack, "return_breakers"):
        kwargs.setdefault("verbose", 0)
        if breakers:
            return attack(model, x, y, eps=eps, return_breakers=True, **kwargs)
    x_adv = attack(model, x, y, eps=eps, **kwargs)
    return (x_adv, None) if breakers else x_adv


def names_parameter(attack: Callable, name: str) -> bool:
    """Whether ``attack`` names the parameter ``name`` (``**kwargs`` is not
    enough: a callable that swallows every option cannot report breakers)."""
    try:
        return name in inspect.signature(attack).parameters
    except (TypeError, ValueError):  # builtins without a signature
        return False


def headline_first(names) -> list:
    """Attack names with the headline attack (its ``headline`` flag, the
    AutoAttack ensemble) first."""
    names = list(names)
    return sorted(
        names,
        key=lambda name: not getattr(attacks_lib.ATTACKS.get(name), "headline", False),
    )


def correct(model, x, labels: np.ndarray, batch_size: int) -> np.ndarray:
    """Boolean array: whether ``model`` classifies each example correctly."""
    logits = _core.predict_logits(model, x, batch_size)
    return np.argmax(logits.numpy(), axis=-1) == labels


def _check_elements(dataset: tf.data.Dataset) -> None:
    """Refuses datasets whose elements are not ``(x, y[, weights])``."""
    spec = dataset.element_spec
    if isinstance(spec, dict):
        keys = sorted(spec)
        raise TypeError(
            f"data is a tf.data.Dataset of dicts (keys {keys}); it must yield "
            "(x, y) tuples, as keras.Model.fit takes them. Map it first, "
            f"e.g. data.map(lambda d: (d[{keys[0]!r}], d[{keys[-1]!r}])), or "
            "load tfds datasets with as_supervised=True."
        )
    if not isinstance(spec, tuple) or len(spec) < 2 or tf.nest.is_nested(spec[0]):
        raise TypeError(
            "data must be a tf.data.Dataset of (x, y) elements with one input "
            f"tensor x, got elements {spec}."
        )


def _is_batched(dataset: tf.data.Dataset, model) -> bool:
    x_spec, y_spec = tuple(dataset.element_spec)[:2]
    if y_spec.shape.rank == 0:
        return False
    if x_spec.shape.rank and x_spec.shape[0] is None:
        return True
    inputs = getattr(model, "inputs", None) or getattr(
        getattr(model, "base", None), "inputs", None
    )
    if inputs:
        return x_spec.shape.rank == len(inputs[0].shape)
    raise ValueError(
        "Cannot tell whether the dataset is batched; batch it with "
        "dataset.batch(n) before passing it."
    )


def _checked_batch(x, y, model, classes):
    """``(x, sparse labels, classes)`` of one batch, checked before any
    attack runs: finite inputs, integer labels in range (one-hot rows as
    wide as the model's logits)."""
    x = np.asarray(x)
    if np.issubdtype(x.dtype, np.floating):
        _checks.inputs(x)
    if classes is None and len(x):
        classes = _core.num_classes(model, x)
    return x, _checks.labels(y, classes, batch=len(x)), classes


def batches(data, batch_size: int, model):
    """Yields ``(x, sparse labels)`` numpy batches and the batch count.

    Arrays are checked whole before the first batch is yielded; a dataset
    batch by batch. Labels are checked against the width of ``model``'s
    logits.
    """
    if isinstance(data, tf.data.Dataset):
        _check_elements(data)
        if not _is_batched(data, model):
            data = data.batch(batch_size)
        count = int(data.cardinality())
        count = count if count >= 0 else None

        def numpy_batches():
            classes = None
            for element in data.as_numpy_iterator():
                x, labels, classes = _checked_batch(
                    element[0], element[1], model, classes
                )
                yield x, labels

        return numpy_batches(), count
    if not isinstance(data, (tuple, list)) or len(data) != 2:
        raise TypeError(
            "data must be a tuple (x, y) of arrays or a tf.data.Dataset of "
            f"(x, y) elements, got {type(data).__name__}."
        )
    x, labels, _ = _checked_batch(data[0], data[1], model, None)
    starts = range(0, len(x), batch_size)
    numpy_batches = (
        (x[s : s + batch_size], labels[s : s + batch_size]) for s in starts
    )
    return numpy_batches, len(starts)
