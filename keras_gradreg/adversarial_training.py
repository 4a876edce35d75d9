"""Min-max adversarial training, optionally with the paper's penalty on top.

``AdversarialTrainingModel`` trains on adversarial examples crafted on the
fly by the attacks' sign-gradient loop (``attacks._core``): PGD-k (Madry et
al., 2018), FGSM-RS (Wong, Rice & Kolter, 2020, "Fast is better than free")
and N-FGSM (de Jorge et al., 2022, "Make Some Noise: Reliable and Efficient
Single-Step Adversarial Training"). It is a ``GradRegModel`` whose training
inputs are those examples: with ``c > 0`` the input-gradient penalty of Yu et
al. is added at the adversarial examples, sharing their forward pass. The
attack that crafts them is in ``_training_attack.py``.
"""

from __future__ import annotations

from typing import Callable, Optional, Union

import keras
import tensorflow as tf

from keras_gradreg import _checks
from keras_gradreg import _training_attack
from keras_gradreg.attacks import _norms as attack_norms
from keras_gradreg.model import GradRegModel

__all__ = ["AdversarialTrainingModel", "RECIPES"]

LOSSES = ("ce", "cw")


def _fgsm_rs_settings(eps: float) -> dict:
    return dict(step_size=1.25 * eps, steps=1, random_start=True,
                start_radius=eps, project=True)


def _n_fgsm_settings(eps: float) -> dict:
    return dict(step_size=eps, steps=1, random_start=True,
                start_radius=2.0 * eps, project=False)


def _pgd_settings(eps: float, steps: int = 7) -> dict:
    return dict(step_size=2.5 * eps / steps, steps=steps,
                random_start=True, start_radius=eps, project=True)


def _recipe(title: str, settings: Callable[..., dict]):
    """Marks a named constructor as a training recipe with a ``title`` and
    its ``settings(eps, ...)``: the constructor arguments it derives from
    ``eps`` (and the recipe's own options), for records and reports."""

    def mark(method):
        method.title = title
        method.settings = settings
        return method

    return mark


