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
from keras_gradreg.attacks.gradient import bim, cw_linf, fgsm, pgd
from keras_gradreg.attacks.square import square

__all__ = [
    "fgsm", "bim", "cw_linf", "pgd", "apgd", "apgd_t", "square", "cw_loss", "dlr_loss",
    "targeted_dlr_loss",
]
