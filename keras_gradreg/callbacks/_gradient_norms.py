"""GradientNormLogger: norms of dReg/dx on a probe batch (Fig. 2 of Yu et al.)."""

from __future__ import annotations

from typing import Callable, Optional, Union

import tensorflow as tf

from keras_gradreg import _checks
from keras_gradreg import _logits
from keras_gradreg import regularizers as regs
from keras_gradreg.callbacks._summary import SummaryCallback
from keras_gradreg.model import GradRegModel


def _check_probe(probe):
    if not isinstance(probe, (tuple, list)) or len(probe) != 2:
        raise TypeError(
            "probe must be a tuple (x, y) holding one fixed batch of inputs "
            f"and labels, got {type(probe).__name__}."
        )
    x = _checks.inputs(probe[0], name="probe[0]")
    y = _checks.labels(probe[1], batch=int(x.shape[0]), name="probe[1]")
    return x, tf.convert_to_tensor(y)


def _linf(gradients: tf.Tensor) -> tf.Tensor:
    flat = tf.reshape(gradients, [tf.shape(gradients)[0], -1])
    return tf.reduce_max(tf.abs(flat), axis=-1)


class GradientNormLogger(SummaryCallback):
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
    be watched the same way. Reg is taken on the logits: those of a
    wrapper (e.g. ``AdversarialTrainingModel``), the pre-softmax logits of a
    functional or Sequential model ending in a softmax, else the outputs. The latest
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
        ValueError: For probe inputs with NaN or inf, probe labels that are
            not class indices or not one per input, a bad ``every_n_steps``,
            ``run`` or regularizer.

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
        logits_fn = _logits.logits_function(model)
        if isinstance(model, GradRegModel):
            norm = model.norm
            if self.regularizer is None:
                gradients_fn = model.input_gradients
            else:
                gradients_fn = lambda x, y: regs.input_gradients(  # noqa: E731
                    logits_fn, x, y, self.regularizer
                )
        else:
            norm = regs.squared_l2
            regularizer = self.regularizer or regs.logit_margin
            gradients_fn = lambda x, y: regs.input_gradients(  # noqa: E731
                logits_fn, x, y, regularizer
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

