"""Accuracy tables from per-example correctness.

Every accuracy of :class:`~keras_gradreg.evaluation.Results` is the mean of
a boolean array; the worst case is per example (the clean prediction and
every attack must hold), as AutoAttack reports robust accuracy.
"""

from __future__ import annotations

from typing import Optional, Sequence, Union

import numpy as np


def eps_key(eps: Union[float, str]) -> str:
    """The key of ``eps`` in results, e.g. ``"0.1"`` for 0.1 or ``"0.10"``."""
    return f"{float(eps):g}"


def tables(correct: dict, model_names: Sequence[str],
           attack_names: Sequence[str], eps_values: Sequence[float],
           transfer_eps: float, large_eps: Optional[float],
           with_transfer: bool = True) -> tuple:
    """``(models, transfer)``: each model's entry ``{"clean": acc,
    <attack>: {eps: acc}, "worst_case": {eps: acc}, "broken_by": ...,
    "large_eps": ...}`` and the matrix ``{source: {target: {attack: acc}}}``
    at ``transfer_eps``, from the arrays of ``correct`` (keys as
    :meth:`Results.from_correct` takes them). Without ``with_transfer``
    the matrix holds its diagonal (white-box) only."""
    keys = [eps_key(e) for e in eps_values]
    models = {}
    for model in model_names:
        clean = np.asarray(correct[("clean", model)], bool)
        entry = {"clean": float(clean.mean())}
        worst = {}
        for key in keys:
            robust = clean.copy()
            for attack in attack_names:
                hit = correct[("white_box", model, attack, key)]
                entry.setdefault(attack, {})[key] = float(np.mean(hit))
                robust &= hit
            worst[key] = float(robust.mean())
        entry["worst_case"] = worst
        shares = _breaker_shares(correct, model, attack_names, keys)
        if shares:
            entry["broken_by"] = shares
        if large_eps is not None:
            entry["large_eps"] = {"eps": float(large_eps)}
            for attack in attack_names:
                hit = correct[("white_box", model, attack,
                               eps_key(large_eps))]
                entry["large_eps"][attack] = float(np.mean(hit))
        models[model] = entry
    transfer = {
        source: {target: {attack: (
            models[target][attack][eps_key(transfer_eps)]
            if source == target else
            float(np.mean(correct[("transfer", source, target, attack)])))
            for attack in attack_names} for target in model_names
            if with_transfer or source == target}
        for source in model_names
    }
    return models, transfer


def _breaker_shares(correct: dict, model: str, attacks: Sequence[str],
                    keys: Sequence[str]) -> dict:
    """``{attack: {eps: {part: share}}}`` for the attacks that report
    which part broke each example (AutoAttack's ``broken_by``)."""
    found = {}
    for attack in attacks:
        for key in keys:
            names = correct.get(("broken_by", model, attack, key))
            if names is None:
                continue
            names = np.asarray(names)
            parts, counts = np.unique(names[names != ""], return_counts=True)
            found.setdefault(attack, {})[key] = {
                str(p): float(c) / len(names) for p, c in zip(parts, counts)}
    return found
