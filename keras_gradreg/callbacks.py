"""Keras callbacks that watch input gradients, weights and robustness.

What Fig. 2 and Fig. 3 of Yu et al. plot, logged while a model trains:

* :class:`GradientNormLogger`: the mean per-example L1, L2 and L-inf norms of
  dReg/dx on a fixed probe batch, and the model's gradient loss (Fig. 2).
* :class:`WeightHistogramLogger`: weight histograms, means and standard
  deviations of chosen layers (Fig. 3, "weight distribution squeezing").
* :class:`RobustAccuracyCallback`: accuracy under an attack on held-out data,
  put into ``logs`` so that ``EarlyStopping`` and ``ModelCheckpoint`` can
  monitor it.
* :class:`PenaltySchedule`: changes a ``GradRegModel``'s penalty weight ``c``
  from epoch to epoch, as ``LearningRateScheduler`` changes the learning rate.

The callbacks write TensorBoard summaries under ``log_dir/train`` and
``log_dir/validation``, the runs ``keras.callbacks.TensorBoard`` writes, so
one TensorBoard shows them together with Keras' own curves. Each summary's
step is the (0-based) epoch, or the optimizer's global step when
``every_n_steps`` is set.
"""

from __future__ import annotations

import os
from typing import Callable, Optional, Sequence, Union

import keras
import numpy as np
import tensorflow as tf

from keras_gradreg import regularizers as regs
from keras_gradreg.model import GradRegModel

__all__ = [
    "GradientNormLogger",
    "WeightHistogramLogger",
    "RobustAccuracyCallback",
    "PenaltySchedule",
]

_RUNS = ("train", "validation")


def _check_every_n_steps(every_n_steps) -> Optional[int]:
    if every_n_steps is None:
        return None
    if (
        isinstance(every_n_steps, bool)
        or not isinstance(every_n_steps, (int, np.integer))
        or every_n_steps < 1
    ):
        raise ValueError(
            f"every_n_steps must be None or an integer >= 1, got "
            f"{every_n_steps!r}."
        )
    return int(every_n_steps)


def _check_log_dir(log_dir) -> str:
    if not isinstance(log_dir, (str, os.PathLike)) or not str(log_dir):
        raise TypeError(f"log_dir must be a non-empty path, got {log_dir!r}.")
    return os.fspath(log_dir)


class _SummaryCallback(keras.callbacks.Callback):
    """Writes summaries into ``log_dir/<run>`` at epoch ends or every n steps.

    Subclasses implement ``_write(step)``, called inside the writer's default
    context. With ``every_n_steps`` the step is the global training step (the
    optimizer's iteration count) at every point, including the epoch ends, so
    that one tag never mixes epochs and steps on its x axis.
    """

    def __init__(self, log_dir, every_n_steps=None, run: str = "train"):
        super().__init__()
        if run not in _RUNS:
            raise ValueError(f"run must be one of {_RUNS}, got {run!r}.")
        self.log_dir = _check_log_dir(log_dir)
        self.every_n_steps = _check_every_n_steps(every_n_steps)
        self.run = run
        self._writer = None
        self._global_step = 0
        self._last_logged_step = None

    def _write(self, step: int) -> None:
        raise NotImplementedError

    def _log(self, step: int) -> None:
        with self._writer.as_default(step=step):
            self._write(step)
        self._writer.flush()
        self._last_logged_step = step

    def on_train_begin(self, logs=None):
        self._writer = tf.summary.create_file_writer(
            os.path.join(self.log_dir, self.run)
        )
        optimizer = getattr(self.model, "optimizer", None)
        iterations = getattr(optimizer, "iterations", None)
        self._global_step = 0 if iterations is None else int(iterations)
        self._last_logged_step = None

    def on_train_batch_end(self, batch, logs=None):
        self._global_step += 1
        if self.every_n_steps and self._global_step % self.every_n_steps == 0:
            self._log(self._global_step)

    def on_epoch_end(self, epoch, logs=None):
        step = self._global_step if self.every_n_steps else epoch
        if step != self._last_logged_step:
            self._log(step)

    def on_train_end(self, logs=None):
        if self._writer is not None:
            self._writer.close()
            self._writer = None


