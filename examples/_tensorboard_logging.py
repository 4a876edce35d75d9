"""TensorBoard logging of the examples' training runs, on by default.

Every model an experiment (``mnist.py``, ``cifar10.py``,
``speech_commands.py``) or ``sweep_c.py`` trains logs into its own run
folder ``<out>/logs/<model>``:

* ``keras.callbacks.TensorBoard``: loss, accuracy, ``grad_loss`` per epoch
  (``train`` and, on the held-out slice, ``validation``);
* ``GradientNormLogger``: L1, L2, L-inf norms and the gradient loss of
  dReg/dx on a fixed probe of ``PROBE_SIZE`` training examples, with the
  logit margin (Eq. 3) as Reg for every model, so the curves of Natural,
  Xent-reg and Logit-reg measure the same thing (Fig. 2);
* ``WeightHistogramLogger`` on ``conv1`` and ``fc2`` where the network has
  them (Fig. 3; the speech network ends in ``fc1``);
* ``RobustAccuracyCallback``: accuracy under ``attacks.EPOCH_ATTACK`` (FGSM)
  at each of the run's eps on ``HELD_OUT_SIZE`` held-out examples, at epoch
  ends only;
* after the evaluation: ``log_robustness`` (accuracy against eps, one chart
  per attack) and ``log_hparams`` (the run's hyperparameters and final
  metrics for the HParams dashboard).

The held-out slice is the first ``HELD_OUT_SIZE`` examples of the data the
experiment evaluates on (the test split for the examples, the validation
split for the sweep); it is only displayed, never used to choose anything.
Logging costs a few seconds per model (one double backpropagation on the
probe, ``len(eps)`` FGSM attacks and one evaluation on the held-out slice
per epoch). ``--notensorboard`` turns it off.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import sys
import warnings
from typing import Dict, List, Optional, Sequence

import keras
from absl import flags

import keras_gradreg  # noqa: F401 (the doctests use it)
from keras_gradreg import attacks
from keras_gradreg import callbacks as kgr_callbacks

PAPER_LAYERS = ("conv1", "fc2")
PROBE_SIZE = 256
HELD_OUT_SIZE = 256


def define_flags(flag_values: flags.FlagValues = flags.FLAGS) -> None:
    """The ``--tensorboard`` flag (``--notensorboard`` turns logging off)."""
    flags.DEFINE_boolean(
        "tensorboard", True,
        "Log every training run to TensorBoard under <out>/logs/<model> "
        "(scalars, input-gradient norms, conv1/fc2 histograms, FGSM "
        "accuracy per epoch, HParams) and draw Fig. 2 and Fig. 3 of the "
        "paper from them; --notensorboard turns it off.",
        flag_values=flag_values)


def logged_layers(model: keras.Model) -> List[str]:
    """The paper's Fig. 3 layers (``conv1``, ``fc2``) that ``model`` has.

    Example:
        >>> logged_layers(keras_gradreg.models.speech_cnn())
        ['conv1']
    """
    network = getattr(model, "base", model)
    names = {layer.name for layer in network.layers}
    return [name for name in PAPER_LAYERS if name in names]


def first(arrays, count: int) -> tuple:
    """The first ``count`` examples of ``(x, y)`` arrays."""
    return tuple(array[:count] for array in arrays)


@dataclasses.dataclass
class RunLogger:
    """Makes the TensorBoard callbacks of each run under ``root``.

    Attributes:
        root: ``<out>/logs``.
        probe: ``(x, y)``: the fixed probe of GradientNormLogger.
        held_out: ``(x, y)``: validation data and the data FGSM attacks.
        eps_values: The eps of the per-epoch FGSM accuracy.
        clip: ``clip_min`` / ``clip_max`` of the attack.
    """

    root: str
    probe: tuple
    held_out: tuple
    eps_values: Sequence[float]
    clip: dict
    run_dirs: Dict[str, str] = dataclasses.field(default_factory=dict)
    layers: Dict[str, List[str]] = dataclasses.field(default_factory=dict)
    hparams: Dict[str, dict] = dataclasses.field(default_factory=dict)
    metrics: Dict[str, dict] = dataclasses.field(default_factory=dict)
    # Reused models whose earlier run logged no training (left out of the
    # figures).
    without_training_logs: List[str] = dataclasses.field(default_factory=list)

    def callbacks(self, name: str, model: keras.Model) -> list:
        """A fresh run folder for ``name`` and the callbacks writing it.

        An earlier run of the same name (from an earlier experiment into
        the same ``--out``) is deleted, as ``results.json`` is replaced.
        """
        log_dir = os.path.join(self.root, name)
        if os.path.isdir(log_dir):
            shutil.rmtree(log_dir)
        self.run_dirs[name] = log_dir
        self.layers[name] = logged_layers(model)
        found = [kgr_callbacks.GradientNormLogger(
            log_dir, self.probe, regularizer="logit_margin")]
        if self.layers[name]:
            found.append(kgr_callbacks.WeightHistogramLogger(
                log_dir, layers=self.layers[name]))
        found += [
            kgr_callbacks.RobustAccuracyCallback(
                self.held_out, attacks.EPOCH_ATTACK, eps=float(eps),
                log_dir=log_dir, name=f"{attacks.EPOCH_ATTACK}_eps{eps:g}",
                **self.clip)
            for eps in self.eps_values]
        # Last, so that it also logs the robust accuracies put into logs.
        found.append(keras.callbacks.TensorBoard(log_dir, write_graph=False))
        return found

    def reuse(self, name: str, model: keras.Model) -> None:
        """Takes up the run folder of ``name`` that an earlier process wrote
        (``--resume`` reused its saved model): its training logs stay, and
        :meth:`finish` adds the final robustness to them."""
        self.run_dirs[name] = os.path.join(self.root, name)
        self.layers[name] = logged_layers(model)
        if not _has_events(self.run_dirs[name]):
            self.without_training_logs.append(name)

    def finish(self, name: str, hparams: dict, results: dict,
               train_seconds: float, extra_metrics: Optional[dict] = None):
        """Writes accuracy against eps and keeps the run's HParams."""
        metrics = kgr_callbacks.log_robustness(self.run_dirs[name], results)
        metrics["final/train_seconds"] = float(train_seconds)
        metrics.update(extra_metrics or {})
        self.hparams[name], self.metrics[name] = hparams, metrics

    def write_hparams(self) -> bool:
        """Writes every run's HParams with the union of names; False when
        the tensorboard package is missing (with a warning)."""
        hparam_names = _union(self.hparams.values())
        metric_names = _union(self.metrics.values())
        try:
            for name, hparams in self.hparams.items():
                kgr_callbacks.log_hparams(
                    self.run_dirs[name], hparams, self.metrics[name],
                    hparam_names=hparam_names, metric_names=metric_names)
        except ImportError as error:
            warnings.warn(f"No HParams: {error}")
            return False
        return True

    def render_figures(self, out: str) -> Optional[dict]:
        """Draws Fig. 2 and Fig. 3 into ``out`` from the event files."""
        try:
            sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
            import _training_plots
        except ImportError as error:
            warnings.warn(f"No Fig. 2 / Fig. 3 ({error}): install "
                          "matplotlib and tensorboard.")
            return None
        runs = {name: path for name, path in self.run_dirs.items()
                if name not in self.without_training_logs}
        if self.without_training_logs:
            warnings.warn(
                f"No training logs of {', '.join(self.without_training_logs)}"
                " (reused from a run without TensorBoard): left out of Fig. 2"
                " and Fig. 3.")
        if not runs:
            return None
        layers = [layer for layer in PAPER_LAYERS
                  if all(layer in self.layers[name] for name in runs)]
        return _training_plots.render(runs, out, layers)


