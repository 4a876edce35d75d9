"""Fig. 2 and Fig. 3 of Yu et al. from TensorBoard event files.

Reads runs written by ``keras.callbacks.TensorBoard`` (``epoch_accuracy``,
and ``epoch_grad_loss`` for a ``GradRegModel``) and the callbacks of
``keras_gradreg.callbacks``: ``GradientNormLogger``
(``input_gradient/grad_loss``) and ``WeightHistogramLogger``
(``weights/<layer>/kernel``), with TensorBoard's own ``EventAccumulator``
(TF2 writes scalars and histograms as tensor summaries), and draws

* Fig. 2: accuracy (validation accuracy where logged, else training
  accuracy; the panel's title says which) and gradient loss of each run
  during training;
* Fig. 3: the kernel histograms of chosen layers (``conv1``, ``fc2``) at
  the first and last logged epoch, one column per run.

The callbacks log at epoch ends with the epoch's index as the step (0 for
the first epoch); the figures number epochs from 1, as Keras' progress bar
and ``training_curves.png`` do.

:func:`render` is what ``examples/plot_training.py`` (the command line) and
the experiments (``examples/_experiment.py``, after training) call. Needs
``matplotlib`` and ``tensorboard`` (the ``examples`` extra); drawing uses
matplotlib's object API, never pyplot's global state.

Example:
    >>> render({"natural": "runs/mnist/logs/natural"}, "plots",
    ...        ["conv1", "fc2"])  # doctest: +SKIP
    {'fig2': 'plots/fig2_training_curves.png', ...}
"""

from __future__ import annotations

import json
import logging
import os
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
from matplotlib.figure import Figure
from tensorboard.backend.event_processing import event_accumulator
from tensorboard.util import tensor_util

Curve = Tuple[np.ndarray, np.ndarray]
Histogram = Tuple[int, np.ndarray]

# Tags tried in order: (run sub-directory, tag).
ACCURACY_TAGS = (("validation", "epoch_accuracy"), ("train", "epoch_accuracy"))
GRAD_LOSS_TAGS = (
    ("train", "input_gradient/grad_loss"),
    ("validation", "input_gradient/grad_loss"),
    ("train", "epoch_grad_loss"),
)


def parse_logdirs(spec: str) -> Dict[str, str]:
    """Parses ``"name=dir,name=dir"`` into an ordered ``{name: dir}``.

    Raises:
        ValueError: For an empty spec, a pair without ``=`` or a repeated name.

    Example:
        >>> parse_logdirs("natural=runs/a,logit_reg=runs/b")
        {'natural': 'runs/a', 'logit_reg': 'runs/b'}
    """
    runs = {}
    pairs = (part.strip() for part in (spec or "").split(","))
    for pair in filter(None, pairs):
        name, sep, path = pair.partition("=")
        if not sep or not name or not path:
            raise ValueError(f"Expected name=log_dir, got {pair!r}.")
        if name in runs:
            raise ValueError(f"Run name {name!r} appears twice.")
        runs[name] = path
    if not runs:
        raise ValueError("--logdirs needs at least one name=log_dir pair.")
    return runs


def _load(run_dir: str) -> event_accumulator.EventAccumulator:
    """Loads every event of a run directory (no reservoir sampling).

    TensorBoard's loader logs one INFO line per event file it moves past
    ("Directory watcher advancing ..."); they are silenced while it reads.
    """
    guidance = {kind: 0 for kind in event_accumulator.DEFAULT_SIZE_GUIDANCE}
    accumulator = event_accumulator.EventAccumulator(
        run_dir, size_guidance=guidance
    )
    logger = logging.getLogger("tensorboard")
    level = logger.level
    logger.setLevel(max(level, logging.WARNING))
    try:
        return accumulator.Reload()
    finally:
        logger.setLevel(level)


def _tensor_tags(accumulator, plugin: str) -> List[str]:
    return [
        tag
        for tag in accumulator.Tags()["tensors"]
        if accumulator.SummaryMetadata(tag).plugin_data.plugin_name == plugin
    ]