def _check_probe(probe):
    if not isinstance(probe, (tuple, list)) or len(probe) != 2:
        raise TypeError(
            "probe must be a tuple (x, y) holding one fixed batch of inputs "
            f"and labels, got {type(probe).__name__}."
        )
    x = tf.convert_to_tensor(probe[0])
    if not x.dtype.is_floating:
        raise TypeError(
            f"The probe inputs must be floating point, got {x.dtype}. Cast "
            "them, e.g. x = x.astype('float32') / 255."
        )
    y = regs.sparse_labels(probe[1])
    if x.shape[0] is not None and y.shape[0] != x.shape[0]:
        raise ValueError(
            f"The probe has {x.shape[0]} inputs but {y.shape[0]} labels."
        )
    return x, y


def _linf(gradients: tf.Tensor) -> tf.Tensor:
    flat = tf.reshape(gradients, [tf.shape(gradients)[0], -1])
    return tf.reduce_max(tf.abs(flat), axis=-1)


class GradientNormLogger(_SummaryCallback):
    """Logs norms of the input gradient dReg/dx on a fixed probe batch.

    At each epoch end (and every ``every_n_steps`` training steps when set)
    it computes, in a compiled ``tf.function``, the gradient of the
    regularizer Reg(x) with respect to the probe inputs, and writes the
    TensorBoard scalars

    * ``input_gradient/l1``, ``input_gradient/l2``, ``input_gradient/linf``:
      the mean over the probe's examples of each per-example norm;
    * ``input_gradient/grad_loss``: the model's gradient loss on the probe,
      i.e. the batch mean of ``model.norm(dReg/dx)`` for a
      :class:`~keras_gradreg.GradRegModel` and of the squared L2 norm (the
      paper's "l2 loss of gradients", Fig. 2) for any other model.

    Reg is the model's own regularizer for a ``GradRegModel``, and the logit
    margin (Eq. 3) for a plain Keras model, so a naturally trained model can
    be watched the same way. A plain model must return logits. The latest
    values are also kept in :attr:`latest` (a dict of floats).

    Args:
        log_dir: TensorBoard log directory; summaries go to ``log_dir/<run>``.
        probe: A tuple ``(x, y)``: one fixed batch of float inputs and their
            labels (sparse or one-hot).
        regularizer: ``None`` (the model's regularizer, or ``"logit_margin"``
            for a plain model), a regularizer name, or a callable
            ``(logits, labels) -> per-example values``.
        every_n_steps: If set, also log every that many training steps, and
            use the global step as the summary step.
        run: ``"train"`` (default) or ``"validation"``: the TensorBoard run to
            write into; use ``"validation"`` for a held-out probe.

    Raises:
        TypeError: For a probe that is not ``(x, y)`` or has integer inputs.
        ValueError: For a bad ``every_n_steps``, ``run`` or regularizer.

    Example:
        >>> import keras, numpy as np, tempfile
        >>> model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3)])
        >>> model.compile("sgd", keras.losses.SparseCategoricalCrossentropy(
        ...     from_logits=True))
        >>> x, y = np.ones((8, 4), "float32"), np.zeros(8, "int32")
        >>> logger = GradientNormLogger(tempfile.mkdtemp(), probe=(x, y))
        >>> _ = model.fit(x, y, epochs=2, verbose=0, callbacks=[logger])
        >>> sorted(logger.latest)
        ['grad_loss', 'l1', 'l2', 'linf']
    """

    def __init__(
        self,
        log_dir,
        probe,
        regularizer: Union[str, Callable, None] = None,
        every_n_steps: Optional[int] = None,
        *,
        run: str = "train",
    ):
        super().__init__(log_dir, every_n_steps, run)
        self.probe_x, self.probe_y = _check_probe(probe)
        self.regularizer = (
            None if regularizer is None else regs.get_regularizer(regularizer)
        )
        self.latest = {}
        self._norms_fn = None

    def set_model(self, model):
        super().set_model(model)
        self._norms_fn = tf.function(self._build_norms_fn(model))

    def _build_norms_fn(self, model) -> Callable:
        if isinstance(model, GradRegModel):
            norm = model.norm
            if self.regularizer is None:
                gradients_fn = model.input_gradients
            else:
                gradients_fn = lambda x, y: regs.input_gradients(  # noqa: E731
                    lambda inputs: model.logits(inputs, training=False),
                    x, y, self.regularizer,
                )
        else:
            norm = regs.squared_l2
            regularizer = self.regularizer or regs.logit_margin
            gradients_fn = lambda x, y: regs.input_gradients(  # noqa: E731
                lambda inputs: model(inputs, training=False), x, y, regularizer
            )

        def norms(x, y):
            gradients = tf.cast(gradients_fn(x, y), tf.float32)
            return {
                "l1": tf.reduce_mean(regs.l1(gradients)),
                "l2": tf.reduce_mean(regs.l2(gradients)),
                "linf": tf.reduce_mean(_linf(gradients)),
                "grad_loss": tf.reduce_mean(
                    tf.cast(norm(gradients), tf.float32)
                ),
            }

        return norms

    def _write(self, step: int) -> None:
        values = self._norms_fn(self.probe_x, self.probe_y)
        self.latest = {name: float(value) for name, value in values.items()}
        for name, value in self.latest.items():
            tf.summary.scalar(f"input_gradient/{name}", value, step=step)


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