@keras.saving.register_keras_serializable(package="keras_gradreg")
class AdversarialTrainingModel(GradRegModel):
    """Trains a classifier on adversarial examples (min-max), L-inf or L2/L1.

    Each training step crafts adversarial examples for the batch: a uniform
    random start in ``[-start_radius, start_radius]`` around ``x`` (when
    ``random_start``), then ``steps`` signed-gradient steps of size
    ``step_size``, each followed by a projection onto the ``eps``-ball and
    ``[clip_min, clip_max]`` (with ``project=False``, onto the clip range
    only, so the example may end up to ``start_radius + steps * step_size``
    from ``x``). Then one optimizer step on the compiled loss of those
    examples plus ``c`` times the input-gradient penalty at them (Eq. 2-4 of
    Yu et al., exactly as ``GradRegModel``; ``c = 0``, the default, is plain
    adversarial training and runs no second-order pass). The attack runs the
    base in inference mode (no BatchNormalization updates, no dropout) and
    is not differentiated through.

    Recipes (also as named constructors):
        * PGD-k (Madry et al. 2018): :meth:`pgd`, ``steps=k``,
          ``step_size=2.5 * eps / k``, random start (MNIST eps 0.3: k=40,
          step 0.01).
        * FGSM-RS (Wong et al. 2020): :meth:`fgsm_rs`, ``steps=1``,
          ``step_size=1.25 * eps``, random start of radius eps, projected.
        * N-FGSM (de Jorge et al. 2022): :meth:`n_fgsm`, noise of radius
          ``2 * eps``, one step of ``eps``, no projection to the eps-ball.

    The random starts come from ``seed_generator``, whose state is saved
    with the weights: ``BackupAndRestore`` resumes to the uninterrupted
    run's weights under the settings ``GradRegModel`` names.

    Training logs (``loss``, ``grad_loss`` and compiled metrics) are
    measured on the adversarial examples; ``evaluate`` and validation logs
    on clean data. With ``c = 0`` (every recipe's default) ``grad_loss``
    and ``val_grad_loss`` both read 0: the penalty is neither trained nor
    measured (see ``GradRegModel``).

    Args:
        base: A Keras classifier (logits, or ending in a softmax, as for
            ``GradRegModel``).
        eps: Radius of the projection in the norm ``attack_norm``, ``>= 0``,
            at most 1e15 (float32 inputs moved further overflow). ``eps = 0``
            with ``step_size = 0`` (what every recipe derives from
            ``eps = 0``) is natural training: the examples are the batch
            itself.
        step_size: Size of each step, ``> 0`` (``>= 0`` when ``eps`` is 0).
        steps: Number of attack steps, ``>= 1``.
        random_start: Start from a uniform point of radius ``start_radius``.
        loss: ``"ce"`` (cross-entropy) or ``"cw"`` (the C&W margin, capped at
            ``confidence`` exactly as in ``attacks.pgd``).
        clip_min: Lower bound of valid inputs, or None.
        clip_max: Upper bound of valid inputs, or None.
        seed: Seed of the random starts (None: drawn from Keras' global
            seed, so ``keras.utils.set_random_seed`` makes runs repeatable).
        start_radius: Half-width of the uniform random start, ``>= 0``;
            None (default) means ``eps``.
        project: Project every iterate onto the eps-ball (default). False
            keeps it wherever noise and steps put it, inside the clip range.
        confidence: The cap of ``loss="cw"`` (the attacks' default, 50).
        attack_norm: The training attack's threat model: ``"linf"``
            (default), ``"l2"`` or ``"l1"``. Radii, steps and the random
            start are in that norm (L2: the start on the sphere of radius
            ``start_radius``, steps along ``g / ||g||_2``; L1: Gaussian noise
            projected onto the L1 ball, sparse steps, the exact projection
            onto the L1 ball within the clip range). Not to be confused with
            ``norm``, the penalty's gradient norm: its dual pairs with the
            threat model (``"l1"`` with L-inf, ``"l2"`` with L2, ``"linf"``
            with L1).
        c: Penalty weight of Eq. 2, ``>= 0``; 0 (default) is no penalty.
        regularizer: The penalty's Reg, as for
            :class:`~keras_gradreg.GradRegModel`.
        norm: The penalty's norm, as for GradRegModel.
        method: How the penalty is computed, as for GradRegModel.
        fd_step: The finite-difference step, as for GradRegModel.
        penalty_fraction: The penalized fraction of each batch, as for
            GradRegModel.
        **kwargs: Forwarded to ``keras.Model``.

    Raises:
        ValueError: For bad attack or penalty settings: out of range, NaN or
            infinite, an unknown loss. During ``fit``, inputs outside
            ``[clip_min, clip_max]`` raise an error that says so.
        TypeError: For a setting of the wrong type (a string or bool for a
            number, a float for ``steps``); it is also a ``ValueError``.

    Example:
        >>> import keras, numpy as np
        >>> base = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3)])
        >>> model = AdversarialTrainingModel.n_fgsm(base, eps=0.1, c=0.03,
        ...                                         norm="l1")
        >>> (model.start_radius, model.step_size, model.project)
        (0.2, 0.1, False)
        >>> model.compile("sgd", keras.losses.SparseCategoricalCrossentropy(
        ...     from_logits=True))
        >>> history = model.fit(np.random.rand(8, 4).astype("float32"),
        ...                     np.zeros(8), verbose=0)
        >>> sorted(history.history)
        ['grad_loss', 'loss']
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
        start_radius: Optional[float] = None,
        project: bool = True,
        confidence: float = 50.0,
        attack_norm: str = "linf",
        c: float = 0.0,
        regularizer: Union[str, Callable] = "logit_margin",
        norm: Union[str, Callable] = "squared_l2",
        method: str = "double_backprop",
        fd_step: float = 0.01,
        penalty_fraction: float = 1.0,
        **kwargs,
    ):
        self.eps = _checks.number("eps", eps, 0.0)
        # eps = 0 is natural training: its attack takes steps of size 0.
        self.step_size = _checks.number(
            "step_size", step_size, 0.0, strict=self.eps > 0
        )
        self.steps = _checks.integer("steps", steps, 1)
        loss = _checks.choice("loss", loss, LOSSES)
        clip_min, clip_max = _checks.clip_range(clip_min, clip_max)
        start_radius = _checks.number(
            "start_radius", start_radius, 0.0, optional=True
        )
        self.start_radius = self.eps if start_radius is None else start_radius
        self.confidence = _checks.number("confidence", confidence, 0.0)
        self.attack_norm = attack_norms.check(attack_norm)
        seed = _checks.integer("seed", seed, 0, optional=True)
        super().__init__(
            base, c=c, regularizer=regularizer, norm=norm, method=method,
            fd_step=fd_step, penalty_fraction=penalty_fraction, **kwargs,
        )
        self.random_start = bool(random_start)
        self.project = bool(project)
        self.loss_name = loss
        self.clip_min = clip_min
        self.clip_max = clip_max
        self.seed = seed
        self.seed_generator = self._saved_seed_generator("random_start", seed)

    # The three recipes -------------------------------------------------------

    @classmethod
    @_recipe("FGSM-RS", _fgsm_rs_settings)
    def fgsm_rs(cls, base: keras.Model, eps: float, **kwargs):
        """FGSM-RS of Wong, Rice & Kolter (2020), "Fast is better than free".

        A uniform start in the eps-ball, one step of ``1.25 * eps``,
        projected back to the ball.

        Args:
            base: The classifier.
            eps: The radius, in the norm ``attack_norm`` (default L-inf).
            **kwargs: Other arguments (clip range, seed, penalty settings).

        Returns:
            An ``AdversarialTrainingModel``.

        Example:
            >>> import keras
            >>> base = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3)])
            >>> AdversarialTrainingModel.fgsm_rs(base, 0.1).step_size
            0.125
        """
        eps = _checks.number("eps", eps, 0.0)
        return cls(base, eps=eps, **_fgsm_rs_settings(eps), **kwargs)

    @classmethod
    @_recipe("N-FGSM", _n_fgsm_settings)
    def n_fgsm(cls, base: keras.Model, eps: float, **kwargs):
        """N-FGSM of de Jorge et al. (2022), "Make Some Noise".

        Uniform noise of radius ``2 * eps``, one step of ``eps``, and no
        projection back to the eps-ball (the example stays in the clip
        range). Pass penalty arguments (``c``, ``norm``, ...) to add the
        input-gradient penalty at the N-FGSM examples.

        Args:
            base: The classifier.
            eps: The radius the model is trained for, in the norm
                ``attack_norm`` (default L-inf).
            **kwargs: Other arguments (clip range, seed, penalty settings).

        Returns:
            An ``AdversarialTrainingModel``.

        Example:
            >>> import keras
            >>> base = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3)])
            >>> AdversarialTrainingModel.n_fgsm(base, 0.1).start_radius
            0.2
        """
        eps = _checks.number("eps", eps, 0.0)
        return cls(base, eps=eps, **_n_fgsm_settings(eps), **kwargs)

    @classmethod
    @_recipe("PGD-k", _pgd_settings)
    def pgd(cls, base: keras.Model, eps: float, steps: int = 7, **kwargs):
        """PGD-k adversarial training of Madry et al. (2018).

        A uniform start in the eps-ball and ``steps`` projected steps of
        ``2.5 * eps / steps``.

        Args:
            base: The classifier.
            eps: The radius, in the norm ``attack_norm`` (default L-inf).
            steps: Number of attack steps, ``>= 1`` (default 7).
            **kwargs: Other arguments (clip range, seed, penalty settings).

        Returns:
            An ``AdversarialTrainingModel``.

        Example:
            >>> import keras
            >>> base = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3)])
            >>> round(AdversarialTrainingModel.pgd(base, 0.3, steps=40).step_size, 6)
            0.01875
        """
        eps = _checks.number("eps", eps, 0.0)
        steps = _checks.integer("steps", steps, 1)
        return cls(base, eps=eps, **_pgd_settings(eps, steps), **kwargs)

    # The training inputs -----------------------------------------------------

    def adversarial_examples(self, x, y) -> tf.Tensor:
        """Crafts the training attack's adversarial examples for a batch.

        Args:
            x: A float batch of inputs inside ``[clip_min, clip_max]``.
            y: Labels, sparse or one-hot.

        Returns:
            A tensor shaped like ``x``: within ``eps`` of it when
            ``project``, else within ``start_radius + steps * step_size``;
            always inside the clip range.
        """
        x = _training_attack.in_clip_range(
            self._check_inputs(x), self.clip_min, self.clip_max,
            type(self).__name__)
        return _training_attack.craft(self, x, tf.convert_to_tensor(y))

    def _training_inputs(self, x, y) -> tf.Tensor:
        return self.adversarial_examples(x, y)

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
                "start_radius": self.start_radius,
                "project": self.project,
                "confidence": self.confidence,
                "attack_norm": self.attack_norm,
            }
        )
        return config


# The named recipes by constructor name, the recommended one (N-FGSM, which
# docs/RESULTS.md measured best per cost on MNIST) first. Each has a `title`
# and `settings(eps, ...)`, the constructor arguments it derives, e.g.
# RECIPES["pgd"].settings(0.3, steps=10)["step_size"] == 0.075.
RECIPES = {
    method.__name__: method
    for method in (
        AdversarialTrainingModel.n_fgsm,
        AdversarialTrainingModel.fgsm_rs,
        AdversarialTrainingModel.pgd,
    )
}