def _has_events(folder: str) -> bool:
    """Whether ``folder`` (or a folder in it) holds a TensorBoard event file."""
    return any(name.startswith("events.out.tfevents")
               for _, _, names in os.walk(folder) for name in names)


def _union(dicts) -> list:
    names = []
    for entry in dicts:
        names += [name for name in entry if name not in names]
    return names


def model_hparams(name: str, info: dict, **common) -> dict:
    """The HParams of one model: its ``ModelSpec.info`` plus ``common``.

    ``method`` is natural, gradreg or adversarial_training; a model
    without a gradient penalty records ``c = 0`` (GradRegModel with c = 0
    is natural training) and ``regularizer = norm = "none"``. Adversarial
    training adds ``train_attack`` (fgsm_rs, nfgsm or pgd), ``train_eps`` and
    ``train_steps``. ``activation`` is recorded where the spec has one.

    Example:
        >>> model_hparams("logit_reg", {"kind": "gradreg", "c": 0.1,
        ...     "regularizer": "logit_margin", "norm": "l1"}, seed=0)["norm"]
        'l1'
    """
    hparams = {
        "model": name, "method": info.get("kind", "natural"),
        "regularizer": info.get("regularizer", "none"),
        "norm": info.get("norm", "none"), "c": float(info.get("c", 0.0)),
    }
    if info.get("kind") == "adversarial_training":
        hparams.update(train_attack=name.rsplit("_at", 1)[0],
                       train_eps=float(info["eps"]),
                       train_steps=int(info["steps"]))
    if "activation" in info:
        hparams["activation"] = str(info["activation"])
    hparams.update({k: v for k, v in common.items() if v is not None})
    return hparams


def print_tensorboard_command(root: str) -> None:
    print(f"\nTensorBoard: tensorboard --logdir {root}", flush=True)