class WeightHistogramLogger(_SummaryCallback):
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


def _attack_name(attack: Callable) -> str:
    name = getattr(attack, "__name__", type(attack).__name__).lstrip("_")
    return name if name.isidentifier() else "custom"


def _resolve_attack(attack):
    """Returns ``(function, name)`` for an attack name or callable."""
    if callable(attack):
        return attack, _attack_name(attack)
    if not isinstance(attack, str):
        raise TypeError(
            "attack must be a name in keras_gradreg.attacks (e.g. 'fgsm') or "
            f"a callable (model, x, y, eps, **kwargs) -> x_adv, got {attack!r}."
        )
    try:
        from keras_gradreg import attacks  # Lazy: attacks sits above us.
    except ImportError as error:
        raise ImportError(
            f"attack={attack!r} needs keras_gradreg.attacks, which cannot be "
            "imported. Pass a callable (model, x, y, eps, **kwargs) -> x_adv "
            "instead."
        ) from error
    public = getattr(
        attacks, "__all__", [n for n in dir(attacks) if not n.startswith("_")]
    )
    function = getattr(attacks, attack, None)
    if attack not in public or not callable(function):
        raise ValueError(
            f"Unknown attack {attack!r}. Use one of {sorted(public)} or a "
            "callable (model, x, y, eps, **kwargs) -> x_adv."
        )
    return function, attack


def _batched(data, batch_size: int) -> tf.data.Dataset:
    if isinstance(data, tf.data.Dataset):
        return data
    if isinstance(data, (tuple, list)) and len(data) == 2:
        return tf.data.Dataset.from_tensor_slices(tuple(data)).batch(batch_size)
    raise TypeError(
        "data must be a tuple (x, y) of arrays or a tf.data.Dataset of "
        f"(x, y) batches, got {type(data).__name__}."
    )


