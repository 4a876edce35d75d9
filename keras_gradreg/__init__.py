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

import contextlib
import importlib
import importlib.abc
import importlib.util
import sys
import typing
import warnings

# Each public name and the module that defines it, imported on first use
# (PEP 562): ``import keras_gradreg`` and the command line's parsing and
# --help run without TensorFlow.
_SUBMODULES = ("attacks", "audio", "callbacks", "datasets", "evaluation",
               "models", "paper", "regularizers")
_NAMES = {
    "AdversarialTrainingModel": "keras_gradreg.adversarial_training",
    "MFCC": "keras_gradreg.audio",
    "GradientNormLogger": "keras_gradreg.callbacks",
    "HParamsLogger": "keras_gradreg.callbacks",
    "PenaltySchedule": "keras_gradreg.callbacks",
    "RobustAccuracyCallback": "keras_gradreg.callbacks",
    "WeightHistogramLogger": "keras_gradreg.callbacks",
    "log_hparams": "keras_gradreg.callbacks",
    "log_robustness": "keras_gradreg.callbacks",
    "Results": "keras_gradreg.evaluation",
    "RobustnessReport": "keras_gradreg.evaluation",
    "robust_accuracy": "keras_gradreg.evaluation",
    "GradRegModel": "keras_gradreg.model",
}
# The modules that register Keras serializables
# (``keras.saving.register_keras_serializable``): imported as soon as Keras
# is, so that ``keras.models.load_model`` finds keras-gradreg's models,
# layers and functions after a bare ``import keras_gradreg``.
_SERIALIZABLES = ("keras_gradreg.regularizers", "keras_gradreg.model",
                  "keras_gradreg.adversarial_training", "keras_gradreg.audio")


if typing.TYPE_CHECKING:  # the same names for type checkers and the docs
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


def __getattr__(name: str):
    if name not in _SUBMODULES and name not in _NAMES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    _state["importing"] += 1
    try:
        module = importlib.import_module(_NAMES.get(name, f"{__name__}.{name}"))
    finally:
        _state["importing"] -= 1
    if _state["pending"] and not _state["importing"]:
        _register_serializables()
    if name in _SUBMODULES:
        return module
    value = globals()[name] = getattr(module, name)
    return value


# "importing": depth of __getattr__'s imports; "pending": Keras got imported
# in the middle of one, so the registration waits until it is done (the
# modules import each other).
_state = {"importing": 0, "pending": False}


def __dir__():
    return sorted(set(globals()) | set(__all__))


def _register_serializables() -> None:
    if _state["importing"] or any(
            getattr(getattr(module, "__spec__", None), "_initializing", False)
            for name, module in list(sys.modules.items())
            if name.startswith(f"{__name__}.")):
        _state["pending"] = True  # done when that import is
        return
    _state["pending"] = False
    for module in _SERIALIZABLES:
        try:
            importlib.import_module(module)
        except Exception as error:  # never break the user's import of keras
            warnings.warn(f"keras-gradreg could not register its Keras "
                          f"objects ({module}: {error}); import it before "
                          "loading a saved model.", stacklevel=2)


class _AfterKerasImport(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Runs :func:`_register_serializables` right after ``keras`` is
    imported (a one-time import hook; it removes itself)."""

    _finding = False

    def find_spec(self, name, path, target=None):
        if name != "keras" or self._finding:
            return None
        self._finding = True  # find the real spec past this finder
        try:
            spec = importlib.util.find_spec(name)
        finally:
            self._finding = False
        if spec is None or spec.loader is None:
            return spec
        self._loader = spec.loader
        spec.loader = self
        return spec

    def create_module(self, spec):
        return self._loader.create_module(spec)

    def exec_module(self, module):
        with contextlib.suppress(ValueError):
            sys.meta_path.remove(self)
        module.__spec__.loader = module.__loader__ = self._loader
        self._loader.exec_module(module)
        _register_serializables()


if "keras" in sys.modules:
    _register_serializables()
else:
    sys.meta_path.insert(0, _AfterKerasImport())

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
