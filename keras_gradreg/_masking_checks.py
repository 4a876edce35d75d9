"""Gradient-masking sanity checks of a :class:`RobustnessReport`'s results.

After Athalye et al. (2018) and Carlini et al. (2019); each check is a dict
``{"check", ..., "passed", "message"}``:

* ``iterative_at_least_fgsm``: every other attack is at least as strong as
  FGSM at the same eps (when a single-step attack, one flagged
  ``single_step``, is among the attacks);
* ``monotone_in_eps``: accuracy never increases with eps (clean first);
* ``large_eps_to_chance``: at ``large_eps`` the strongest attack brings
  accuracy to at most chance + ``chance_margin``;
* ``whitebox_at_least_transfer``: white-box accuracy is at most every
  transfer accuracy against the same target;
* ``black_box_beats_white_box``: Square (score-based, no gradients) breaks
  at most ``BLACK_BOX_MARGIN`` of the examples that every gradient attack
  missed (Square and gradient attacks in the report, or AutoAttack with
  Square); more means the gradients are masked.
* ``attacks_agree``: no multi-step attack leaves more than
  ``attack_spread`` above the strongest multi-step attack at the same eps.
  A model trained to flatten one loss's gradient (Logit-reg the logit
  margin, Xent-reg the cross-entropy) resists attacks that follow that loss;
  such a column overstates its robustness.
"""

from __future__ import annotations

import numpy as np

from keras_gradreg import attacks as attacks_lib
from keras_gradreg._evaluation_core import eps_key
from keras_gradreg.attacks.autoattack import VERSIONS

# Attacks that follow the model's input gradient.
GRADIENT_ATTACKS = (
    attacks_lib.fgsm, attacks_lib.bim, attacks_lib.cw_linf, attacks_lib.pgd,
    attacks_lib.apgd, attacks_lib.apgd_t, attacks_lib.fab_t,
)
# Share of examples Square may break beyond every gradient attack.
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


def masking_checks(report, results: dict, num_classes: int) -> list:
    """All checks of ``report`` (a RobustnessReport) on its ``results``."""
    checks = []
    for model in report.models:
        checks += _fgsm_checks(report, model, results[model])
        checks += _monotone_checks(report, model, results[model])
        checks += _agreement_checks(report, model, results[model])
        checks += _black_box_checks(model, results[model])
        if report.large_eps is not None:
            checks.append(
                _chance_check(report, model, results[model], num_classes)
            )
    return checks + _transfer_checks(report, results)


def _fgsm_checks(report, model: str, entry: dict) -> list:
    fgsm = [n for n, (fn, _) in report.attacks.items()
            if attacks_lib.is_single_step(fn)]
    if not fgsm:
        return []
    checks = []
    for attack in report.attacks:
        for eps in map(eps_key, report.eps_values):
            if attack == fgsm[0]:
                continue
            acc, fgsm_acc = entry[attack][eps], entry[fgsm[0]][eps]
            checks.append(_check(
                "iterative_at_least_fgsm", acc <= fgsm_acc + report.tolerance,
                f"{model}: {attack} ({acc:.2%}) is weaker than FGSM "
                f"({fgsm_acc:.2%}) at eps={eps}: the attack may be weak "
                "or the gradients masked.",
                model=model, attack=attack, eps=eps,
            ))
    return checks


def _agreement_checks(report, model: str, entry: dict) -> list:
    multi_step = [n for n, (fn, _) in report.attacks.items()
                  if not attacks_lib.is_single_step(fn)]
    if len(multi_step) < 2:
        return []
    checks = []
    for eps in map(eps_key, report.eps_values):
        strongest = min(multi_step, key=lambda name: entry[name][eps])
        best = entry[strongest][eps]
        for attack in multi_step:
            acc = entry[attack][eps]
            checks.append(_check(
                "attacks_agree", acc <= best + report.attack_spread,
                f"{model}: {attack} ({acc:.2%}) leaves {100 * (acc - best):.1f} "
                f"points more than {strongest} ({best:.2%}) at eps={eps}: its "
                "loss may be masked for this model; read the worst case.",
                model=model, attack=attack, eps=eps,
            ))
    return checks


