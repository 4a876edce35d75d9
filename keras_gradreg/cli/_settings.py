"""What the ``keras-gradreg`` flags mean: datasets, attacks and their settings.

Bad flags raise :class:`CommandLineError`, which the command reports as one
line on stderr with exit status 2.
"""

from __future__ import annotations

import dataclasses
from typing import Optional, Sequence

from keras_gradreg import _checks
from keras_gradreg import attacks
from keras_gradreg import paper
from keras_gradreg.cli._parser import DEFAULT_STEPS
from keras_gradreg.cli._parser import NPZ_PREFIX
from keras_gradreg.cli._parser import CommandLineError


@dataclasses.dataclass(frozen=True)
class AttackSettings:
    """Attack settings: radii (floats), steps, step size, clip range.

    Example:
        >>> PAPER_SETTINGS["mnist"].eps
        (0.1, 0.2, 0.3)
    """

    eps: tuple
    step_size: Optional[float]
    steps: Optional[int]
    clip_min: Optional[float]
    clip_max: Optional[float]


def _attack_settings(settings: paper.PaperSettings) -> AttackSettings:
    """The attack half of the paper's settings."""
    return AttackSettings(
        tuple(float(eps) for eps in settings.eps_values), settings.step_size,
        settings.steps, settings.clip_min, settings.clip_max)


# Section 4 of Yu et al. (keras_gradreg.paper): MNIST in [0, 1], CIFAR-10 in
# [0, 255], MFCCs.
PAPER_SETTINGS = {name: _attack_settings(settings)
                  for name, settings in paper.SETTINGS.items()}


def parse_eps(text: str) -> tuple:
    """``"0.1,0.2"`` -> ``(0.1, 0.2)``, each a finite number > 0.

    The radii stay floats from here to the attacks; results key them by
    their ``:g`` form (``"0.1"`` for ``0.10``).

    Example:
        >>> parse_eps("0.10, 0.2")
        (0.1, 0.2)
    """
    values = []
    for part in text.split(","):
        try:
            values.append(_checks.number("eps", float(part.strip()),
                                         minimum=0.0, strict=True))
        except ValueError:
            raise CommandLineError(
                f"--eps {text!r}: {part.strip()!r} is not a finite number > "
                "0; give comma-separated radii such as 0.1,0.2,0.3."
            ) from None
    if len(set(values)) != len(values):
        raise CommandLineError(f"--eps {text!r} repeats a radius.")
    return tuple(values)


def parse_attacks(text: str) -> tuple:
    """``"a,b"`` -> ``("a", "b")``, each a name in ``attacks.ATTACKS``."""
    names = tuple(part.strip() for part in text.split(","))
    unknown = [name for name in names if name not in attacks.ATTACKS]
    if unknown:
        raise CommandLineError(
            f"unknown attack {unknown[0]!r}: use a comma-separated list of "
            f"{', '.join(attacks.ATTACKS)}."
        )
    if len(set(names)) != len(names):
        raise CommandLineError(f"--attacks {text!r} repeats an attack.")
    return names


def attacks_in_norm(text: Optional[str], norm: str) -> tuple:
    """The attacks of ``evaluate``'s ``--attacks`` in the threat model ``norm``.

    Without ``--attacks`` (``text`` None), those of
    :data:`keras_gradreg.attacks.DEFAULT_ATTACKS` that support ``norm``.

    Raises:
        CommandLineError: For an unknown attack, or one asked for that does
            not support ``norm``.
    """
    if text is None:
        return tuple(name for name in attacks.DEFAULT_ATTACKS
                     if norm in attacks.supported_norms(name))
    names = parse_attacks(text)
    for name in names:
        supported = attacks.supported_norms(name)
        if norm not in supported:
            raise CommandLineError(
                f"attack {name!r} supports --norm {', '.join(supported)}, "
                f"not {norm}: leave it out of --attacks.")
    return names


def check_dataset(spec: str) -> None:
    """Raises CommandLineError unless ``spec`` is a paper dataset or npz."""
    if spec.startswith(NPZ_PREFIX) or spec in PAPER_SETTINGS:
        return
    raise CommandLineError(
        f"unknown dataset {spec!r}: use one of {', '.join(PAPER_SETTINGS)} "
        "or npz:FILE."
    )


def _required(value, flag: str, dataset: str):
    if value is None:
        raise CommandLineError(
            f"{flag} is required for dataset {dataset!r}: the paper's "
            f"settings cover only {', '.join(PAPER_SETTINGS)}."
        )
    return value


def _clip_range(args, paper: Optional[AttackSettings]) -> tuple:
    if args.no_clip:
        if args.clip_min is not None or args.clip_max is not None:
            raise CommandLineError("--no_clip excludes --clip_min/--clip_max.")
        return None, None
    if paper is None and (args.clip_min is None or args.clip_max is None):
        raise CommandLineError(
            f"dataset {args.dataset!r} needs --clip_min and --clip_max (the "
            "range of valid inputs) or --no_clip."
        )
    low = args.clip_min if args.clip_min is not None else paper.clip_min
    high = args.clip_max if args.clip_max is not None else paper.clip_max
    if low is not None and high is not None and low >= high:
        raise CommandLineError(
            f"--clip_min {low} must be < --clip_max {high}."
        )
    return low, high


