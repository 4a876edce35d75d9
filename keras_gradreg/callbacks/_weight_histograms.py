"""WeightHistogramLogger: layer weight distributions (Fig. 3 of Yu et al.)."""

from __future__ import annotations

from typing import Optional, Sequence

import keras
import tensorflow as tf

from keras_gradreg.callbacks._summary import SummaryCallback
from keras_gradreg.model import GradRegModel


def _all_layers(model) -> list:
    """Leaf layers of ``model``, nested sub-models flattened, in order."""
    found = []
    for layer in getattr(model, "layers", []):
        if isinstance(layer, keras.Model) or isinstance(
            getattr(layer, "layers", None), list
        ):
            found.extend(_all_layers(layer))
        else:
            found.append(layer)
    return found


def _variable_name(layer, weight) -> str:
    """The weight's path below its layer, e.g. ``kernel``."""
    parts = weight.path.split("/")
    if layer.name in parts[:-1]:
        index = len(parts) - 1 - parts[::-1].index(layer.name)
        return "/".join(parts[index + 1:])
    return weight.name


class WeightHistogramLogger(SummaryCallback):
    """Logs histograms, means and standard deviations of layer weights.

    Writes, into the ``train`` run, for every floating-point variable of
    every chosen layer: the histogram ``weights/<layer>/<variable>`` (e.g.
    ``weights/conv1/kernel``) and the scalars
    ``weights/<layer>/<variable>/mean`` and ``.../std``. These show the
    "weight distribution squeezing" of Fig. 3 of Yu et al.

    Layers are looked up by name among the leaf layers of the model, with
    nested sub-models flattened; for a :class:`~keras_gradreg.GradRegModel`
    the search runs inside ``model.base``.

    Args:
        log_dir: TensorBoard log directory; summaries go to ``log_dir/train``.
        layers: Names of the layers to log; ``None`` logs every layer that
            has weights.
        every_n_steps: If set, also log every that many training steps, and
            use the global step as the summary step.

    Raises:
        TypeError: If ``layers`` is not ``None`` or a sequence of names.
        ValueError: For a bad ``every_n_steps``, or (when training starts)
            a layer name the model does not have.

    Example:
        >>> import keras, numpy as np, tempfile
        >>> model = keras.Sequential(
        ...     [keras.Input((4,)), keras.layers.Dense(3, name="fc2")])
        >>> model.compile("sgd", "mse")
        >>> logger = WeightHistogramLogger(tempfile.mkdtemp(), layers=["fc2"])
        >>> _ = model.fit(np.ones((4, 4)), np.ones((4, 3)), verbose=0,
        ...               callbacks=[logger])
        >>> logger.tags()
        ['weights/fc2/kernel', 'weights/fc2/bias']
    """

    def __init__(
        self,
        log_dir,
        layers: Optional[Sequence[str]] = None,
        every_n_steps: Optional[int] = None,
    ):
        super().__init__(log_dir, every_n_steps, run="train")
        if layers is not None:
            if isinstance(layers, str) or not all(
                isinstance(name, str) for name in layers
            ):
                raise TypeError(
                    "layers must be None or a list of layer names, got "
                    f"{layers!r}."
                )
            layers = list(layers)
        self.layers = layers
        self._variables = {}

    def set_model(self, model):
        super().set_model(model)
        self._variables = {}

    def _find_variables(self) -> dict:
        root = self.model.base if isinstance(self.model, GradRegModel) else (
            self.model
        )
        by_name = {layer.name: layer for layer in _all_layers(root)}
        if self.layers is None:
            chosen = [layer for layer in by_name.values() if layer.weights]
        else:
            missing = [name for name in self.layers if name not in by_name]
            if missing:
                raise ValueError(
                    f"WeightHistogramLogger: no layer named {missing} in the "
                    f"model. Its layers are {sorted(by_name)}."
                )
            chosen = [by_name[name] for name in self.layers]
        variables = {}
        for layer in chosen:
            for weight in layer.weights:
                if tf.as_dtype(weight.dtype).is_floating:
                    name = _variable_name(layer, weight)
                    variables[f"weights/{layer.name}/{name}"] = weight
        return variables

    def tags(self) -> list:
        """Returns the histogram tags written, in order (after training)."""
        return list(self._variables)

    def on_train_begin(self, logs=None):
        self._variables = self._find_variables()  # Fails before any writes.
        super().on_train_begin(logs)

    def _write(self, step: int) -> None:
        for tag, weight in self._variables.items():
            values = tf.convert_to_tensor(weight)
            tf.summary.histogram(tag, values, step=step)
            tf.summary.scalar(
                f"{tag}/mean", tf.reduce_mean(values), step=step
            )
            tf.summary.scalar(
                f"{tag}/std", tf.math.reduce_std(values), step=step
            )

