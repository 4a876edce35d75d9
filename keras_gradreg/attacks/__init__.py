"""L-inf adversarial attacks, each one compiled TensorFlow graph per batch.

Threat model: white-box, L-inf. The attacker knows the model and its
gradients and may change each input feature by at most ``eps``; adversarial
examples are also kept in ``[clip_min, clip_max]`` (default ``[0, 1]``;
pass None for unbounded features such as MFCCs).

* :func:`fgsm`: Fast Gradient Sign Method (Goodfellow et al., 2015).
* :func:`bim`: Basic Iterative Method, the paper's BIM (Kurakin et al., 2017).
* :func:`cw_linf`: BIM on the capped C&W margin loss, the paper's "C&W"
  (Carlini & Wagner, 2017; confidence k = 50).
* :func:`pgd`: PGD with random start and restarts (Madry et al., 2018).
* :func:`apgd`: Auto-PGD with CE or DLR loss (Croce & Hein, 2020).
* :func:`apgd_t`: APGD on the targeted DLR loss, one run per target class.
* :func:`fab_t`: targeted Fast Adaptive Boundary attack, minimum L-inf norm
  (Croce & Hein, 2020).
* :func:`square`: Square Attack, score-based black-box random search
  (Andriushchenko et al., 2020); it uses no gradient.
* :func:`autoattack`: the AutoAttack ensemble (Croce & Hein, 2020), each
  attack on the points still robust.

:data:`ATTACKS` maps each attack's name to its function; every function
takes ``(model, x, y, eps, **options)`` with its own defaults.

Models must return logits. A :class:`keras_gradreg.GradRegModel` is attacked
through ``model.logits``, and a functional or Sequential model whose last
layer applies a softmax through its pre-softmax logits; any other model is
taken to return logits as is.

Example:
    >>> import keras, numpy as np
    >>> model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3)])
    >>> x = np.random.rand(8, 4).astype("float32")
    >>> x_adv = bim(model, x, np.zeros(8, "int32"), 0.1, 0.02, 10)
    >>> bool(np.abs(x_adv - x).max() <= 0.1 + 1e-6)
    True
"""

from keras_gradreg.attacks._core import cw_loss, dlr_loss, targeted_dlr_loss
from keras_gradreg.attacks.apgd import apgd, apgd_t
from keras_gradreg.attacks.autoattack import autoattack
from keras_gradreg.attacks.fab import fab_t
from keras_gradreg.attacks.gradient import bim, cw_linf, fgsm, pgd
from keras_gradreg.attacks.square import square

ATTACKS = {
    "fgsm": fgsm,
    "bim": bim,
    "cw": cw_linf,
    "pgd": pgd,
    "apgd": apgd,
    "apgd_t": apgd_t,
    "fab_t": fab_t,
    "square": square,
    "autoattack": autoattack,
}

__all__ = [
    "ATTACKS", "fgsm", "bim", "cw_linf", "pgd", "apgd", "apgd_t", "fab_t",
    "square", "autoattack", "cw_loss", "dlr_loss", "targeted_dlr_loss",
]
