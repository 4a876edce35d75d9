"""Gradient-masking sanity checks, as functions of a :class:`Results`.

After Athalye et al. (2018) and Carlini et al. (2019); each check is a dict
``{"check", ..., "passed", "message"}``:

* ``iterative_at_least_fgsm``: every other attack is at least as strong as
  the single-step one (an attack flagged ``single_step``, FGSM) at the same
  eps, when one is among the attacks;
* ``monotone_in_eps``: accuracy never increases with eps (clean first);
* ``large_eps_to_chance``: at ``large_eps`` the strongest attack brings
  accuracy to at most chance + ``chance_margin``;
* ``whitebox_at_least_transfer``: white-box accuracy is at most every
  transfer accuracy against the same target;
* ``black_box_beats_white_box``: a black-box attack (flagged ``black_box``:
  Square, score-based, no gradients) breaks at most ``BLACK_BOX_MARGIN``
  of the examples that every gradient attack missed (a black-box and a
  gradient attack in the results, or an ensemble with a black-box part such
  as AutoAttack); more means the gradients are masked.
* ``attacks_agree``: no multi-step attack leaves more than
  ``attack_spread`` above the strongest multi-step attack at the same eps.
  A model trained to flatten one loss's gradient (Logit-reg the logit
  margin, Xent-reg the cross-entropy) resists attacks that follow that loss;
  such a column overstates its robustness.

The thresholds default to those in ``results.settings``; the kinds of the
attacks come from the registry (``keras_gradreg.attacks.ATTACKS``) through
the ``registered`` name each attack has in the settings.
"""

from __future__ import annotations

from typing import Callable, Optional

import numpy as np

from keras_gradreg import attacks as attacks_lib
from keras_gradreg.evaluation._tables import eps_key
from keras_gradreg.evaluation._tables import eps_keys

# Share of examples a black-box attack may break beyond every gradient attack.
BLACK_BOX_MARGIN = 0.01

_CHECKS = {
    "iterative_at_least_fgsm": "at least as strong as FGSM",
    "monotone_in_eps": "accuracy non-increasing in eps",
    "large_eps_to_chance": "accuracy at large eps at most chance + margin",
    "whitebox_at_least_transfer": "white-box at least as strong as transfer",
    "attacks_agree": "within attack_spread of the strongest multi-step attack",
    "black_box_beats_white_box": "Square breaks no more than 1% beyond the "
    "gradient attacks",
}


def _check(kind, passed, failure, **where) -> dict:
    """One masking check; ``message`` is ``failure`` when it did not pass."""
    message = failure if not passed else f"ok: {_CHECKS[kind]}"
    return {"check": kind, **where, "passed": bool(passed), "message": message}


def _keys(results) -> list:
    return eps_keys(results.eps_values)


def _registered(results, attack: str) -> Optional[Callable]:
    """The registry's function of a column, None for another callable."""
    name = results.settings["attacks"][attack].get("registered")
    return attacks_lib.ATTACKS.get(name) if name else None


def _single_step(results, attack: str) -> bool:
    return bool(results.settings["attacks"][attack].get("single_step"))


def _black_box_names() -> set:
    return {name for name, fn in attacks_lib.ATTACKS.items()
            if getattr(fn, "black_box", False)}


def masking_checks(results, tolerance: Optional[float] = None,
                   chance_margin: Optional[float] = None,
                   attack_spread: Optional[float] = None) -> list:
    """Every check on ``results``; thresholds default to its settings."""
    settings = results.settings
    tolerance = settings["tolerance"] if tolerance is None else tolerance
    chance_margin = (settings.get("chance_margin", 0.1)
                     if chance_margin is None else chance_margin)
    attack_spread = (settings["attack_spread"]
                     if attack_spread is None else attack_spread)
    checks = []
    # Worst-case mode: an attack's column is what is left after it and the
    # attacks before it, so checks that compare columns do not apply.
    compare = not results.worst_case_only
    for model in results.model_names:
        if compare:
            checks += _fgsm_checks(results, model, tolerance)
        checks += _monotone_checks(results, model, tolerance)
        if compare:
            checks += _agreement_checks(results, model, attack_spread)
        checks += _black_box_checks(results, model)
        if results.large_eps is not None:
            checks.append(_chance_check(results, model, chance_margin))
    return checks + (_transfer_checks(results, tolerance) if compare else [])


