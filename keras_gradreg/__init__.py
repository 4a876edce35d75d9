"""keras-gradreg: robust training by regularizing adversarial gradients.

For Keras 3 on TensorFlow:

* :class:`GradRegModel`: the input-gradient penalty of Yu et al., "Towards
  Robust Training of Neural Networks by Regularizing Adversarial Gradients"
  (Logit-reg), and the cross-entropy baseline (Xent-reg);
* :class:`AdversarialTrainingModel`: N-FGSM, FGSM-RS and PGD-k adversarial
  training, with the same penalty on top of their examples;
* :mod:`attacks` and :class:`RobustnessReport`: FGSM, BIM, C&W, PGD and the
  AutoAttack ensemble (APGD-CE, APGD-T, FAB-T, Square), with masking checks.
"""

from keras_gradreg import attacks
from keras_gradreg import audio
from keras_gradreg import callbacks
from keras_gradreg import datasets
from keras_gradreg import evaluation
from keras_gradreg import models
from keras_gradreg import paper
from keras_gradreg import regularizers
from keras_gradreg.adversarial_training import AdversarialTrainingModel
from keras_gradreg.audio import MFCC
from keras_gradreg.callbacks import GradientNormLogger
from keras_gradreg.callbacks import HParamsLogger
from keras_gradreg.callbacks import PenaltySchedule
from keras_gradreg.callbacks import RobustAccuracyCallback
from keras_gradreg.callbacks import WeightHistogramLogger
from keras_gradreg.callbacks import log_hparams
from keras_gradreg.callbacks import log_robustness
from keras_gradreg.evaluation import Results
from keras_gradreg.evaluation import RobustnessReport
from keras_gradreg.evaluation import robust_accuracy
from keras_gradreg.model import GradRegModel

__version__ = "0.2.0"

__all__ = [
    "AdversarialTrainingModel",
    "GradRegModel",
    "GradientNormLogger",
    "HParamsLogger",
    "MFCC",
    "PenaltySchedule",
    "Results",
    "RobustAccuracyCallback",
    "RobustnessReport",
    "WeightHistogramLogger",
    "attacks",
    "audio",
    "callbacks",
    "datasets",
    "evaluation",
    "log_hparams",
    "log_robustness",
    "models",
    "paper",
    "regularizers",
    "robust_accuracy",
    "__version__",
]
