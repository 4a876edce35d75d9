"""GradRegModel: training with a penalty on the input gradient of Reg(x).

Implements Eq. (2)-(4) of Yu et al., "Towards Robust Training of Neural
Networks by Regularizing Adversarial Gradients":

    L = CE(x, t) + c * L_norm(dReg(x)/dx)

The penalty's weight gradient needs second derivatives; ``train_step`` gets
them by double backpropagation with nested ``tf.GradientTape``s. The
penalty's forward pass and norms are in ``_penalty.py``, the checks of the
settings and their config entries in ``_gradreg_settings.py``.
"""

from __future__ import annotations

from typing import Callable, Union

import keras
import tensorflow as tf

from keras_gradreg import _checks
from keras_gradreg import _collapse_guard
from keras_gradreg import _gradreg_settings
from keras_gradreg import _keras_compat
from keras_gradreg import _penalty
from keras_gradreg import _step_checks
from keras_gradreg import regularizers as regs
from keras_gradreg._wrapper import WrappedClassifier
from keras_gradreg._wrapper import _after_label_checks
from keras_gradreg._wrapper import _check_logits
from keras_gradreg._wrapper import _checked_labels
from keras_gradreg._wrapper import _checked_sample_weight
from keras_gradreg._wrapper import _replica_count
from keras_gradreg._wrapper import _Untracked

__all__ = ["GradRegModel"]