class RobustAccuracyCallback(keras.callbacks.Callback):
    """Computes accuracy under an adversarial attack at each epoch end.

    At each epoch end, every held-out batch is attacked with
    ``attack(model, x, y, eps, **attack_kwargs)`` and the fraction of
    adversarial examples the model still classifies correctly is put into
    ``logs`` under ``val_robust_accuracy_<attack name>`` (see
    :attr:`log_key`), so ``History``, ``EarlyStopping(monitor=...,
    mode="max")`` and ``ModelCheckpoint`` see it. Place this callback before
    those in the ``callbacks`` list: Keras calls callbacks in list order.
    With ``log_dir`` it also writes the scalar ``robust_accuracy/<attack
    name>`` into ``log_dir/validation`` (step: the epoch); a
    ``keras.callbacks.TensorBoard`` placed after it logs the same value as
    ``epoch_robust_accuracy_<attack name>``.

    Args:
        data: Held-out data: a tuple ``(x, y)`` of arrays (split into batches
            of ``batch_size``), or a ``tf.data.Dataset`` of ``(x, y)``
            batches.
        attack: A function name in ``keras_gradreg.attacks`` (``"fgsm"``,
            ``"bim"``, ``"pgd"``, ...; imported when the callback is made) or
            a callable ``(model, x, y, eps, **kwargs) -> x_adv``. A callable's
            ``__name__`` names the log key (``"custom"`` for a lambda).
        eps: The attack's L-inf budget, ``>= 0``, in the input's units.
        log_dir: Optional TensorBoard log directory.
        batch_size: Batch size when ``data`` is a tuple of arrays.
        **attack_kwargs: Forwarded to the attack (e.g. ``clip_min``,
            ``clip_max``, ``nb_iter``).

    Raises:
        TypeError: For bad ``data`` or ``attack`` types.
        ValueError: For an unknown attack name, a negative ``eps`` or a bad
            ``batch_size``.
        ImportError: For an attack name when ``keras_gradreg.attacks`` is
            missing.

    Example:
        >>> import keras, numpy as np
        >>> def noise(model, x, y, eps):
        ...     return x + eps
        >>> model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3)])
        >>> model.compile("sgd", keras.losses.SparseCategoricalCrossentropy(
        ...     from_logits=True))
        >>> x, y = np.ones((8, 4), "float32"), np.zeros(8, "int32")
        >>> callback = RobustAccuracyCallback((x, y), attack=noise, eps=0.1)
        >>> history = model.fit(x, y, verbose=0, callbacks=[callback])
        >>> callback.log_key in history.history
        True
    """

    def __init__(
        self,
        data,
        attack: Union[str, Callable] = "fgsm",
        *,
        eps: float,
        log_dir=None,
        batch_size: int = 256,
        **attack_kwargs,
    ):
        super().__init__()
        if isinstance(eps, bool) or not isinstance(eps, (int, float)) or (
            eps < 0
        ):
            raise ValueError(f"eps must be a number >= 0, got {eps!r}.")
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or (
            batch_size < 1
        ):
            raise ValueError(
                f"batch_size must be an int >= 1, got {batch_size!r}."
            )
        self.dataset = _batched(data, batch_size)
        self.attack, self.attack_name = _resolve_attack(attack)
        self.eps = float(eps)
        self.log_dir = None if log_dir is None else _check_log_dir(log_dir)
        self.attack_kwargs = attack_kwargs
        self._writer = None
        self._count_correct = None

    def set_model(self, model):
        super().set_model(model)
        self._count_correct = tf.function(self._correct, reduce_retracing=True)

    @property
    def log_key(self) -> str:
        """The key in ``logs``: ``val_robust_accuracy_<attack name>``."""
        return f"val_robust_accuracy_{self.attack_name}"

    def _correct(self, x_adv, y):
        logits = self.model(x_adv, training=False)
        labels = regs.sparse_labels(y, logits.shape[-1])
        predicted = tf.argmax(logits, axis=-1, output_type=tf.int32)
        return tf.reduce_sum(tf.cast(tf.equal(predicted, labels), tf.int64))

    def robust_accuracy(self) -> float:
        """Returns the model's accuracy on the attacked held-out data."""
        correct, total = 0, 0
        for batch in self.dataset:
            x, y, _ = keras.utils.unpack_x_y_sample_weight(batch)
            x = tf.convert_to_tensor(x)
            x_adv = self.attack(
                self.model, x, y, self.eps, **self.attack_kwargs
            )
            correct += int(self._count_correct(tf.convert_to_tensor(x_adv), y))
            total += int(tf.shape(x)[0])
        if total == 0:
            raise ValueError(
                "RobustAccuracyCallback: the held-out data is empty."
            )
        return correct / total

    def on_train_begin(self, logs=None):
        if self.log_dir is not None:
            self._writer = tf.summary.create_file_writer(
                os.path.join(self.log_dir, "validation")
            )

    def on_epoch_end(self, epoch, logs=None):
        value = self.robust_accuracy()
        if logs is not None:
            logs[self.log_key] = value
        if self._writer is not None:
            with self._writer.as_default():
                tf.summary.scalar(
                    f"robust_accuracy/{self.attack_name}", value, step=epoch
                )
            self._writer.flush()

    def on_train_end(self, logs=None):
        if self._writer is not None:
            self._writer.close()
            self._writer = None