def read_scalars(run_dir: str) -> Dict[str, Curve]:
    """Returns ``{tag: (steps, values)}`` for the scalars in one run dir.

    Example:
        >>> read_scalars("runs/a/train")["epoch_accuracy"]  # doctest: +SKIP
        (array([0, 1, 2]), array([0.61, 0.83, 0.88]))
    """
    if not os.path.isdir(run_dir):
        return {}
    accumulator = _load(run_dir)
    scalars = {}
    for tag in _tensor_tags(accumulator, "scalars"):
        events = accumulator.Tensors(tag)
        steps = np.array([event.step for event in events])
        values = np.array(
            [float(tensor_util.make_ndarray(event.tensor_proto))
             for event in events]
        )
        scalars[tag] = (steps, values)
    return scalars


def read_histograms(run_dir: str) -> Dict[str, List[Histogram]]:
    """Returns ``{tag: [(step, buckets), ...]}`` for one run dir.

    ``buckets`` is a ``(k, 3)`` array of ``(left edge, right edge, count)``
    rows, the layout of TF2 histogram summaries.
    """
    if not os.path.isdir(run_dir):
        return {}
    accumulator = _load(run_dir)
    return {
        tag: [
            (event.step, tensor_util.make_ndarray(event.tensor_proto))
            for event in accumulator.Tensors(tag)
        ]
        for tag in _tensor_tags(accumulator, "histograms")
    }


def _first_curve(log_dir: str, candidates) -> Optional[Curve]:
    cache = {}
    for run, tag in candidates:
        if run not in cache:
            cache[run] = read_scalars(os.path.join(log_dir, run))
        if tag in cache[run]:
            return cache[run][tag]
    return None


def training_curves(log_dir: str) -> Dict[str, Optional[Curve]]:
    """Returns the Fig. 2 curves of one run: ``accuracy`` and ``grad_loss``.

    Accuracy is the validation (test) accuracy when logged, else the
    training accuracy (``accuracy_of`` says which: ``"validation"`` or
    ``"train"``); the gradient loss is ``GradientNormLogger``'s, else
    ``GradRegModel``'s ``epoch_grad_loss``. A missing curve is ``None``.
    """
    accuracy, accuracy_of = None, None
    for run, tag in ACCURACY_TAGS:
        accuracy = _first_curve(log_dir, ((run, tag),))
        if accuracy is not None:
            accuracy_of = run
            break
    return {
        "accuracy": accuracy,
        "accuracy_of": accuracy_of,
        "grad_loss": _first_curve(log_dir, GRAD_LOSS_TAGS),
    }


def _epochs(curve: Curve) -> Curve:
    """A curve logged at epoch indices (0, 1, ...) over epochs 1, 2, ..."""
    steps, values = curve
    return steps + 1, values


def weight_histograms(log_dir: str, layer: str) -> List[Histogram]:
    """Returns the kernel histograms of ``layer``, first and last step.

    Reads ``WeightHistogramLogger``'s ``weights/<layer>/kernel``, else a
    ``keras.callbacks.TensorBoard`` tag ending in ``<layer>/kernel/histogram``.

    Raises:
        KeyError: If the run has no kernel histogram for ``layer``.
    """
    histograms = read_histograms(os.path.join(log_dir, "train"))
    tag = f"weights/{layer}/kernel"
    if tag not in histograms:
        suffix = f"{layer}/kernel/histogram"
        matches = [name for name in histograms if name.endswith(suffix)]
        if not matches:
            raise KeyError(
                f"No kernel histogram of layer {layer!r} in {log_dir}; "
                f"histogram tags there: {sorted(histograms)}."
            )
        tag = matches[0]
    series = sorted(histograms[tag], key=lambda item: item[0])
    return [series[0], series[-1]] if len(series) > 1 else series