@keras.saving.register_keras_serializable(package="keras_gradreg")
class GradRegModel(WrappedClassifier):
    """Wraps a classifier and trains it with an input-gradient penalty.

    The training loss is the compiled loss plus ``c`` times the batch mean of
    ``norm(dReg/dx)``, where Reg is ``regularizer`` applied to the base's
    logits Z (Eq. 2-4 of Yu et al.). Its weight gradient is computed by double
    backpropagation: an inner ``GradientTape`` gives dReg/dx, and the outer
    tape differentiates the penalty built from it. One forward pass per step
    feeds both the compiled loss and the penalty.

    If the base ends in a softmax (a ``Softmax`` layer, an
    ``Activation("softmax")`` layer, or a ``Dense`` layer with a softmax
    activation), the penalty uses its pre-softmax logits, the paper's Z; the
    wrapper's outputs (and so the compiled loss and metrics) stay the base's
    probabilities. For a base that returns logits, compile with
    ``from_logits=True``.

    Logged metrics: ``loss`` is the total loss (compiled loss + c * penalty);
    ``grad_loss`` is the penalty before multiplication by ``c``; both are
    reported by ``fit`` and ``evaluate``.

    ``c = 0`` costs what plain training costs: the step puts the penalty
    (the input gradient, its norm and, through the outer tape, the
    second-order pass) in a ``tf.cond`` branch that runs only when
    ``c > 0``, also when a ``callbacks.PenaltySchedule`` changes ``c``
    between epochs without retracing. While ``c`` is 0 the penalty is
    neither trained nor measured, by ``fit`` and ``evaluate`` alike:
    ``grad_loss`` and ``val_grad_loss`` both read 0 (so the two never
    disagree, and evaluation at ``c = 0`` costs a plain forward pass).
    To measure the input gradients of a model trained without the penalty
    (e.g. plain N-FGSM), use ``callbacks.GradientNormLogger`` or
    ``input_gradients``.

    Each step checks that its loss and weight gradients are finite before
    the optimizer applies them: a NaN or infinite step (a ``c`` so large
    that ``c * grad_loss`` or its gradient overflows float32, a too-high
    learning rate) stops ``fit`` with an error naming ``c``, and the
    weights stay as they were. A custom ``regularizer`` must return one
    value per example, shaped ``(batch,)``; any other shape is an error.

    ``fit`` adds a collapse guard: an epoch that ends with the training
    accuracy at chance (at most ``1/num_classes + 0.05``) while the penalty
    is near zero (``<= 1e-3``) or dominates the loss gets a warning naming
    ``c``. A too-large ``c`` (or softplus with ``c`` 0.03 on MNIST) can
    flatten the network into a constant; lower ``c``, warm it up, or use a
    smooth activation (``models.mnist_cnn(activation="gelu")``).

    Resuming: ``keras.callbacks.BackupAndRestore(folder)`` with
    ``save_freq="epoch"`` (its default) resumes an interrupted ``fit``, also
    in a fresh process, to the weights of the uninterrupted run (to float
    tolerance), when both runs call ``keras.utils.set_random_seed`` and
    ``tf.config.experimental.enable_op_determinism()`` first: the random
    state of ``penalty_fraction`` (and of ``AdversarialTrainingModel``'s
    random starts) is saved with the weights. Measured with Keras 3.15,
    ``shuffle=True`` on NumPy arrays resumes exactly too; an integer
    ``save_freq`` does not, for Keras' own models either (Keras restarts the
    epoch of the last save from its first batch: 0.024 max weight difference
    for a plain ``Sequential``), nor does a base with ``Dropout`` or other
    random layers (Keras saves no layer's seed state).

    Args:
        base: A Keras classifier mapping inputs to class scores of shape
            ``(batch, num_classes)``.
        c: Penalty weight, ``>= 0``. ``c = 0`` is plain training.
        regularizer: ``"logit_margin"`` (Eq. 3, the paper's Logit-reg),
            ``"cross_entropy"`` (Xent-reg, Ross & Doshi-Velez 2017) or a
            callable ``(logits, labels) -> per-example values`` receiving
            float32 logits and int32 labels shaped ``(batch,)``. Register a
            callable with ``keras.saving.register_keras_serializable`` to save
            the model: saving a lambda or an unregistered function warns
            that ``load_model`` will not find it.
        norm: ``"squared_l2"`` (default; the paper's "l2 loss of gradients"),
            ``"l2"``, ``"l1"`` or ``"linf"``. Pick the dual of the threat
            model: to first order an eps perturbation in norm p changes Reg
            by at most ``eps * ||dReg/dx||_q`` with q the dual norm, so
            ``"l1"`` pairs with L-inf attacks, ``"l2"`` with L2 and
            ``"linf"`` with L1. On MNIST it gave the more robust model
            (worst case over attacks at eps 0.2: 53% against 34% for
            squared_l2, docs/RESULTS.md); its c is on another scale (0.03
            there against 0.1), so sweep it again.
        method: ``"double_backprop"`` (default, exact: nested tapes) or
            ``"finite_difference"``: Finlay & Oberman (2019)'s approximation,
            ``q = (Reg(x + h d) - Reg(x)) / h`` along the detached unit
            gradient direction ``d``, penalized as ``q**2`` (squared_l2) or
            ``|q|`` (l2, l1). It needs no second derivatives but a second
            forward pass (dropout draws a second mask; BatchNormalization
            updates its moving statistics twice per step).
        fd_step: The finite-difference step ``h`` in input units (e.g. 0.01
            for pixels in [0, 1], about 1 for pixels in [0, 255]), finite
            and ``> 0``.
        penalty_fraction: The fraction of each training batch that gets the
            penalty, in ``(0, 1]`` (default 1: all). Below 1, a random
            ``ceil(fraction * batch)`` examples are penalized (their mean
            penalty estimates the batch's) and the base runs on them and on
            the rest as two calls, so the penalty's backward and
            second-order passes cover only that part. Each example is still
            forwarded once, but a BatchNormalization layer then normalizes
            the two parts with their own statistics and updates its moving
            averages twice. ``evaluate`` always penalizes every example.
        **kwargs: Forwarded to ``keras.Model`` (e.g. ``name``).

    Numbers may be Python or NumPy scalars. Set ``c`` through ``model.c``
    (checked); ``model.c_variable`` is the variable behind it, and a value
    assigned to it directly is checked in the train step.

    Supported: one input tensor, one output of class scores shaped
    ``(batch, num_classes)`` with ``num_classes >= 2`` (a binary task uses
    ``Dense(2)``), labels as one tensor (integer-valued, or one-hot).

    Raises:
        ValueError: For a negative or non-finite ``c`` or ``fd_step``, a
            ``penalty_fraction`` outside ``(0, 1]``, an unknown regularizer,
            norm or method, a base with several inputs or outputs or a
            single-logit head, or a softmax-ending base whose logits cannot
            be recovered. During ``fit``, labels out of range or not
            integer-valued (0.6), non-finite inputs, dict or multi-input
            data and a base whose output is not 2-D raise errors that say
            so. ``fit``, ``evaluate`` and ``predict`` refuse NumPy data
            before any step: no examples, inputs shaped for another input
            than the base's (channels-first for channels-last), NaN,
            infinite, string or out-of-range labels, NaN or negative
            ``sample_weight``; a dataset's batches are checked in the step.
            A base returning logits compiled with a
            ``from_logits=False`` loss gets a warning.
        TypeError: If ``base`` is not a Keras model, or a number argument
            is not a number (a string, a bool; this error is also a
            ``ValueError``).

    Example:
        >>> import keras, numpy as np
        >>> base = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3)])
        >>> model = GradRegModel(base, c=0.01)
        >>> model.compile("sgd", keras.losses.SparseCategoricalCrossentropy(
        ...     from_logits=True), metrics=["accuracy"])
        >>> history = model.fit(np.ones((8, 4), "float32"), np.zeros(8),
        ...                     epochs=1, verbose=0)
        >>> sorted(history.history)
        ['accuracy', 'grad_loss', 'loss']
    """

    def __init__(
        self,
        base: keras.Model,
        c: float = 0.01,
        regularizer: Union[str, Callable] = "logit_margin",
        norm: Union[str, Callable] = "squared_l2",
        method: str = "double_backprop",
        fd_step: float = 0.01,
        penalty_fraction: float = 1.0,
        **kwargs,
    ):
        settings = _gradreg_settings.checked(
            c, regularizer, norm, method, fd_step, penalty_fraction)
        super().__init__(base, **kwargs)
        self.regularizer = settings["regularizer"]
        self.norm = settings["norm"]
        self.method = settings["method"]
        self.fd_step = settings["fd_step"]
        self.penalty_fraction = settings["penalty_fraction"]
        # A non-trainable variable, so that c can change during fit (see
        # callbacks.PenaltySchedule) without retracing the train step. Set
        # it through ``c``; the step also checks it in-graph.
        self._c_variable = keras.Variable(
            settings["c"], trainable=False, dtype="float32", name="c")
        if self.penalty_fraction < 1.0:
            self._fraction_seed = self._saved_seed_generator("fraction", None)
        self.grad_loss_tracker = keras.metrics.Mean(name="grad_loss")
        # Epoch statistics of the collapse guard (not logged, not saved).
        self._collapse = _Untracked(_collapse_guard.EpochStatistics())
        self._mark_built()

    @property
    def c(self) -> float:
        """The penalty weight; assign to change it, also during ``fit``."""
        return float(keras.ops.convert_to_numpy(self._c_variable))

    @c.setter
    def c(self, value: float):
        self._c_variable.assign(_gradreg_settings.checked_c(value))

    @property
    def c_variable(self):
        """The variable holding ``c`` (read it; set ``model.c`` instead).

        Assigning to it directly skips the Python check on ``c``; the train
        step then stops with an error if the value is negative or not
        finite.
        """
        return self._c_variable

    # Eq. 2-4 ----------------------------------------------------------

    def train_step(self, data):
        """One optimizer step on Eq. 2: compiled loss + c * mean L_norm(dReg/dx).

        The training inputs are the batch (``GradRegModel``) or the training
        attack's adversarial examples (``AdversarialTrainingModel``). One
        forward pass feeds the compiled loss and the penalty; when ``c`` is
        0 the penalty branch (the second-order pass) does not run.
        """
        x, y, sample_weight = self._unpacked(data)
        x = self._training_inputs(x, y)
        c = self._checked_c()
        with tf.GradientTape() as tape:
            y_pred, labels, grad_loss, task_loss, total = self._eq2(
                x, y, sample_weight, c, training=True)
            scaled = self.optimizer.scale_loss(total)
        weights = self.trainable_weights
        gradients = _step_checks.finite_step(
            self, tape.gradient(scaled, weights), total, task_loss, c, grad_loss)
        self.optimizer.apply(gradients, weights)
        penalized = _penalty.penalized_count(x, c)
        self._collapse.value.update(
            y_pred, labels, grad_loss,
            tf.cast(task_loss, tf.float32) * _replica_count(), penalized)
        return self._update_metrics(x, y, y_pred, sample_weight, total,
                                    grad_loss, penalized)

    def test_step(self, data):
        """The loss, ``grad_loss`` and metrics of a batch: Eq. 2 as in the
        train step (the penalty measured only while ``c > 0``), on every
        example of the batch."""
        x, y, sample_weight = self._unpacked(data)
        c = self._checked_c()
        y_pred, _, grad_loss, _, total = self._eq2(
            x, y, sample_weight, c, training=False)
        return self._update_metrics(x, y, y_pred, sample_weight, total,
                                    grad_loss, _penalty.penalized_count(x, c))

    def _eq2(self, x, y, sample_weight, c, training: bool):
        """Eq. 2 on a batch: the compiled loss plus ``c`` times the mean
        penalty, from one forward pass.

        At ``c = 0`` a plain forward pass runs instead (no second-order pass)
        and the penalty reads 0. Called inside the train step's tape, so
        that the penalty's weight gradient (the second backpropagation) is
        recorded.

        Returns:
            ``(y_pred, labels, grad_loss, task_loss, total)``: the model's
            outputs, the sparse labels, the mean penalty before ``c``, the
            compiled loss and the total.
        """
        def penalized():
            logits, labels, penalties, index = self._forward_with_penalty(
                x, y, training)
            return logits, labels, _penalty.batch_mean(
                penalties, sample_weight, index)

        logits, labels, grad_loss = tf.cond(
            c > 0, penalized, lambda: self._plain_forward(x, y, training))
        y_pred = self._outputs(logits)
        task_loss = self.compute_loss(
            x=x, y=_after_label_checks(labels, y), y_pred=y_pred,
            sample_weight=sample_weight, training=training,
        )
        # Keras scales compiled losses by 1/replicas, so the penalty too.
        total = tf.cast(task_loss, grad_loss.dtype) + (
            tf.cast(c, grad_loss.dtype) * grad_loss / _replica_count()
        )
        return y_pred, labels, grad_loss, task_loss, total

    def _forward_with_penalty(self, x, y, training: bool):
        """Eq. 3-4 on the forward pass the loss uses.

        Returns:
            ``(logits, labels, penalties, index)``: the base's raw logits
            and the labels of the whole batch, the per-example
            L_norm(dReg/dx) of the penalized examples (all of them, or a
            random ``penalty_fraction`` while training) and their indices.
        """
        return _penalty.penalized_forward(
            self._logits_fn.value, self.regularizer, self.norm, self.method,
            self.fd_step, self.penalty_fraction,
            getattr(self, "_fraction_seed", None), x, y, training)

    # The pieces of the step ------------------------------------------------

    def _training_inputs(self, x, y) -> tf.Tensor:
        """The inputs the step trains on: the batch itself here."""
        del y
        return x

    def _unpacked(self, data):
        """``(x, y, sample_weight)`` of a batch, checked."""
        x, y, sample_weight = keras.utils.unpack_x_y_sample_weight(data)
        self._check_compiled_loss()
        return (self._check_inputs(x), y,
                _checked_sample_weight(sample_weight))

    def _checked_c(self) -> tf.Tensor:
        """c, checked in-graph (``c_variable`` can be assigned directly)."""
        return _checks.number_in_graph(
            "c", self._c_variable, 0.0, hint="set it through model.c")

    def _plain_forward(self, x, y, training: bool = True):
        """The unpenalized branch: logits, labels and a zero penalty."""
        logits = _check_logits(self._logits_fn.value(x, training))
        labels = _checked_labels(y, logits)
        return logits, labels, tf.zeros([], _penalty.dtype(x, logits))

    def input_gradients(self, x, y) -> tf.Tensor:
        """Returns dReg/dx for a batch, shaped like ``x``.

        Args:
            x: A float batch of inputs.
            y: Its labels, sparse or one-hot.

        Returns:
            The per-example gradient of the model's regularizer w.r.t. ``x``.
        """
        x = self._check_inputs(x)
        return regs.input_gradients(
            lambda inputs: self._logits_fn.value(inputs, False), x, y,
            self.regularizer)

    def _update_metrics(self, x, y, y_pred, sample_weight, total, grad_loss,
                        penalized):
        """Updates ``loss`` (the total), ``grad_loss`` and the compiled
        metrics; returns the logs.

        ``grad_loss`` is weighted by ``penalized``, the number of examples
        whose penalty was computed (0 for a batch at ``c = 0``).
        """
        batch_size = tf.shape(x)[0]
        _keras_compat.loss_tracker(self).update_state(
            total * _replica_count(), sample_weight=batch_size
        )
        self.grad_loss_tracker.update_state(grad_loss, sample_weight=penalized)
        logs = self.compute_metrics(x, y, y_pred, sample_weight=sample_weight)
        return _keras_compat.multi_worker_logs(logs)

    def fit(self, *args, **kwargs):
        """``keras.Model.fit``, with a collapse guard added to the callbacks.

        The guard warns (naming ``c``) when an epoch ends with the training
        accuracy at chance while the penalty is near zero or dominates the
        loss: the penalty is flattening the network into a constant.
        """
        args, kwargs = _collapse_guard.with_guard(args, kwargs)
        return super().fit(*args, **kwargs)

    # Serialization ------------------------------------------------------

    def get_config(self):
        config = super().get_config()
        config.update({
            "c": self.c,
            "regularizer": _gradreg_settings.serialized(
                self.regularizer, "regularizer"),
            "norm": _gradreg_settings.serialized(self.norm, "norm"),
            "method": self.method, "fd_step": self.fd_step,
            "penalty_fraction": self.penalty_fraction})
        return config

    @classmethod
    def from_config(cls, config, custom_objects=None):
        return super().from_config(
            _gradreg_settings.deserialized(config, custom_objects),
            custom_objects)