def record(results) -> list:
    """Computes the black-box shares and every check, and stores them in
    ``results`` (``masking_checks``, ``warnings``, each model's
    ``black_box_only``); returns the checks."""
    shares = {}
    for model in results.model_names:
        shares[model] = {
            key: share for key in _keys(results)
            if (share := black_box_only(results, model, key)) is not None}
    results._record_checks([], shares)
    checks = masking_checks(results)
    results._record_checks(checks, shares)
    return checks


def _fgsm_checks(results, model: str, tolerance: float) -> list:
    fgsm = [a for a in results.attack_names if _single_step(results, a)]
    if not fgsm:
        return []
    checks = []
    for attack in results.attack_names:
        for eps in _keys(results):
            if attack == fgsm[0]:
                continue
            acc = results.accuracy(model, attack, eps)
            fgsm_acc = results.accuracy(model, fgsm[0], eps)
            checks.append(_check(
                "iterative_at_least_fgsm", acc <= fgsm_acc + tolerance,
                f"{model}: {attack} ({acc:.2%}) is weaker than FGSM "
                f"({fgsm_acc:.2%}) at eps={eps}: the attack may be weak "
                "or the gradients masked.",
                model=model, attack=attack, eps=eps,
            ))
    return checks


def _agreement_checks(results, model: str, attack_spread: float) -> list:
    multi_step = [a for a in results.attack_names
                  if not _single_step(results, a)]
    if len(multi_step) < 2:
        return []
    checks = []
    for eps in _keys(results):
        strongest = min(multi_step,
                        key=lambda name: results.accuracy(model, name, eps))
        best = results.accuracy(model, strongest, eps)
        for attack in multi_step:
            acc = results.accuracy(model, attack, eps)
            checks.append(_check(
                "attacks_agree", acc <= best + attack_spread,
                f"{model}: {attack} ({acc:.2%}) leaves {100 * (acc - best):.1f} "
                f"points more than {strongest} ({best:.2%}) at eps={eps}: its "
                "loss may be masked for this model; read the worst case.",
                model=model, attack=attack, eps=eps,
            ))
    return checks


def _monotone_checks(results, model: str, tolerance: float) -> list:
    checks = []
    for attack in results.attack_names:
        series = [("0", results.accuracy(model))] + [
            (e, results.accuracy(model, attack, e)) for e in _keys(results)
        ]
        rises = [
            f"{a[1]:.2%} at eps={a[0]} -> {b[1]:.2%} at eps={b[0]}"
            for a, b in zip(series, series[1:])
            if b[1] > a[1] + tolerance
        ]
        checks.append(_check(
            "monotone_in_eps", not rises,
            f"{model}: accuracy under {attack} increases with eps: "
            + ", ".join(rises) + ".",
            model=model, attack=attack,
        ))
    return checks


def _chance_check(results, model: str, chance_margin: float) -> dict:
    large = results.large_eps
    best = min(results.accuracy(model, a, large) for a in results.attack_names)
    bound = 1.0 / results.settings["num_classes"] + chance_margin
    return _check(
        "large_eps_to_chance", best <= bound,
        f"{model}: at eps={large:g} the strongest attack leaves "
        f"{best:.2%} accuracy, above chance + margin ({bound:.2%}): the "
        "attacks may be failing.",
        model=model, eps=eps_key(large),
    )


