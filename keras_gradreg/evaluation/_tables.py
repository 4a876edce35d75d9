"""Accuracy tables from per-example correctness.

Every accuracy of :class:`~keras_gradreg.evaluation.Results` is the mean of
a boolean array; the worst case is per example (the clean prediction and
every attack must hold), as AutoAttack reports robust accuracy.
"""

from __future__ import annotations

from typing import Callable, List, Optional, Sequence, Union

import numpy as np


def eps_key(eps: Union[float, str]) -> str:
    """The key of ``eps`` in results, e.g. ``"0.1"`` for 0.1 or ``"0.10"``."""
    return f"{float(eps):g}"


def eps_keys(eps_values: Sequence[float],
             large_eps: Optional[float] = None) -> List[str]:
    """The keys of ``eps_values``, then that of ``large_eps`` if it is
    another radius."""
    keys = [eps_key(e) for e in eps_values]
    if large_eps is not None and eps_key(large_eps) not in keys:
        keys.append(eps_key(large_eps))
    return keys


def worst_case(array: Callable[[tuple], np.ndarray], model: str,
               attack_names: Sequence[str], key: str) -> np.ndarray:
    """Per example, whether ``model``'s clean prediction and every attack
    at the eps ``key`` left it correct; ``array`` gives the per-example
    array of a key."""
    robust = np.asarray(array(("clean", model)), bool).copy()
    for attack in attack_names:
        robust &= np.asarray(array(("white_box", model, attack, key)), bool)
    return robust


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
        for attack in attack_names:
            entry[attack] = {key: float(np.mean(
                correct[("white_box", model, attack, key)])) for key in keys}
        entry["worst_case"] = {key: float(worst_case(
            correct.__getitem__, model, attack_names, key).mean())
            for key in keys}
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


def array_keys(model_names: Sequence[str], attack_names: Sequence[str],
               eps_values: Sequence[float], large_eps: Optional[float],
               broken_by: dict, with_transfer: bool = True) -> List[tuple]:
    """The keys of the per-example arrays behind :func:`tables`.

    Args:
        model_names: The models, in table order.
        attack_names: The attacks, in table order.
        eps_values: The radii of the tables.
        large_eps: The radius of the "accuracy to chance" check, or None.
        broken_by: Model -> its entry's ``broken_by`` (``{attack: {eps:
            shares}}``), for the attacks that say which part broke each
            example.
        with_transfer: Whether the transfer attacks ran.

    Example:
        >>> array_keys(["a"], ["fgsm"], [0.1], None, {"a": {}})
        [('clean', 'a'), ('white_box', 'a', 'fgsm', '0.1')]
    """
    all_eps, keys = eps_keys(eps_values, large_eps), []
    for model in model_names:
        keys.append(("clean", model))
        keys += [("white_box", model, attack, key)
                 for attack in attack_names for key in all_eps]
        for attack, by_eps in broken_by.get(model, {}).items():
            keys += [("broken_by", model, attack, key) for key in by_eps]
    if with_transfer:
        keys += [("transfer", source, target, attack)
                 for source in model_names for target in model_names
                 for attack in attack_names if source != target]
    return keys


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
