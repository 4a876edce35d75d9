"""The ``results.json`` layout: its version, reserved keys and sections.

A :class:`~keras_gradreg.evaluation.Results` keeps its data in this layout:
``models`` (each model's entry of accuracies), the :data:`META_KEYS` beside
it, ``format_version`` and ``sections`` (named extra data, each with a
title and optional Markdown lines).

Example:
    >>> data = checked({"models": {}, "transfer": {}, "transfer_eps": 0.1,
    ...                 "settings": {}})
    >>> add_section(data, "note", {"seed": 0}, "Seed 0.", None, False)
    >>> data["sections"]["note"]
    {'title': 'note', 'data': {'seed': 0}, 'markdown': ['Seed 0.']}
"""

from __future__ import annotations

import copy
import json
from typing import Iterable, List, Optional, Sequence, Union

from keras_gradreg.evaluation._tables import eps_key
from keras_gradreg.evaluation._tables import eps_keys

FORMAT_VERSION = 2
"""Version of the ``results.json`` layout."""

META_KEYS = ("transfer", "transfer_eps", "masking_checks", "warnings",
             "settings")
"""Keys beside ``models`` at the top level of results.json (no model may take
them as its name)."""

CLEAN, WORST_CASE = "clean", "worst_case"
"""The entries of a model's accuracy without attack and per example over
every attack."""

ENTRY_KEYS = (CLEAN, WORST_CASE, "broken_by", "black_box_only", "large_eps")
"""Keys of a model's entry that are not attacks (no attack may take them)."""

_REQUIRED = ("models", "transfer", "transfer_eps", "settings")


def plain(data, name: str):
    """A JSON round-trip copy of ``data``; TypeError if it is not JSON."""
    try:
        return json.loads(json.dumps(data))
    except (TypeError, ValueError) as error:
        raise TypeError(
            f"{name} must be JSON-serializable (dicts with string keys, "
            f"lists, numbers, strings, booleans, None): {error}"
        ) from None


def checked(data: dict) -> dict:
    """A deep copy of ``data`` in the current layout, empty checks,
    warnings and sections added where missing.

    Raises:
        ValueError: For another ``format_version`` or a missing key.
    """
    data = copy.deepcopy(dict(data))
    version = data.get("format_version", FORMAT_VERSION)
    if version != FORMAT_VERSION:
        raise ValueError(
            f"results format_version {version} is not "
            f"{FORMAT_VERSION}; this keras-gradreg cannot read it."
        )
    for key in _REQUIRED:
        if key not in data:
            raise ValueError(f"results lack {key!r}.")
    data["format_version"] = FORMAT_VERSION
    data.setdefault("masking_checks", [])
    data.setdefault("warnings", [])
    data.setdefault("sections", {})
    return data


def attack_key(attack: Optional[str], attack_names: Sequence[str]) -> str:
    """The entry an accessor's ``attack`` names: :data:`CLEAN` for None,
    else the attack or :data:`WORST_CASE`; KeyError for another name."""
    if attack is None or attack == CLEAN:
        return CLEAN
    if attack != WORST_CASE and attack not in attack_names:
        raise KeyError(f"No attack {attack!r}; the results hold "
                       f"{list(attack_names)} and {WORST_CASE!r}.")
    return attack


def eps_key_in(eps, eps_values: Sequence[float],
               large_eps: Optional[float] = None) -> str:
    """The key of ``eps`` among ``eps_values`` (and ``large_eps``).

    Raises:
        ValueError: For no eps.
        KeyError: For a radius the results do not hold.
    """
    if eps is None:
        raise ValueError("eps is needed for an attack's accuracy.")
    key, allowed = eps_key(eps), eps_keys(eps_values, large_eps)
    if key not in allowed:
        raise KeyError(f"No eps {eps!r}; the results hold {allowed}.")
    return key


def add_section(data: dict, name: str, section_data,
                markdown: Union[str, Iterable[str], None],
                title: Optional[str], replace: bool) -> None:
    """Stores a section in ``data`` (see ``Results.add_section``).

    Raises:
        TypeError: For a name that is not a non-empty string, or data that
            is not JSON-serializable.
        ValueError: For a name taken by a model, a key of the layout or
            (without ``replace``) another section.
    """
    if not isinstance(name, str) or not name:
        raise TypeError(f"A section name is a non-empty string, got "
                        f"{name!r}.")
    if name in META_KEYS or name in data["models"] or name in (
            "models", "sections", "format_version"):
        raise ValueError(f"Section name {name!r} is taken by a model or "
                         f"a key of the results; choose another.")
    if name in data["sections"] and not replace:
        raise ValueError(f"Section {name!r} exists; pass replace=True.")
    if isinstance(markdown, str):
        markdown = markdown.splitlines()
    data["sections"][name] = {
        "title": str(title or name), "data": plain(section_data, "data"),
        "markdown": None if markdown is None else [
            str(line) for line in markdown],
    }


def record_checks(data: dict, checks: List[dict], black_box_only: dict) -> None:
    """Stores the masking checks in ``data``, the messages of the failed
    ones as its warnings, and each model's ``black_box_only`` shares."""
    for model, shares in black_box_only.items():
        if shares:
            data["models"][model]["black_box_only"] = dict(shares)
    data["masking_checks"] = plain(checks, "masking checks")
    data["warnings"] = [c["message"] for c in checks if not c["passed"]]