def _scheduled_c(value, epoch: int) -> float:
    """Returns a schedule's output as a float after checking it."""
    message = (
        f"PenaltySchedule: schedule({epoch}, c) returned {value!r}; it must "
        "return a finite number >= 0."
    )
    if isinstance(value, (bool, np.bool_, str, bytes)) or np.ndim(value) != 0:
        raise ValueError(message)
    try:
        c = float(value)
    except (TypeError, ValueError) as error:
        raise ValueError(message) from error
    if not 0 <= c < float("inf"):
        raise ValueError(message)
    return c


class PenaltySchedule(keras.callbacks.Callback):
    """Sets a ``GradRegModel``'s penalty weight ``c`` at each epoch's start.

    The counterpart of ``keras.callbacks.LearningRateScheduler`` for the
    ``c`` of Eq. (2) of Yu et al.: at the beginning of every epoch it calls
    ``schedule(epoch, c)`` with the 0-based epoch and the current ``c`` and
    assigns the result to ``model.c``. ``c`` lives in a non-trainable
    variable read by the compiled train step, so a new value takes effect
    at once, without retracing. The value used in each epoch is put into
    ``logs`` under ``"c"`` (so ``History`` and a later
    ``keras.callbacks.TensorBoard`` see it) and, with ``log_dir``, written
    as the TensorBoard scalar ``c`` into ``log_dir/train`` (step: the
    epoch). Saving the model keeps the current ``c``.

    Args:
        schedule: A function ``(epoch: int, c: float) -> float`` returning
            the new ``c``, a finite number ``>= 0``.
        log_dir: Optional TensorBoard log directory.
        verbose: 0 is silent; 1 prints the new ``c`` at each epoch's start.

    Raises:
        TypeError: If ``schedule`` is not callable, or (when training
            starts) the model is not a :class:`~keras_gradreg.GradRegModel`.
        ValueError: If ``schedule`` returns something other than a finite
            number ``>= 0``.

    Example:
        >>> import keras, numpy as np
        >>> base = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3)])
        >>> model = GradRegModel(base, c=0.0)
        >>> model.compile("sgd", keras.losses.SparseCategoricalCrossentropy(
        ...     from_logits=True))
        >>> warm_up = PenaltySchedule(lambda epoch, c: min(0.1 * epoch, 0.2))
        >>> history = model.fit(np.ones((8, 4), "float32"), np.zeros(8),
        ...                     epochs=4, verbose=0, callbacks=[warm_up])
        >>> [round(c, 2) for c in history.history["c"]]
        [0.0, 0.1, 0.2, 0.2]
    """

    def __init__(
        self,
        schedule: Callable[[int, float], float],
        log_dir=None,
        verbose: int = 0,
    ):
        super().__init__()
        if not callable(schedule):
            raise TypeError(
                "schedule must be a function (epoch, c) -> c, got "
                f"{schedule!r}."
            )
        self.schedule = schedule
        self.log_dir = None if log_dir is None else _check_log_dir(log_dir)
        self.verbose = verbose
        self._writer = None

    def on_train_begin(self, logs=None):
        if not isinstance(self.model, GradRegModel):
            raise TypeError(
                "PenaltySchedule needs a keras_gradreg.GradRegModel (it sets "
                f"the model's c), got {type(self.model).__name__}. Wrap the "
                "model: GradRegModel(model, c=...)."
            )
        if self.log_dir is not None:
            self._writer = tf.summary.create_file_writer(
                os.path.join(self.log_dir, "train")
            )

    def on_epoch_begin(self, epoch, logs=None):
        c = _scheduled_c(self.schedule(epoch, self.model.c), epoch)
        self.model.c = c
        if self.verbose:
            print(f"\nEpoch {epoch + 1}: PenaltySchedule setting c to {c:g}.")

    def on_epoch_end(self, epoch, logs=None):
        c = self.model.c
        if logs is not None:
            logs["c"] = c
        if self._writer is not None:
            with self._writer.as_default():
                tf.summary.scalar("c", c, step=epoch)
            self._writer.flush()

    def on_train_end(self, logs=None):
        if self._writer is not None:
            self._writer.close()
            self._writer = None

