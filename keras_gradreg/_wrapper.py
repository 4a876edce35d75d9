"""The wrapper every keras-gradreg training model builds on.

``WrappedClassifier`` holds a user's classifier, recovers its pre-softmax
logits Z (the paper's Eq. 3 is defined on them), checks that the base and
the data are of a supported form (one input, one 2-D output of >= 2 class
scores, one label tensor), and builds through ``_keras_compat`` under every
distribution strategy. Numbers are checked with ``_checks``; the checks
here are of the base and the data, at trace time or in-graph.
"""

from __future__ import annotations

import inspect
import warnings
from typing import Callable

import keras
import tensorflow as tf

from keras_gradreg import _checks
from keras_gradreg import _keras_compat
from keras_gradreg import regularizers as regs
from keras_gradreg._checks._fit_data import input_shape_error
from keras_gradreg._logits import at_least_float32 as _at_least_float32
from keras_gradreg._logits import ends_in_softmax as _ends_in_softmax
from keras_gradreg._logits import pre_softmax_function as _logits_function

__all__ = ["WrappedClassifier"]


class _Untracked:
    """Holds a value (a function, statistics) without letting Keras track it
    as a sub-layer or a variable."""

    def __init__(self, value):
        self.value = value


def _replica_count() -> int:
    return tf.distribute.get_strategy().num_replicas_in_sync


_SUPPORTED = (
    "keras-gradreg models support one input tensor, one output of class "
    "scores shaped (batch, num_classes) with num_classes >= 2 (for a binary "
    "task use Dense(2) and integer labels 0/1), and labels as one tensor."
)


def _check_base(base: keras.Model) -> None:
    """Rejects bases with several inputs or outputs, or a single-logit head."""
    try:
        inputs, outputs = base.inputs, base.outputs
    except (AttributeError, ValueError):
        return  # subclassed or unbuilt: checked at the first step instead.
    if inputs is not None and len(inputs) > 1:
        raise ValueError(f"The base model has {len(inputs)} inputs. {_SUPPORTED}")
    if outputs is not None and len(outputs) > 1:
        raise ValueError(f"The base model has {len(outputs)} outputs. {_SUPPORTED}")
    if outputs and outputs[0].shape[-1] == 1:
        raise ValueError(f"The base model has a single-logit head. {_SUPPORTED}")


def _check_logits(logits) -> tf.Tensor:
    """The base's output at trace time: one 2-D tensor of >= 2 class scores."""
    if tf.nest.is_nested(logits):
        raise ValueError(f"The base model returned several outputs. {_SUPPORTED}")
    if logits.shape.rank != 2:
        raise ValueError(
            "The base model must output a 2-D batch of class scores "
            f"(batch, num_classes); got shape {logits.shape}. Add a "
            "Flatten/GlobalPooling and a Dense(num_classes) head."
        )
    if logits.shape[-1] == 1:
        raise ValueError(f"The base model has a single-logit head. {_SUPPORTED}")
    return logits


def _check_labels_structure(y) -> None:
    if y is None:
        raise ValueError("Training needs labels: fit(x, y) or a dataset of (x, y).")
    if tf.nest.is_nested(y):
        raise ValueError(f"Labels must be one tensor, got {type(y).__name__}. {_SUPPORTED}")


def _checked_labels(y, logits: tf.Tensor) -> tf.Tensor:
    """Sparse labels, checked in-graph: integer-valued, in range, one per example."""
    _check_labels_structure(y)
    labels = regs.sparse_labels(y, logits.shape[-1])  # checks the range
    same_batch = tf.debugging.assert_equal(
        tf.shape(labels)[0], tf.shape(logits)[0],
        message="There must be one label per input example.",
    )
    with tf.control_dependencies([same_batch]):
        return tf.identity(labels)


def _checked_sample_weight(sample_weight):
    """Sample weights, checked in-graph: finite and >= 0 (None stays None)."""
    if sample_weight is None:
        return None
    weights = tf.cast(sample_weight, tf.float32)
    valid = tf.reduce_all(tf.math.is_finite(weights) & (weights >= 0))
    check = tf.debugging.Assert(valid, [
        "sample_weight must hold finite weights >= 0; a batch holds NaN, "
        "an infinite or a negative weight."])
    with tf.control_dependencies([check]):
        return tf.identity(sample_weight)


def _arguments(method: Callable, args: tuple, kwargs: dict) -> dict:
    """The arguments of a call to ``method`` by name ({} if they do not
    bind: Keras then raises its own error)."""
    try:
        return inspect.signature(method).bind(None, *args, **kwargs).arguments
    except TypeError:
        return {}


def _after_label_checks(checks: tf.Tensor, y):
    """``y``, ordered after ``checks``: bad labels get our message first."""
    with tf.control_dependencies([checks]):
        return tf.nest.map_structure(tf.identity, y)


_PROBABILITY_LOSSES = (
    "sparse_categorical_crossentropy", "categorical_crossentropy",
    "binary_crossentropy", "SparseCategoricalCrossentropy",
    "CategoricalCrossentropy", "BinaryCrossentropy",
)