def _monotone_checks(report, model: str, entry: dict) -> list:
    checks = []
    for attack in report.attacks:
        series = [("0", entry["clean"])] + [
            (e, entry[attack][e]) for e in map(eps_key, report.eps_values)
        ]
        rises = [
            f"{a[1]:.2%} at eps={a[0]} -> {b[1]:.2%} at eps={b[0]}"
            for a, b in zip(series, series[1:])
            if b[1] > a[1] + report.tolerance
        ]
        checks.append(_check(
            "monotone_in_eps", not rises,
            f"{model}: accuracy under {attack} increases with eps: "
            + ", ".join(rises) + ".",
            model=model, attack=attack,
        ))
    return checks


def _chance_check(report, model: str, entry: dict, num_classes: int) -> dict:
    best = min(entry["large_eps"][a] for a in report.attacks)
    bound = 1.0 / num_classes + report.chance_margin
    return _check(
        "large_eps_to_chance", best <= bound,
        f"{model}: at eps={report.large_eps:g} the strongest attack leaves "
        f"{best:.2%} accuracy, above chance + margin ({bound:.2%}): the "
        "attacks may be failing.",
        model=model, eps=eps_key(report.large_eps),
    )


def _transfer_checks(report, results: dict) -> list:
    checks = []
    matrix = results["transfer"]
    for target in report.models:
        for attack in report.attacks:
            white = matrix[target][target][attack]
            for source in report.models:
                if source == target:
                    continue
                moved = matrix[source][target][attack]
                checks.append(_check(
                    "whitebox_at_least_transfer",
                    white <= moved + report.tolerance,
                    f"{target}: white-box {attack} ({white:.2%}) is weaker "
                    f"than {attack} transferred from {source} ({moved:.2%}) "
                    f"at eps={report.transfer_eps:g}: a sign of masked "
                    "gradients.",
                    model=target, source=source, attack=attack,
                    eps=eps_key(report.transfer_eps),
                ))
    return checks


def black_box_only(report, correct: dict, model: str, eps: float):
    """Share of examples only Square broke, or None without Square.

    ``correct`` maps ``(source, target, attack, eps)`` to per-example
    correctness and ``("broken_by", model, attack, eps)`` to AutoAttack's
    per-example breakers. Examples Square broke while classified correctly
    by every gradient attack of the report count; so do the examples that
    AutoAttack's Square broke (which all its gradient attacks missed) and
    the report's other gradient attacks missed too.
    """
    shares = []
    kinds = {name: fn for name, (fn, _) in report.attacks.items()}
    gradient = [n for n, fn in kinds.items() if fn in GRADIENT_ATTACKS]
    squares = [n for n, fn in kinds.items() if fn is attacks_lib.square]
    missed = correct[("clean", model)].copy()
    for name in gradient:
        missed &= correct[(model, model, name, eps)]
    if gradient:
        for name in squares:
            shares.append(float(np.mean(
                missed & ~correct[(model, model, name, eps)]
            )))
    for name, fn in kinds.items():
        names = correct.get(("broken_by", model, name, eps))
        if fn is attacks_lib.autoattack and names is not None:
            version = report.attacks[name][1].get("version", "standard")
            if "square" in VERSIONS[version]:
                shares.append(float(np.mean(missed & (names == "square"))))
    return max(shares) if shares else None


def _black_box_checks(model: str, entry: dict) -> list:
    return [
        _check(
            "black_box_beats_white_box", share <= BLACK_BOX_MARGIN,
            f"{model}: Square (black-box, no gradients) breaks {share:.2%} "
            f"of the examples that every gradient attack missed at eps={eps}:"
            " the gradients are likely masked; read the Square, autoattack "
            "and worst-case columns.",
            model=model, eps=eps,
        )
        for eps, share in entry.get("black_box_only", {}).items()
    ]
