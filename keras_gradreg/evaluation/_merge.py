"""Joining the shards of one evaluation (``Results.merge``).

Each shard of ``RobustnessReport.run(shard=(i, n))`` holds the per-example
arrays of some chunks of the data and records which examples they are
(``settings["examples"]``, runs of indices). :func:`join` checks that the
parts belong to one evaluation and do not overlap, and puts their arrays
back in data order; :func:`merged` builds the joined results and their
masking checks.
"""

from __future__ import annotations

from typing import Sequence, Tuple

import numpy as np

from keras_gradreg.evaluation import _chunks
from keras_gradreg.evaluation import _environment
from keras_gradreg.evaluation import _masking

PART_KEYS = ("shard", "examples", "total_examples", "num_examples")
"""Settings in which the shards of one evaluation differ."""


def common_settings(results) -> dict:
    """The settings of ``results`` that every shard of its run shares."""
    return {key: value for key, value in results.settings.items()
            if key not in PART_KEYS}


def _check_same_run(parts: Sequence) -> dict:
    """The shared settings of ``parts``; ValueError if they differ."""
    first = common_settings(parts[0])
    for number, part in enumerate(parts[1:], 1):
        other = common_settings(part)
        if other != first or part.model_names != parts[0].model_names:
            differ = sorted(k for k in set(first) | set(other)
                            if first.get(k) != other.get(k))
            raise ValueError(
                f"Results {number} and 0 are not parts of one "
                f"evaluation: they differ in "
                f"{', '.join(differ) or 'models'}.")
    if len(parts) > 1:
        for number, part in enumerate(parts):
            if "examples" not in part.settings:
                raise ValueError(
                    f"Results {number} are not a shard (no "
                    "settings['examples']): run each part with "
                    "RobustnessReport.run(..., shard=(i, n)).")
    return first


def join(parts: Sequence) -> Tuple[dict, dict]:
    """The per-example arrays and settings of the evaluation ``parts`` hold.

    Args:
        parts: Results of one evaluation's shards, each with its arrays.

    Returns:
        ``(correct, settings)``: every array of the parts joined in data
        order, and the shared settings with the examples held (all of them
        when the parts cover the data).

    Raises:
        ValueError: For no parts, parts of different evaluations or data
            sizes, or an example in more than one part.
        KeyError: If a part lacks its per-example arrays.
    """
    if not parts:
        raise ValueError("merge needs at least one Results.")
    first = _check_same_run(parts)
    totals = {part.settings.get("total_examples") for part in parts}
    if len(totals) > 1:
        raise ValueError(f"The parts come from data of different sizes: "
                         f"{sorted(t for t in totals if t is not None)}.")
    total = totals.pop()
    held = [_chunks.indices(part.settings.get(
        "examples", [[0, part.settings["num_examples"]]])) for part in parts]
    every = np.concatenate(held)
    order = np.argsort(every, kind="stable")
    ordered = every[order]
    repeated = ordered[1:][np.diff(ordered) == 0]
    if len(repeated):
        raise ValueError(
            f"The parts overlap: example {int(repeated[0])} (and "
            f"{len(repeated) - 1} more) is in more than one part.")
    correct = {key: np.concatenate([part._array(key) for part in parts])[
        order] for key in parts[0].array_keys()}
    settings = dict(first, num_examples=int(len(every)))
    if total is None or not np.array_equal(ordered, np.arange(total)):
        settings["examples"] = _chunks.ranges(ordered)
        settings["total_examples"] = total
    return correct, settings


def merged(results_type, parts: Sequence):
    """The ``results_type`` (:class:`Results`) of the joined ``parts``: its
    accuracies and masking checks computed anew from the joined arrays."""
    parts = list(parts)
    for part in parts:
        if not isinstance(part, results_type):
            raise TypeError(f"merge takes Results, got {type(part).__name__}.")
    correct, settings = join(parts)
    first = parts[0]
    results = results_type.from_correct(
        correct, first.model_names, first.attack_names, first.eps_values,
        first.transfer_eps, settings, large_eps=first.large_eps)
    _masking.record(results)
    environments = [env for part in parts for env in _environment.of(part)]
    if environments:
        _environment.record(results, environments)
    return results
