"""Min-max adversarial training, the baseline the paper compares cost with.

``AdversarialTrainingModel`` trains on PGD adversarial examples crafted on
the fly (Madry et al., 2018, "Towards Deep Learning Models Resistant to
Adversarial Attacks"). With ``steps=1``, ``random_start=True`` and
``step_size=1.25 * eps`` it is FGSM-RS "fast adversarial training" (Wong,
Rice & Kolter, 2020, "Fast is better than free").
"""

from __future__ import annotations

from typing import Optional

import keras
import tensorflow as tf

from keras_gradreg import regularizers as regs
from keras_gradreg._wrapper import WrappedClassifier, _multi_worker_logs

__all__ = ["AdversarialTrainingModel"]

LOSSES = ("ce", "cw")


def _check_positive(name: str, value, allow_zero: bool = False) -> float:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    if not ok or value != value or (value < 0 if allow_zero else value <= 0):
        bound = ">= 0" if allow_zero else "> 0"
        raise ValueError(f"{name} must be a number {bound}, got {value!r}.")
    return float(value)


def _attack_objective(loss: str):
    if loss == "ce":
        return regs.cross_entropy
    return regs.logit_margin  # C&W margin, uncapped during training.


@keras.saving.register_keras_serializable(package="keras_gradreg")
class AdversarialTrainingModel(WrappedClassifier):
    """Trains a classifier on L-inf PGD adversarial examples (min-max).

    Each training step crafts adversarial examples for the batch with
    ``steps`` signed-gradient steps of size ``step_size`` inside the
    ``eps``-ball (and ``[clip_min, clip_max]``), starting from a uniform
    random point when ``random_start``; then takes one optimizer step on the
    compiled loss of those examples. The attack runs the base in inference
    mode (no BatchNormalization updates, no dropout) and is not
    differentiated through.

    Recipes:
        * PGD-k (Madry et al.): ``steps=k``, ``step_size=2.5 * eps / k``,
          ``random_start=True`` (e.g. MNIST eps 0.3: k=40, step 0.01).
        * FGSM-RS (Wong et al. 2020): ``steps=1``, ``step_size=1.25 * eps``,
          ``random_start=True``.

    Training logs (``loss`` and compiled metrics) are measured on the
    adversarial examples; ``evaluate`` and validation logs on clean data.

    Args:
        base: A Keras classifier (logits, or ending in a softmax, as for
            ``GradRegModel``).
        eps: L-inf radius of the training attack, ``>= 0``.
        step_size: Size of each signed-gradient step, ``> 0``.
        steps: Number of attack steps, ``>= 1``.
        random_start: Start from a uniform point in the eps-ball.
        loss: ``"ce"`` (cross-entropy) or ``"cw"`` (logit margin) for the
            attack.
        clip_min: Lower bound of valid inputs, or None.
        clip_max: Upper bound of valid inputs, or None.
        seed: Seed of the random starts (None: drawn from Keras' global
            seed, so ``keras.utils.set_random_seed`` makes runs repeatable).
        **kwargs: Forwarded to ``keras.Model``.

    Raises:
        ValueError: For bad attack settings.

    Example:
        >>> import keras, numpy as np
        >>> base = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3)])
        >>> model = AdversarialTrainingModel(base, eps=0.1, step_size=0.125,
        ...                                  steps=1)
        >>> model.compile("sgd", keras.losses.SparseCategoricalCrossentropy(
        ...     from_logits=True))
        >>> history = model.fit(np.random.rand(8, 4).astype("float32"),
        ...                     np.zeros(8), verbose=0)
    """

    def __init__(
        self,
        base: keras.Model,
        eps: float,
        step_size: float,
        steps: int,
        random_start: bool = True,
        loss: str = "ce",
        clip_min: Optional[float] = 0.0,
        clip_max: Optional[float] = 1.0,
        seed: Optional[int] = None,
        **kwargs,
    ):
        self.eps = _check_positive("eps", eps, allow_zero=True)
        self.step_size = _check_positive("step_size", step_size)
        if not isinstance(steps, int) or isinstance(steps, bool) or steps < 1:
            raise ValueError(f"steps must be an integer >= 1, got {steps!r}.")
        if loss not in LOSSES:
            raise ValueError(f"Unknown loss {loss!r}. Use one of {list(LOSSES)}.")
        if clip_min is not None and clip_max is not None and clip_min >= clip_max:
            raise ValueError(
                f"clip_min ({clip_min}) must be smaller than clip_max "
                f"({clip_max})."
            )
        super().__init__(base, **kwargs)
        self.steps = steps
        self.random_start = bool(random_start)
        self.loss_name = loss
        self.clip_min = clip_min
        self.clip_max = clip_max
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)
        self._mark_built()

    def _project(self, x_adv, x):
        x_adv = tf.clip_by_value(x_adv, x - self.eps, x + self.eps)
        if self.clip_min is not None:
            x_adv = tf.maximum(x_adv, tf.cast(self.clip_min, x.dtype))
        if self.clip_max is not None:
            x_adv = tf.minimum(x_adv, tf.cast(self.clip_max, x.dtype))
        return x_adv

    def adversarial_examples(self, x, y) -> tf.Tensor:
        """Crafts the training attack's adversarial examples for a batch.

        Args:
            x: A float batch of inputs.
            y: Labels, sparse or one-hot.

        Returns:
            A tensor shaped like ``x``, within ``eps`` of it.
        """
        x = self._check_inputs(x)
        objective = _attack_objective(self.loss_name)
        x_adv = x
        if self.random_start:
            noise = keras.random.uniform(
                tf.shape(x), -self.eps, self.eps, dtype=x.dtype,
                seed=self.seed_generator,
            )
            x_adv = self._project(x + noise, x)

        def step(x_adv):
            with tf.GradientTape() as tape:
                tape.watch(x_adv)
                value = tf.reduce_sum(objective(self.logits(x_adv), y))
            gradient = tape.gradient(value, x_adv)
            return self._project(x_adv + self.step_size * tf.sign(gradient), x)

        # An explicit while_loop: Keras does not autograph train_step.
        _, x_adv = tf.while_loop(
            lambda i, _: i < self.steps,
            lambda i, x_adv: (i + 1, step(x_adv)),
            (tf.constant(0), x_adv),
        )
        return tf.stop_gradient(x_adv)

    def train_step(self, data):
        x, y, sample_weight = keras.utils.unpack_x_y_sample_weight(data)
        x_adv = self.adversarial_examples(x, y)
        with tf.GradientTape() as tape:
            outputs = self(x_adv, training=True)
            loss = self._compute_loss(
                x=x_adv, y=y, y_pred=outputs, sample_weight=sample_weight,
                training=True,
            )
            scaled = self.optimizer.scale_loss(loss)
        weights = self.trainable_weights
        self.optimizer.apply(tape.gradient(scaled, weights), weights)
        self._loss_tracker.update_state(
            loss * tf.distribute.get_strategy().num_replicas_in_sync,
            sample_weight=tf.shape(x)[0],
        )
        logs = self.compute_metrics(x_adv, y, outputs, sample_weight)
        return _multi_worker_logs(logs)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "eps": self.eps,
                "step_size": self.step_size,
                "steps": self.steps,
                "random_start": self.random_start,
                "loss": self.loss_name,
                "clip_min": self.clip_min,
                "clip_max": self.clip_max,
                "seed": self.seed,
            }
        )
        return config