def plot_curves(curves: Dict[str, Dict[str, Optional[Curve]]],
                path: str) -> Figure:
    """Draws Fig. 2: accuracy and gradient loss of each run, side by side;
    saves it to ``path`` and returns it."""
    figure = Figure(figsize=(10, 4))
    accuracy_axis, loss_axis = figure.subplots(1, 2)
    for name, run in curves.items():
        if run["accuracy"] is not None:
            accuracy_axis.plot(*_epochs(run["accuracy"]), marker=".",
                               label=name)
        if run["grad_loss"] is not None:
            loss_axis.plot(*_epochs(run["grad_loss"]), marker=".", label=name)
    kinds = {run.get("accuracy_of") for run in curves.values()
             if run["accuracy"] is not None}
    title = {frozenset({"validation"}): "Validation accuracy",
             frozenset({"train"}): "Training accuracy"}.get(
                 frozenset(kinds), "Accuracy (validation where logged)")
    accuracy_axis.set(xlabel="epoch", ylabel="accuracy", title=title)
    loss_axis.set(xlabel="epoch", ylabel="gradient loss", title="Gradient loss")
    positive = all(
        np.all(run["grad_loss"][1] > 0)
        for run in curves.values()
        if run["grad_loss"] is not None
    )
    if positive and loss_axis.lines:
        loss_axis.set_yscale("log")
    for axis in (accuracy_axis, loss_axis):
        if axis.lines:
            axis.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    return figure


def _draw_histogram(axis, buckets: np.ndarray, label: str):
    left, right, counts = buckets[:, 0], buckets[:, 1], buckets[:, 2]
    widths = np.maximum(right - left, 1e-12)
    density = counts / max(counts.sum(), 1.0) / widths
    axis.stairs(density, np.append(left, right[-1]), label=label, fill=True,
                alpha=0.5)


def plot_histograms(
    histograms: Dict[str, Dict[str, List[Histogram]]],
    layers: Sequence[str],
    path: str,
) -> Figure:
    """Draws Fig. 3: one row per layer, one column per run, early vs late;
    saves it to ``path`` and returns it."""
    names = list(histograms)
    figure = Figure(figsize=(4 * len(names), 3 * len(layers)))
    axes = figure.subplots(len(layers), len(names), squeeze=False)
    for row, layer in enumerate(layers):
        for column, name in enumerate(names):
            axis = axes[row][column]
            for step, buckets in histograms[name][layer]:
                _draw_histogram(axis, buckets, f"after epoch {step + 1}")
            axis.set(title=f"{name}: {layer}", xlabel="weight",
                     ylabel="density")
            axis.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    return figure


def _as_json(curves, histograms) -> dict:
    def curve(value):
        if value is None:
            return None
        return {"steps": value[0].tolist(), "values": value[1].tolist()}

    return {
        name: {
            "accuracy": curve(run["accuracy"]),
            "accuracy_of": run.get("accuracy_of"),
            "grad_loss": curve(run["grad_loss"]),
            "weight_std": {
                layer: {
                    str(step): float(_bucket_std(buckets))
                    for step, buckets in series
                }
                for layer, series in histograms[name].items()
            },
        }
        for name, run in curves.items()
    }


def _bucket_std(buckets: np.ndarray) -> float:
    centers = (buckets[:, 0] + buckets[:, 1]) / 2
    counts = buckets[:, 2]
    mean = np.average(centers, weights=counts)
    return float(np.sqrt(np.average((centers - mean) ** 2, weights=counts)))


def render(runs: Dict[str, str], out: str, layers: Sequence[str]) -> dict:
    """Reads every run and writes both figures and ``curves.json``.

    Returns:
        ``{"fig2": path, "fig3": path, "json": path}``.
    """
    os.makedirs(out, exist_ok=True)
    curves = {name: training_curves(path) for name, path in runs.items()}
    histograms = {
        name: {layer: weight_histograms(path, layer) for layer in layers}
        for name, path in runs.items()
    }
    paths = {
        "fig2": os.path.join(out, "fig2_training_curves.png"),
        "fig3": os.path.join(out, "fig3_weight_histograms.png"),
        "json": os.path.join(out, "curves.json"),
    }
    plot_curves(curves, paths["fig2"])
    plot_histograms(histograms, layers, paths["fig3"])
    with open(paths["json"], "w") as handle:
        json.dump(_as_json(curves, histograms), handle, indent=2)
    return paths
