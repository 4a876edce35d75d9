"""The settings of a :class:`~keras_gradreg.RobustnessReport`, checked.

What the report's arguments become (the attacks in one norm and in run
order, the radii, the shard), the settings recorded in its results, and
the identity that a resumed run must share with the run whose chunks it
reads.

Example:
    >>> eps_list(0.1), eps_list([0.3, 0.1])
    ([0.1], [0.1, 0.3])
    >>> shard(None), shard((1, 4))
    ((0, 1), (1, 4))
"""

from __future__ import annotations

from typing import Tuple

from keras_gradreg import _checks
from keras_gradreg import attacks as attacks_lib
from keras_gradreg.evaluation import _batches
from keras_gradreg.evaluation import _chunks
from keras_gradreg.evaluation._layout import ENTRY_KEYS


def shard(value) -> Tuple[int, int]:
    """``(index, count)`` of ``value``: None (the whole run) or
    ``(i, n)`` with ``0 <= i < n``."""
    if value is None:
        return 0, 1
    if (not isinstance(value, (tuple, list)) or len(value) != 2
            or not all(_checks.is_number(v) for v in value)):
        raise TypeError(f"shard must be a pair (index, count), got {value!r}.")
    count = _checks.integer("shard count", value[1], 1)
    index = _checks.integer("shard index", value[0], 0)
    if index >= count:
        raise ValueError(f"shard index {index} must be below the shard "
                         f"count {count}.")
    return index, count


def eps_list(eps_values) -> list:
    """The radii, each > 0 and given once, ascending; a bare number is a
    one-element list."""
    if _checks.is_number(eps_values):
        eps_values = [eps_values]
    if eps_values is None or isinstance(eps_values, str) or not hasattr(
            eps_values, "__iter__"):
        raise _checks.ArgumentTypeError(
            "eps_values must be a radius > 0 or an iterable of them, e.g. "
            f"(0.1, 0.2, 0.3), got {eps_values!r}."
        )
    checked = sorted(
        _checks.number("eps", e, 0.0, strict=True) for e in eps_values
    )
    if not checked:
        raise ValueError("eps_values is empty.")
    if len(set(checked)) != len(checked):
        raise ValueError(
            f"eps_values repeats a radius: {list(eps_values)}; give each "
            "eps once."
        )
    return checked


def attack_specs(attacks, norm: str) -> dict:
    """Name -> ``(function, kwargs)`` of every attack in ``norm``, the
    headline attack first.

    Raises:
        TypeError: For attacks that are not a list of names or a dict.
        ValueError: For no attacks, a reserved name, or an attack that
            does not support ``norm`` or has another ``norm`` option.
    """
    specs = _in_norm(_normalized(attacks), norm)
    for name in specs:
        if name in ENTRY_KEYS:
            raise ValueError(
                f"Attack name {name!r} is reserved: {ENTRY_KEYS}.")
    return specs


def black_box_last(specs: dict) -> dict:
    """The attacks with the black-box ones (Square) last, the others in
    their order: in worst-case mode a black-box attack then runs on what
    every gradient attack missed, so the masking check can read it."""
    names = sorted(specs, key=lambda name: bool(
        getattr(specs[name][0], "black_box", False)))
    return {name: specs[name] for name in names}


def _normalized(attacks) -> dict:
    if isinstance(attacks, str) or callable(attacks):
        raise TypeError("attacks must be a list of names or a dict.")
    if not isinstance(attacks, dict):
        attacks = {name: (name, {}) for name in attacks}
    specs = {}
    for name in _batches.headline_first(attacks):
        spec = attacks[name]
        attack, kwargs = spec if isinstance(spec, tuple) else (spec, {})
        specs[str(name)] = (_batches.attack_function(attack), dict(kwargs))
    if not specs:
        raise ValueError("attacks is empty.")
    return specs


def _in_norm(specs: dict, norm: str) -> dict:
    """The attacks' specs with ``norm=`` added (none in L-inf, every
    attack's default); an attack that does not support ``norm`` raises."""
    checked = {}
    for name, (fn, kwargs) in specs.items():
        own = kwargs.get("norm", norm)
        if own != norm:
            raise ValueError(
                f"Attack {name!r} has norm={own!r} but the report's norm is "
                f"{norm!r}: one report holds one threat model."
            )
        supported = attacks_lib.supported_norms(fn)
        if norm not in supported:
            raise ValueError(
                f"Attack {name!r} supports the norms {list(supported)}, not "
                f"{norm!r}: leave it out of a {norm} report."
            )
        checked[name] = (fn, kwargs if norm == "linf" else dict(kwargs,
                                                                norm=norm))
    return checked


def settings(report, num_classes, num_examples) -> dict:
    """The settings a report records in its results: each attack (its
    function, registry name and options) and the report's thresholds."""
    def plain(value):
        simple = (int, float, str, bool, type(None))
        return value if isinstance(value, simple) else repr(value)

    registered = {id(fn): name for name, fn in attacks_lib.ATTACKS.items()}
    attacks = {
        name: {
            "attack": getattr(fn, "__name__", repr(fn)),
            "registered": registered.get(id(fn)),
            "single_step": attacks_lib.is_single_step(fn),
            "kwargs": {k: plain(v) for k, v in kwargs.items()},
        }
        for name, (fn, kwargs) in report.attacks.items()
    }
    return {
        "attacks": attacks,
        "eps_values": report.eps_values,
        "large_eps": report.large_eps,
        "tolerance": report.tolerance,
        "chance_margin": report.chance_margin,
        "attack_spread": report.attack_spread,
        "worst_case_only": report.worst_case_only,
        "norm": report.norm,
        "num_classes": num_classes,
        "num_examples": num_examples,
    }


def identity(report) -> dict:
    """What a resumed run must share with the run whose chunks it reads:
    the settings, the batch size and each model's weights."""
    recorded = settings(report, None, None)
    for key in ("num_classes", "num_examples"):
        recorded.pop(key)
    return {"settings": recorded, "batch_size": report.batch_size,
            "models": {name: _chunks.fingerprint_model(model)
                       for name, model in report.models.items()}}
