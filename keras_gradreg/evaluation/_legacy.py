"""The results of 0.1.0: a dict with models beside meta keys (deprecated).

:class:`LegacyMapping` gives :class:`~keras_gradreg.evaluation.Results`
the old mapping access (``results["a"][attack]["0.1"]``,
``results["transfer"]``, ``results["warnings"]``, ``results["settings"]``,
an added key), each with a ``DeprecationWarning``;
:func:`from_version_1` converts an old results.json.
"""

from __future__ import annotations

import collections.abc
import warnings

META_KEYS = ("transfer", "transfer_eps", "masking_checks", "warnings",
             "settings")
"""Keys beside the models at the top level of the old (version 1) layout."""


class LegacyMapping(collections.abc.Mapping):
    """Read (and add) access as to the 0.1.0 dict; needs ``self._data`` in
    the version 2 layout and ``add_section``."""

    def _legacy(self, key: str):
        data = self._data
        if key in data["models"]:
            return data["models"][key]
        if key in META_KEYS:
            return data[key]
        if key in data["sections"]:
            return data["sections"][key]["data"]
        raise KeyError(key)

    def __getitem__(self, key: str):
        _deprecated()
        return self._legacy(key)

    def __setitem__(self, key: str, value) -> None:
        _deprecated()
        if key in META_KEYS or key in self._data["models"]:
            raise TypeError(f"results[{key!r}] is read-only; add your data "
                            "with results.add_section(name, data).")
        self.add_section(key, value, replace=True)

    def __iter__(self):
        _deprecated()
        return iter(list(self._data["models"]) + list(META_KEYS)
                    + list(self._data["sections"]))

    def __len__(self) -> int:
        return len(self._data["models"]) + len(META_KEYS) + len(
            self._data["sections"])


def _deprecated() -> None:
    warnings.warn(
        "Reading results as a dict (results['model'], results['warnings'], "
        "...) is deprecated: use results.accuracy(), .model_entry(), "
        ".transfer(), .warnings, .masking_checks, .settings or .section().",
        DeprecationWarning, stacklevel=3,
    )


def from_version_1(data: dict) -> dict:
    """The version 2 layout of a 0.1.0 results dict (models at the top)."""
    models = {k: v for k, v in data.items()
              if isinstance(v, dict) and "clean" in v}
    extra = {k: v for k, v in data.items()
             if k not in models and k not in META_KEYS}
    converted = {k: data[k] for k in META_KEYS if k in data}
    converted["models"] = models
    converted["sections"] = {
        k: {"title": k, "data": v, "markdown": None} for k, v in extra.items()}
    return converted