def _expects_probabilities(loss) -> bool:
    """Whether a compiled loss takes its predictions as probabilities."""
    if isinstance(loss, str):
        return loss in _PROBABILITY_LOSSES
    if getattr(loss, "from_logits", None) is False:
        return True
    return getattr(loss, "__name__", None) in _PROBABILITY_LOSSES


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
        _check_base(base)
        self.base = base
        self.output_softmax = _ends_in_softmax(base)
        if self.output_softmax:
            self._logits_fn = _Untracked(_logits_function(base))
        else:
            self._logits_fn = _Untracked(
                lambda x, training: base(x, training=training)
            )

    def _saved_seed_generator(self, name: str, seed) -> keras.random.SeedGenerator:
        """A ``SeedGenerator`` whose state is saved with the model's weights.

        Keras' ``save_weights`` (and so ``BackupAndRestore``) does not save
        a ``SeedGenerator``'s state; tracked as a variable of this model it
        is, and a resumed ``fit`` draws the numbers the uninterrupted run
        would have drawn.
        """
        generator = keras.random.SeedGenerator(seed)
        setattr(self, f"_{name}_state", generator.state)
        return generator

    def load_own_variables(self, store):
        """Loads ``c`` and the random states; a file saved without the
        random states (an older keras-gradreg) keeps the fresh ones."""
        _keras_compat.load_leading_own_variables(self, store)

    def _mark_built(self) -> None:
        """A wrapper around a built base is built (summary, weight loading)."""
        if self.base.built:
            self.built = True

    def logits(self, x, training: bool = False) -> tf.Tensor:
        """Returns the base's pre-softmax logits Z(x), at least float32."""
        return _at_least_float32(self._logits_fn.value(x, training))

    def call(self, inputs, training=None):
        return self._outputs(self._logits_fn.value(inputs, training))

    def _outputs(self, logits: tf.Tensor) -> tf.Tensor:
        if self.output_softmax:
            return keras.ops.softmax(logits, axis=-1)
        return logits

    def _check_compiled_loss(self) -> None:
        """Warns (at trace time) when a logits base gets a loss that expects
        probabilities (``from_logits=False``).

        Not a ``compile`` override: Keras skips compiling a loaded model
        whose class overrides ``compile``.
        """
        loss = getattr(self, "loss", None)
        if self.output_softmax or not _expects_probabilities(loss):
            return
        warnings.warn(
            f"{type(self).__name__}: the base model has no softmax at the end, "
            "so its outputs are taken as logits (for the penalty and the "
            "attacks), but the compiled loss expects probabilities "
            "(from_logits=False). Compile with e.g. keras.losses."
            "SparseCategoricalCrossentropy(from_logits=True); if the base "
            "does output probabilities, end it with keras.layers.Softmax() so "
            "that the penalty sees its logits.",
            stacklevel=2,
        )

    def _input_shape(self):
        """The base's input shape without the batch axis, when known."""
        try:
            inputs = self.base.inputs
        except (AttributeError, ValueError):
            return None
        if not inputs or inputs[0].shape is None:
            return None
        return tuple(inputs[0].shape[1:])

    def _num_classes(self):
        """The base's number of class scores, when known."""
        try:
            outputs = self.base.outputs
        except (AttributeError, ValueError):
            return None
        if not outputs or not outputs[0].shape:
            return None
        return outputs[0].shape[-1]

    def _check_arrays(self, what: str, x, y=None, sample_weight=None,
                      prefix: str = "") -> None:
        _checks.fit_arrays(
            what, x, y, sample_weight, input_shape=self._input_shape(),
            num_classes=self._num_classes(), prefix=prefix,
        )

    def fit(self, *args, **kwargs):
        """``keras.Model.fit``; NumPy data is checked first (see
        ``_checks.fit_arrays``): no examples, inputs shaped for another base,
        NaN or string labels and NaN or negative sample weights raise
        before any step runs, also in ``validation_data``."""
        given = _arguments(keras.Model.fit, args, kwargs)
        self._check_arrays("fit", given.get("x"), given.get("y"),
                           given.get("sample_weight"))
        validation = given.get("validation_data")
        if isinstance(validation, (tuple, list)) and validation:
            self._check_arrays("fit", *validation[:3],
                               prefix="validation_data: ")
        return super().fit(*args, **kwargs)

    def evaluate(self, *args, **kwargs):
        """``keras.Model.evaluate``; NumPy data is checked first, as in ``fit``."""
        given = _arguments(keras.Model.evaluate, args, kwargs)
        self._check_arrays("evaluate", given.get("x"), given.get("y"),
                           given.get("sample_weight"))
        return super().evaluate(*args, **kwargs)

    def predict(self, *args, **kwargs):
        """``keras.Model.predict``; NumPy inputs are checked first, as in ``fit``."""
        given = _arguments(keras.Model.predict, args, kwargs)
        self._check_arrays("predict", given.get("x"))
        return super().predict(*args, **kwargs)

    def _check_inputs(self, x) -> tf.Tensor:
        if tf.nest.is_nested(x):
            raise ValueError(
                f"Inputs must be one tensor, got {type(x).__name__}. {_SUPPORTED}"
            )
        x = tf.convert_to_tensor(x)
        if x.shape.rank is not None:  # a dataset's batches, at trace time
            message = input_shape_error(tuple(x.shape), self._input_shape())
            if message:
                raise ValueError(message)
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
        """Builds from one replica's batch (see ``_keras_compat``)."""
        _keras_compat.build_from_first_replica(
            self, iterator, data_batch, super()._maybe_symbolic_build
        )

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
