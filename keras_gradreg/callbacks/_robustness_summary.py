"""log_robustness: robust accuracy against eps, one TensorBoard chart per attack."""

from __future__ import annotations

from typing import Mapping

import tensorflow as tf

from keras_gradreg import _checks
from keras_gradreg.callbacks._summary import check_log_dir

EPS_STEP_SCALE = 1000


def _eps_step(eps_key) -> int:
    try:
        eps = float(eps_key)
    except (TypeError, ValueError) as error:
        raise ValueError(f"eps keys must be numbers, got {eps_key!r}.") from error
    return int(round(EPS_STEP_SCALE * _checks.number("eps", eps, 0.0)))


def log_robustness(log_dir, results: Mapping[str, object]) -> dict:
    """Writes robust accuracy against eps as one TensorBoard chart per attack.

    ``results`` is one model's entry of
    :meth:`keras_gradreg.RobustnessReport.run` (``{"clean": acc, "<attack>":
    {"<eps>": acc}, "worst_case": {"<eps>": acc}}``; its ``large_eps``
    check is left out). For each attack (and
    ``worst_case``) the accuracies are written into ``log_dir`` as the
    scalar ``robust_accuracy_vs_eps/<attack>`` with **step = round(1000 *
    eps)**: TensorBoard's x axis is an integer step, and eps in thousandths
    of the input unit keeps the paper's eps exact (0.1 is step 100 on MNIST,
    3/255-scale pixels 3 is step 3000 on CIFAR-10).

    Why this layout: in the Time Series dashboard each tag is one card, and
    the runs of an experiment (one per model) are its lines, so the card
    ``robust_accuracy_vs_eps/fgsm`` reads like the paper's accuracy-vs-eps
    comparison, one model per line. A custom-scalars layout over per-eps
    tags would plot accuracy against training epochs instead, with one line
    per model and eps, which does not show the eps trend.

    Args:
        log_dir: The run's folder, e.g. ``logs/logit_reg``.
        results: One model's results.

    Returns:
        The same accuracies as flat metrics for :func:`log_hparams`:
        ``{"final/clean_accuracy": ..., "final/<attack>/eps_<eps>": ...}``.

    Raises:
        TypeError: For results of the wrong shape.
        ValueError: For an eps key that is not a finite number >= 0.

    Example:
        >>> import tempfile
        >>> entry = {"clean": 0.99, "noise": {"0.1": 0.8, "0.2": 0.4}}
        >>> log_robustness(tempfile.mkdtemp(), entry)["final/noise/eps_0.2"]
        0.4
    """
    log_dir = check_log_dir(log_dir)
    if not isinstance(results, Mapping):
        raise TypeError(f"results must be a dict, got {results!r}.")
    metrics = {}
    curves = {}
    for attack, value in results.items():
        if attack == "large_eps":  # the report's masking check, not a curve
            continue
        if _checks.is_number(value):
            key = "clean_accuracy" if attack == "clean" else attack
            metrics[f"final/{key}"] = float(value)
        elif isinstance(value, Mapping):
            curves[attack] = sorted(
                (_eps_step(eps), float(acc)) for eps, acc in value.items())
            for eps, acc in value.items():
                metrics[f"final/{attack}/eps_{float(eps):g}"] = float(acc)
        else:
            raise TypeError(
                f"results[{attack!r}] must be a number or {{eps: accuracy}}, "
                f"got {value!r}.")
    writer = tf.summary.create_file_writer(log_dir)
    with writer.as_default():
        for attack, points in curves.items():
            for step, accuracy in points:
                tf.summary.scalar(
                    f"robust_accuracy_vs_eps/{attack}", accuracy, step=step,
                    description="Accuracy under the attack; step = "
                    f"round({EPS_STEP_SCALE} * eps).")
    writer.close()
    return metrics
