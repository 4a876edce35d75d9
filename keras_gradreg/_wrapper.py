"""The wrapper every keras-gradreg training model builds on.

``WrappedClassifier`` holds a user's classifier, recovers its pre-softmax
logits Z (the paper's Eq. 3 is defined on them) and works around Keras 3
distribution quirks once for all wrappers.
"""

from __future__ import annotations

from typing import Callable

import keras
import tensorflow as tf

from keras_gradreg._logits import at_least_float32 as _at_least_float32
from keras_gradreg._logits import ends_in_softmax as _ends_in_softmax
from keras_gradreg._logits import pre_softmax_function as _logits_function

__all__ = ["WrappedClassifier"]


class _Untracked:
    """Holds a callable without letting Keras track it as a sub-layer."""

    def __init__(self, function: Callable):
        self.function = function


def _first_local_value(strategy, value):
    if isinstance(value, tf.distribute.DistributedValues):
        return strategy.experimental_local_results(value)[0]
    return value


def _multi_worker_logs(logs: dict) -> dict:
    """Gives scalar logs a length-1 axis under multi-worker training.

    Keras 3 (seen in 3.15) reduces step outputs of a multi-worker
    ``MultiWorkerMirroredStrategy`` with ``strategy.reduce("MEAN", v,
    axis=0)``, which fails on scalars; a length-1 axis reduces to the scalar.
    """
    strategy = tf.distribute.get_strategy()
    multi_worker = isinstance(
        strategy, tf.distribute.MultiWorkerMirroredStrategy
    ) and strategy.extended._in_multi_worker_mode()  # noqa: SLF001
    if not multi_worker:
        return logs
    return {
        name: tf.reshape(value, [1]) if value.shape.rank == 0 else value
        for name, value in logs.items()
    }


def _replica_count() -> int:
    return tf.distribute.get_strategy().num_replicas_in_sync


class WrappedClassifier(keras.Model):
    """Base of the models that wrap a user's classifier (not exported).

    Holds ``base``, recovers its pre-softmax logits (see ``GradRegModel``),
    and returns the base's own outputs from ``call``. Attacks use
    ``logits``.
    """

    def __init__(self, base: keras.Model, **kwargs):
        super().__init__(**kwargs)
        if not isinstance(base, keras.layers.Layer):
            raise TypeError(
                f"base must be a Keras model, got {type(base).__name__}."
            )
        self.base = base
        self.output_softmax = _ends_in_softmax(base)
        if self.output_softmax:
            self._logits_fn = _Untracked(_logits_function(base))
        else:
            self._logits_fn = _Untracked(
                lambda x, training: base(x, training=training)
            )

    def _mark_built(self) -> None:
        """A wrapper around a built base is built (summary, weight loading)."""
        if self.base.built:
            self.built = True

    def logits(self, x, training: bool = False) -> tf.Tensor:
        """Returns the base's pre-softmax logits Z(x), at least float32."""
        return _at_least_float32(self._logits_fn.function(x, training))

    def call(self, inputs, training=None):
        return self._outputs(self._logits_fn.function(inputs, training))

    def _outputs(self, logits: tf.Tensor) -> tf.Tensor:
        if self.output_softmax:
            return keras.ops.softmax(logits, axis=-1)
        return logits

    def _check_inputs(self, x) -> tf.Tensor:
        x = tf.convert_to_tensor(x)
        if not x.dtype.is_floating:
            raise TypeError(
                f"{type(self).__name__} needs floating-point inputs to "
                f"differentiate through them, got {x.dtype}. Cast them "
                "first, e.g. x = tf.cast(x, tf.float32) / 255."
            )
        return tf.debugging.assert_all_finite(
            x, f"{type(self).__name__} inputs contain NaN or Inf values."
        )

    def _maybe_symbolic_build(self, iterator=None, data_batch=None):
        """Builds from one replica's batch instead of a cross-replica mean.

        Keras 3 (seen in 3.15) averages the first distributed batch with
        ``strategy.reduce`` before building, which fails eagerly under
        ``MultiWorkerMirroredStrategy`` (a PerReplica cannot become a
        tensor). Taking the first local replica's batch builds the same
        shapes and works under every strategy.
        """
        strategy = self._distribute_strategy
        if iterator is None or strategy is None:
            return super()._maybe_symbolic_build(iterator, data_batch)
        for _, _, batches in iterator:
            data_batch = tf.nest.map_structure(
                lambda value: _first_local_value(strategy, value),
                next(batches),
            )
            break
        with strategy.scope():
            self._symbolic_build(data_batch=data_batch)

    def get_config(self):
        config = super().get_config()
        config["base"] = keras.saving.serialize_keras_object(self.base)
        return config

    @classmethod
    def from_config(cls, config, custom_objects=None):
        config = dict(config)
        config["base"] = keras.saving.deserialize_keras_object(
            config["base"], custom_objects=custom_objects
        )
        return cls(**config)