def _transfer_checks(results, tolerance: float) -> list:
    checks = []
    models, eps = results.model_names, results.transfer_eps
    for target in models:
        for attack in results.attack_names:
            white = results.transfer(target, target, attack)
            for source in models:
                if source == target:
                    continue
                moved = results.transfer(source, target, attack)
                checks.append(_check(
                    "whitebox_at_least_transfer", white <= moved + tolerance,
                    f"{target}: white-box {attack} ({white:.2%}) is weaker "
                    f"than {attack} transferred from {source} ({moved:.2%}) "
                    f"at eps={eps:g}: a sign of masked gradients.",
                    model=target, source=source, attack=attack, eps=eps_key(eps),
                ))
    return checks


def black_box_only(results, model: str, eps) -> Optional[float]:
    """Share of examples only a black-box attack broke, or None without one.

    Examples a black-box attack of the results broke while every gradient
    attack of the results (a registered attack, neither black-box nor an
    ensemble) left them classified correctly count; so do the examples that
    an ensemble's black-box part broke (which all its gradient parts missed)
    and the results' gradient attacks missed too. Needs the per-example
    arrays (:meth:`Results.correct`, :meth:`Results.breakers`).
    """
    if results.worst_case_only:
        return _black_box_only_worst_case(results, model, eps)
    shares = []
    kinds = {name: _registered(results, name) for name in results.attack_names}
    black_box = _black_box_names()
    gradient = [n for n, fn in kinds.items() if fn is not None
                and not getattr(fn, "black_box", False)
                and not hasattr(fn, "parts")]
    blind = [n for n, fn in kinds.items() if getattr(fn, "black_box", False)]
    missed = results.correct(model)
    for name in gradient:
        missed &= results.correct(model, name, eps)
    if gradient:
        for name in blind:
            shares.append(float(np.mean(
                missed & ~results.correct(model, name, eps))))
    reported = results.model_entry(model).get("broken_by", {})
    for name, fn in kinds.items():
        parts = getattr(fn, "parts", None)
        if parts is None or eps_key(eps) not in reported.get(name, {}):
            continue
        options = results.settings["attacks"][name]["kwargs"]
        if black_box & set(parts(**options)):
            names = results.breakers(model, name, eps)
            shares.append(float(np.mean(missed & np.isin(names,
                                                         list(black_box)))))
    return max(shares) if shares else None


def _black_box_only_worst_case(results, model: str, eps) -> Optional[float]:
    """:func:`black_box_only` of a worst-case-only report: a black-box
    attack (run after the gradient attacks) broke what the attacks before
    it left; an ensemble's black-box part, what its gradient parts and the
    attacks before it left."""
    black_box = _black_box_names()
    reported = results.model_entry(model).get("broken_by", {})
    shares, before, gradient_before = [], results.correct(model), False
    for name in results.attack_names:
        fn = _registered(results, name)
        after = results.correct(model, name, eps)
        parts = getattr(fn, "parts", None)
        if getattr(fn, "black_box", False):
            if gradient_before:
                shares.append(float(np.mean(before & ~after)))
        elif parts is not None:
            options = results.settings["attacks"][name]["kwargs"]
            if (black_box & set(parts(**options))
                    and eps_key(eps) in reported.get(name, {})):
                names = results.breakers(model, name, eps)
                shares.append(float(np.mean(before & np.isin(
                    names, list(black_box)))))
            gradient_before = True
        elif fn is not None:
            gradient_before = True
        before = after
    return max(shares) if shares else None


def _black_box_checks(results, model: str) -> list:
    shares = results.model_entry(model).get("black_box_only", {})
    return [
        _check(
            "black_box_beats_white_box", share <= BLACK_BOX_MARGIN,
            f"{model}: Square (black-box, no gradients) breaks {share:.2%} "
            f"of the examples that every gradient attack missed at eps={eps}:"
            " the gradients are likely masked; read the Square, autoattack "
            "and worst-case columns.",
            model=model, eps=eps,
        )
        for eps, share in shares.items()
    ]
