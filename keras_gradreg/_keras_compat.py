"""Every use of Keras-private API in keras-gradreg, in one place.

Keras 3 has no public hook for three things the training models need; each
function below names the private attribute it relies on (seen in Keras
3.15), and ``tests/test_keras_compat.py`` fails loudly when one of them
changes, so a Keras upgrade breaks a test, not a training run.

* ``keras.Model._maybe_symbolic_build(iterator, data_batch)`` and
  ``_symbolic_build(data_batch=)``: overridden to build from one replica's
  batch (see :func:`build_from_first_replica`).
* ``keras.Model._distribute_strategy``: the strategy the model was created
  under.
* ``MultiWorkerMirroredStrategy.extended._in_multi_worker_mode()``.
* ``keras.Model._loss_tracker``: the ``Mean`` metric Keras logs as ``loss``.
* ``keras.Layer._trainable_variables`` and ``_non_trainable_variables``:
  the variables a layer saves itself, in order (see
  :func:`load_leading_own_variables`).
"""

from __future__ import annotations

from typing import Callable

import keras
import tensorflow as tf

# The private methods we override or call, with the arguments we pass.
OVERRIDDEN = {
    "_maybe_symbolic_build": ("iterator", "data_batch"),
    "_symbolic_build": ("iterator", "data_batch"),
}


def loss_tracker(model: keras.Model):
    """The ``Mean`` metric Keras reports as ``loss`` (created by ``compile``)."""
    return model._loss_tracker  # noqa: SLF001


def own_variables(layer: keras.layers.Layer) -> list:
    """The variables ``layer.save_own_variables`` stores, in store order."""
    return layer._trainable_variables + layer._non_trainable_variables  # noqa: SLF001


def load_leading_own_variables(layer: keras.layers.Layer, store) -> None:
    """``Layer.load_own_variables`` that accepts a store holding only the
    first of the layer's own variables (a file written before later ones
    were added); the others keep their values. A store with more entries
    than the layer has variables is left to Keras' own check."""
    variables = own_variables(layer)
    if len(store.keys()) >= len(variables):
        keras.layers.Layer.load_own_variables(layer, store)
        return
    for index, variable in enumerate(variables[: len(store.keys())]):
        variable.assign(store[f"{index}"])


def _first_local_value(strategy, value):
    if isinstance(value, tf.distribute.DistributedValues):
        return strategy.experimental_local_results(value)[0]
    return value


def build_from_first_replica(
    model: keras.Model, iterator, data_batch, default: Callable
) -> None:
    """``Model._maybe_symbolic_build`` from one replica's batch.

    Keras 3 (seen in 3.15) averages the first distributed batch with
    ``strategy.reduce`` before building, which fails eagerly under
    ``MultiWorkerMirroredStrategy`` (a PerReplica cannot become a tensor).
    Taking the first local replica's batch builds the same shapes and works
    under every strategy.

    Args:
        model: The model being built.
        iterator: Keras' epoch iterator, or None.
        data_batch: A batch, or None.
        default: Keras' own ``_maybe_symbolic_build`` (bound), used when
            there is no iterator or no strategy.
    """
    strategy = model._distribute_strategy  # noqa: SLF001
    if iterator is None or strategy is None:
        default(iterator, data_batch)
        return
    for _, _, batches in iterator:
        data_batch = tf.nest.map_structure(
            lambda value: _first_local_value(strategy, value), next(batches)
        )
        break
    with strategy.scope():
        model._symbolic_build(data_batch=data_batch)  # noqa: SLF001


def in_multi_worker_mode() -> bool:
    """Whether the current strategy is a multi-worker one with > 1 worker."""
    strategy = tf.distribute.get_strategy()
    return isinstance(
        strategy, tf.distribute.MultiWorkerMirroredStrategy
    ) and strategy.extended._in_multi_worker_mode()  # noqa: SLF001


def multi_worker_logs(logs: dict) -> dict:
    """Gives scalar logs a length-1 axis under multi-worker training.

    Keras 3 (seen in 3.15) reduces step outputs of a multi-worker
    ``MultiWorkerMirroredStrategy`` with ``strategy.reduce("MEAN", v,
    axis=0)``, which fails on scalars; a length-1 axis reduces to the scalar.
    """
    if not in_multi_worker_mode():
        return logs
    return {
        name: tf.reshape(value, [1]) if value.shape.rank == 0 else value
        for name, value in logs.items()
    }
