"""Keras callbacks that watch input gradients, weights and robustness.

What Fig. 2 and Fig. 3 of Yu et al. plot, logged while a model trains:

* :class:`GradientNormLogger`: the mean per-example L1, L2 and L-inf norms of
  dReg/dx on a fixed probe batch, and the model's gradient loss (Fig. 2).
* :class:`WeightHistogramLogger`: weight histograms, means and standard
  deviations of chosen layers (Fig. 3, "weight distribution squeezing").
* :class:`RobustAccuracyCallback`: accuracy under an attack on held-out data,
  put into ``logs`` so that ``EarlyStopping`` and ``ModelCheckpoint`` can
  monitor it.
* :class:`HParamsLogger` and :func:`log_hparams`: a run's hyperparameters
  and final metrics for TensorBoard's HParams dashboard (needs the
  ``tensorboard`` package, imported only when they write).
* :func:`log_robustness`: a model's robust accuracy against eps after
  training, one TensorBoard chart per attack (eps as the step).
* :class:`PenaltySchedule`: changes a ``GradRegModel``'s penalty weight ``c``
  from epoch to epoch, as ``LearningRateScheduler`` changes the learning rate.
* :class:`TrainingRecord` and :func:`resumable`: every epoch's wall and CPU
  seconds and the history, kept across processes, beside Keras'
  ``BackupAndRestore``, so an interrupted fit goes on and still reports
  its whole cost.

The callbacks write TensorBoard summaries under ``log_dir/train`` and
``log_dir/validation``, the runs ``keras.callbacks.TensorBoard`` writes, so
one TensorBoard shows them together with Keras' own curves. Each summary's
step is the (0-based) epoch, or the optimizer's global step when
``every_n_steps`` is set.
"""

from keras_gradreg.callbacks._gradient_norms import GradientNormLogger
from keras_gradreg.callbacks._hparams import HParamsLogger
from keras_gradreg.callbacks._hparams import log_hparams
from keras_gradreg.callbacks._penalty_schedule import PenaltySchedule
from keras_gradreg.callbacks._robust_accuracy import RobustAccuracyCallback
from keras_gradreg.callbacks._robustness_summary import log_robustness
from keras_gradreg.callbacks._training_record import TrainingRecord
from keras_gradreg.callbacks._training_record import resumable
from keras_gradreg.callbacks._weight_histograms import WeightHistogramLogger

__all__ = [
    "GradientNormLogger",
    "HParamsLogger",
    "log_hparams",
    "log_robustness",
    "WeightHistogramLogger",
    "RobustAccuracyCallback",
    "PenaltySchedule",
    "TrainingRecord",
    "resumable",
]
