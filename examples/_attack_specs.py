"""The attacks of the example experiments: the paper's, and the extra ones.

``paper_attacks`` gives the paper's FGSM, BIM and C&W with its step size,
iterations and k (Section 4); ``extra_attacks`` the honesty checks beyond
them (PGD, APGD-CE and APGD-DLR by default) with their own step, 2.5 eps /
steps. Both return ``{name: (attack, kwargs)}`` for
:class:`keras_gradreg.RobustnessReport`.
"""

from __future__ import annotations

from typing import List

from keras_gradreg import attacks
from keras_gradreg.paper import SETTINGS  # noqa: F401  (the examples' doctests)
from keras_gradreg.paper import PaperSettings


def _accepted(name: str, options: dict) -> dict:
    """The ``options`` that the attack ``name`` takes."""
    return {key: value for key, value in options.items()
            if attacks.accepts(name, key)}


def paper_attacks(settings: PaperSettings) -> dict:
    """The paper's attacks with its step size, iterations and k.

    Returns:
        ``{name: (attack, kwargs)}`` for :class:`RobustnessReport`; the step
        is given explicitly (the attacks' default is 2.5 eps / steps).

    Example:
        >>> [kwargs.get("step_size")
        ...  for _, kwargs in paper_attacks(SETTINGS["mnist"]).values()]
        [None, 0.05, 0.05]
    """
    options = dict(step_size=settings.step_size, steps=settings.steps,
                   **settings.clip)
    specs = {}
    for name in attacks.PAPER_ATTACKS:
        step = attacks.accepts(name, "step_size")
        paper = dict(options, confidence=settings.confidence) if step else (
            settings.clip)
        specs[name] = (name, _accepted(name, paper))
    return specs


def extra_attacks(settings: PaperSettings, names: List[str], steps: int,
                  restarts: int, seed: int) -> dict:
    """Attacks beyond the paper's, with their own step (2.5 eps / steps).

    Args:
        settings: The dataset's settings (for the clip range).
        names: Names in ``keras_gradreg.attacks.ATTACKS``; an attack with
            ``losses`` runs once per loss (APGD gives APGD-CE and
            APGD-DLR).
        steps: Iterations per restart.
        restarts: Random restarts.
        seed: Seed of the random starts.

    Raises:
        ValueError: For an unknown attack name.

    Example:
        >>> print(*extra_attacks(SETTINGS["mnist"],
        ...                      list(attacks.EXTRA_ATTACKS), 10, 1, 0))
        pgd apgd_ce apgd_dlr
    """
    unknown = sorted(set(names) - set(attacks.ATTACKS))
    if unknown:
        raise ValueError(
            f"Unknown extra attacks {unknown}: use a comma-separated subset of "
            f"{list(attacks.ATTACKS)}, or '' for none.")
    common = dict(steps=steps, restarts=restarts, seed=seed, **settings.clip)
    specs = {}
    for name in names:
        options = _accepted(name, common)
        losses = getattr(attacks.get(name), "losses", ())
        if not losses:
            specs[name] = (name, options)
        for loss in losses:
            specs[f"{name}_{loss}"] = (name, dict(options, loss=loss))
    return specs
