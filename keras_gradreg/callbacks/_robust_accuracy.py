"""RobustAccuracyCallback: robust accuracy on held-out data in ``logs``."""

from __future__ import annotations

from typing import Callable, Optional, Union

import tensorflow as tf

from keras_gradreg import _checks
from keras_gradreg import attacks
from keras_gradreg import evaluation
from keras_gradreg.callbacks._summary import WriterCallback


def _attack_name(attack: Callable) -> str:
    name = getattr(attack, "__name__", type(attack).__name__).lstrip("_")
    return name if name.isidentifier() else "custom"


def _resolve_attack(attack):
    """Returns ``(function, name)`` for an attack name or callable."""
    function = attacks.get(attack)
    return function, attack if isinstance(attack, str) else _attack_name(attack)


def _batched(data, batch_size: int) -> tf.data.Dataset:
    if isinstance(data, tf.data.Dataset):
        return data
    if isinstance(data, (tuple, list)) and len(data) == 2:
        return tf.data.Dataset.from_tensor_slices(tuple(data)).batch(batch_size)
    raise TypeError(
        "data must be a tuple (x, y) of arrays or a tf.data.Dataset of "
        f"(x, y) batches, got {type(data).__name__}."
    )


class RobustAccuracyCallback(WriterCallback):
    """Computes accuracy under an adversarial attack at each epoch end.

    At each epoch end, the held-out data is attacked and the fraction of
    adversarial examples the model still classifies correctly, as
    :func:`keras_gradreg.evaluation.robust_accuracy` computes it, is put into
    ``logs`` under ``val_robust_accuracy_<name>`` (``name`` defaults to
    the attack's name; see :attr:`log_key`), so ``History``,
    ``EarlyStopping(monitor=..., mode="max")`` and ``ModelCheckpoint`` see
    it. Place this callback before those in the ``callbacks`` list: Keras
    calls callbacks in list order. With ``log_dir`` it also writes the
    scalar ``robust_accuracy/<name>`` into ``log_dir/validation`` (step: the
    epoch); a
    ``keras.callbacks.TensorBoard`` placed after it logs the same value as
    ``epoch_robust_accuracy_<name>``.

    Args:
        data: Held-out data: a tuple ``(x, y)`` of arrays (split into batches
            of ``batch_size``), or a ``tf.data.Dataset`` of ``(x, y)``
            batches.
        attack: A name in :data:`keras_gradreg.attacks.ATTACKS` (default
            :data:`~keras_gradreg.attacks.EPOCH_ATTACK`, FGSM; each
            attack owns its defaults: BIM, C&W and PGD take 10 steps of
            ``2.5 * eps / steps``) or a callable ``attack(model, x, y, eps=eps, **kwargs) -> x_adv``
            (given numpy inputs and sparse labels). A callable's
            ``__name__`` names the log key (``"custom"`` for a lambda).
        eps: The attack's L-inf budget, ``>= 0``, in the input's units; 0
            gives clean accuracy.
        log_dir: Optional TensorBoard log directory.
        batch_size: Batch size when ``data`` is a tuple of arrays.
        name: Names the log key and tag in place of the attack's name, e.g.
            ``"fgsm_eps0.1"`` to tell apart callbacks of one attack at
            several ``eps``; a Python identifier-like string.
        **attack_kwargs: Forwarded to the attack (e.g. ``clip_min``,
            ``clip_max``, ``steps``).

    Raises:
        TypeError: For bad ``data`` or ``attack`` types, or an ``eps`` or
            ``batch_size`` that is not a number (also a ``ValueError``).
        ValueError: For an unknown attack name, a negative, NaN or infinite
            ``eps``, a ``batch_size`` below 1 or a bad ``name``.

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
        attack: Union[str, Callable] = attacks.EPOCH_ATTACK,
        *,
        eps: float,
        log_dir=None,
        batch_size: int = 256,
        name: Optional[str] = None,
        **attack_kwargs,
    ):
        eps = _checks.number("eps", eps, 0.0)
        batch_size = _checks.integer("batch_size", batch_size, 1)
        if name is not None and (
            not isinstance(name, str) or not name.replace(".", "_").isidentifier()
        ):
            raise ValueError(
                f"name must be a string of letters, digits, _ and ., got "
                f"{name!r}."
            )
        dataset = _batched(data, batch_size)
        attack, attack_name = _resolve_attack(attack)
        attack_name = name or attack_name
        super().__init__(log_dir, run="validation")
        self.dataset = dataset
        self.attack, self.attack_name = attack, attack_name
        self.eps = eps
        self.batch_size = batch_size
        self.attack_kwargs = attack_kwargs

    @property
    def log_key(self) -> str:
        """The key in ``logs``: ``val_robust_accuracy_<name>``."""
        return f"val_robust_accuracy_{self.attack_name}"

    def robust_accuracy(self) -> float:
        """Returns the model's accuracy on the attacked held-out data."""
        return evaluation.robust_accuracy(
            self.model, self.dataset, self.attack, self.eps,
            batch_size=self.batch_size, verbose=0, **self.attack_kwargs,
        )

    def on_epoch_end(self, epoch, logs=None):
        value = self.robust_accuracy()
        if logs is not None:
            logs[self.log_key] = value
        self._write_epoch_scalar(
            f"robust_accuracy/{self.attack_name}", value, epoch
        )