def takes_step_size(name: str) -> bool:
    """Whether the attack ``name`` iterates with a fixed step (``--step_size``,
    ``--steps``); attacks that adapt their step (APGD) take ``--apgd_steps``.
    """
    return attacks.accepts(name, "step_size")


def attack_settings(args, iterative: bool,
                    norm: str = "linf") -> AttackSettings:
    """The attack settings of parsed ``args``: the paper's, then the flags.

    Without the paper's settings (``npz:`` data), ``--eps`` is required
    (``finetune`` takes ``--train_eps`` in its place), ``--steps`` defaults
    to :data:`DEFAULT_STEPS` and ``--step_size`` to each attack's own rule
    (2.5 * eps / steps, at each eps).

    Args:
        args: Parsed arguments of ``evaluate`` or ``finetune``.
        iterative: Whether an iterative attack needs ``steps``/``step_size``.
        norm: The threat model. The paper's radii and step size are L-inf
            ones: in another norm ``--eps`` is required and the step size
            is each attack's own rule unless ``--step_size`` is given.

    Raises:
        CommandLineError: For unparsable eps, or a setting that a dataset
            without paper defaults is missing.
    """
    check_dataset(args.dataset)
    paper = PAPER_SETTINGS.get(args.dataset)
    if norm != "linf" and args.eps is None:
        raise CommandLineError(
            f"--norm {norm} needs --eps: the paper's radii are L-inf radii.")

    def pick(name: str):
        given = getattr(args, name)
        if given is not None or (norm != "linf" and name == "step_size"):
            return given
        return getattr(paper, name, None)

    eps = parse_eps(args.eps) if args.eps is not None else pick("eps")
    if eps is None and getattr(args, "train_eps", None) is not None:
        eps = (float(args.train_eps),)  # finetune: the training eps
    eps = _required(eps, "--eps", args.dataset)
    step_size, steps = pick("step_size"), pick("steps")
    if iterative and steps is None:
        # Data without the paper's settings: each attack's own rule, 10
        # steps of 2.5 * eps / steps at every eps (step_size None).
        steps = DEFAULT_STEPS
    check_numbers(args)
    return AttackSettings(eps, step_size, steps, *_clip_range(args, paper))


def attack_specs(names: Sequence[str], settings: AttackSettings,
                 args) -> dict:
    """``{name: (name, kwargs)}`` for :class:`RobustnessReport`.

    Each attack gets the flags it takes, read from its signature: the clip
    range and ``--seed``; ``--step_size``, ``--steps`` and
    ``--pgd_restarts`` if it iterates with a fixed step; ``--apgd_steps``
    if it adapts its step; ``--queries`` (Square, AutoAttack) and
    ``--autoattack_version`` (AutoAttack) where taken.
    """
    specs = {}
    for name in names:
        options = {"clip_min": settings.clip_min,
                   "clip_max": settings.clip_max, "seed": args.seed,
                   "queries": getattr(args, "queries", None),
                   "version": getattr(args, "autoattack_version", None)}
        if takes_step_size(name):
            options.update(step_size=settings.step_size,
                           steps=settings.steps, restarts=args.pgd_restarts)
        else:
            options["steps"] = args.apgd_steps
        specs[name] = (name, {key: value for key, value in options.items()
                              if value is not None
                              and attacks.accepts(name, key)})
    return specs


# Every numeric flag of the command: (integer?, minimum, strictly above it).
# --eps is a list, checked by parse_eps.
NUMERIC_FLAGS = {
    "num_examples": (True, 1, False),
    "batch_size": (True, 1, False),
    "epochs": (True, 1, False),
    "eval_examples": (True, 1, False),
    "steps": (True, 1, False),
    "pgd_restarts": (True, 1, False),
    "apgd_steps": (True, 1, False),
    "queries": (True, 1, False),
    "seed": (True, 0, False),
    "processes": (True, 1, False),
    "threads": (True, 1, False),
    "step_size": (False, 0.0, True),
    "learning_rate": (False, 0.0, True),
    "c": (False, 0.0, False),
    "train_eps": (False, 0.0, True),
    "train_steps": (True, 1, False),
    "clip_min": (False, None, False),
    "clip_max": (False, None, False),
}


def check_numbers(args) -> None:
    """Checks every numeric flag given in ``args`` (:data:`NUMERIC_FLAGS`).

    Floats must be finite (``nan`` and ``inf`` parse as floats but are
    rejected) and within their bounds.

    Raises:
        CommandLineError: Naming the first bad flag.

    Example:
        >>> import argparse
        >>> check_numbers(argparse.Namespace(learning_rate=-1.0))
        Traceback (most recent call last):
        ...
        keras_gradreg.cli._parser.CommandLineError: --learning_rate must be > 0.0, got -1.0.
    """
    for name, (integer, minimum, strict) in NUMERIC_FLAGS.items():
        value = getattr(args, name, None)
        if value is None:
            continue
        try:
            if integer:
                _checks.integer(f"--{name}", value, minimum)
            else:
                _checks.number(f"--{name}", value, minimum, strict)
        except (TypeError, ValueError) as error:
            raise CommandLineError(str(error)) from None
