"""The results of a robustness evaluation: one typed object.

:class:`Results` holds what :class:`~keras_gradreg.RobustnessReport`
measured (accuracies per model, attack and eps; the per-example worst case;
the transfer matrix; which part of an ensemble broke each example), the
per-example correctness behind every accuracy, the settings, the masking
checks, and named extra sections that the command line and the examples
add. It writes and reads its own files (``_files.py``).
"""

from __future__ import annotations

import copy
import json
from typing import Iterable, List, Optional, Sequence, Union

import numpy as np

from keras_gradreg.evaluation import _chunks
from keras_gradreg.evaluation import _files
from keras_gradreg.evaluation import _masking
from keras_gradreg.evaluation import _tables
from keras_gradreg.evaluation._tables import eps_key

FORMAT_VERSION = 2
"""Version of the ``results.json`` layout."""

META_KEYS = ("transfer", "transfer_eps", "masking_checks", "warnings",
             "settings")
"""Keys beside ``models`` at the top level of results.json (no model may take
them as its name)."""

ENTRY_KEYS = ("clean", "worst_case", "broken_by", "black_box_only",
              "large_eps")
"""Keys of a model's entry that are not attacks (no attack may take them)."""

_CLEAN, _WORST = "clean", "worst_case"


_PART_KEYS = ("shard", "examples", "total_examples", "num_examples")
"""Settings in which the shards of one evaluation differ."""


def _common_settings(results: "Results") -> dict:
    return {key: value for key, value in results.settings.items()
            if key not in _PART_KEYS}


def _plain(data, name: str):
    """A JSON round-trip copy of ``data``; TypeError if it is not JSON."""
    try:
        return json.loads(json.dumps(data))
    except (TypeError, ValueError) as error:
        raise TypeError(
            f"{name} must be JSON-serializable (dicts with string keys, "
            f"lists, numbers, strings, booleans, None): {error}"
        ) from None


class Results:
    """Accuracies, per-example correctness, settings and checks of a report.

    :meth:`keras_gradreg.RobustnessReport.run` returns one. Read it with the
    accessors (:meth:`accuracy`, :meth:`correct`, :meth:`transfer`, ...),
    add sections with :meth:`add_section`, write every file with
    :meth:`save` and read them back with :meth:`load`.

    Args:
        data: The ``results.json`` layout (:meth:`to_dict`).
        correct: Optional per-example arrays by key (as
            :meth:`from_correct` builds them).

    Example:
        >>> import keras, numpy as np
        >>> from keras_gradreg import RobustnessReport, attacks
        >>> model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3)])
        >>> x, y = np.random.rand(16, 4).astype("float32"), np.zeros(16)
        >>> results = RobustnessReport({"a": model}, attacks.PAPER_ATTACKS,
        ...                            [0.1], verbose=0).run((x, y))
        >>> results.model_names, results.attack_names == list(
        ...     attacks.PAPER_ATTACKS)
        (['a'], True)
        >>> fgsm = attacks.PAPER_ATTACKS[0]
        >>> bool(results.accuracy("a", fgsm, 0.1) == results.correct(
        ...     "a", fgsm, 0.1).mean())
        True
        >>> results.add_section("note", {"seed": 0}, markdown="Seed 0.")
        >>> results.section("note")
        {'seed': 0}
    """

    FILES = dict(_files.FILES)
    """The file :meth:`save` writes of each kind (``"json"``: results.json,
    ``"md"``, ``"csv"``, ``"npz"``: correct.npz, ``"png"``)."""

    def __init__(self, data: dict, correct: Optional[dict] = None):
        data = copy.deepcopy(dict(data))
        version = data.get("format_version", FORMAT_VERSION)
        if version != FORMAT_VERSION:
            raise ValueError(
                f"results format_version {version} is not "
                f"{FORMAT_VERSION}; this keras-gradreg cannot read it."
            )
        for key in ("models", "transfer", "transfer_eps", "settings"):
            if key not in data:
                raise ValueError(f"results lack {key!r}.")
        data["format_version"] = FORMAT_VERSION
        data.setdefault("masking_checks", [])
        data.setdefault("warnings", [])
        data.setdefault("sections", {})
        self._data = data
        self._correct = {}
        for key, values in (correct or {}).items():
            self._correct[tuple(key)] = np.asarray(values)

    # Building -----------------------------------------------------------

    @classmethod
    def from_correct(cls, correct: dict, model_names: Sequence[str],
                     attack_names: Sequence[str], eps_values: Sequence[float],
                     transfer_eps: float, settings: dict,
                     large_eps: Optional[float] = None) -> "Results":
        """Results whose accuracies are the means of per-example arrays.

        Args:
            correct: Boolean arrays by key: ``("clean", model)``,
                ``("white_box", model, attack, eps_key)`` (every eps and
                ``large_eps``), ``("transfer", source, target, attack)``
                (at ``transfer_eps``, source != target), and string arrays
                ``("broken_by", model, attack, eps_key)`` of an ensemble's
                part that broke each example.
            model_names: In table order.
            attack_names: In table order.
            eps_values: The radii of the tables.
            transfer_eps: The radius of the transfer matrix.
            settings: JSON-serializable settings (``attacks``,
                ``num_classes``, thresholds of the masking checks, ...).
            large_eps: The radius of the "accuracy to chance" check, if any.
        """
        models, transfer = _tables.tables(
            correct, model_names, attack_names, eps_values, transfer_eps,
            large_eps, with_transfer=not settings.get("worst_case_only"))
        settings = dict(settings, eps_values=[float(e) for e in eps_values],
                        large_eps=large_eps)
        results = cls({"format_version": FORMAT_VERSION, "models": models,
                       "transfer": transfer,
                       "transfer_eps": float(transfer_eps),
                       "settings": _plain(settings, "settings")})
        wanted = set(results.array_keys())
        results._correct = {key: np.asarray(value)
                            for key, value in correct.items() if key in wanted}
        return results

    def _record_checks(self, checks: List[dict],
                       black_box_only: dict) -> None:
        """Stores the masking checks (``_masking.record`` calls this)."""
        for model, shares in black_box_only.items():
            if shares:
                self._data["models"][model]["black_box_only"] = dict(shares)
        self._data["masking_checks"] = _plain(checks, "masking checks")
        self._data["warnings"] = [c["message"] for c in checks
                                  if not c["passed"]]

    # Reading -------------------------------------------------------------

    @property
    def model_names(self) -> List[str]:
        """The models, in table order."""
        return list(self._data["models"])

    @property
    def attack_names(self) -> List[str]:
        """The attacks (columns), in table order: the headline one first."""
        return list(self._data["settings"]["attacks"])

    @property
    def eps_values(self) -> List[float]:
        """The radii of the tables (in the norm :attr:`norm`), ascending."""
        return list(self._data["settings"]["eps_values"])

    @property
    def transfer_eps(self) -> float:
        """The radius of the transfer matrix."""
        return self._data["transfer_eps"]

    @property
    def norm(self) -> str:
        """The threat model of every attack: ``"linf"``, ``"l2"`` or
        ``"l1"`` (results written before norms were recorded: ``"linf"``)."""
        return self._data["settings"].get("norm", "linf")

    @property
    def large_eps(self) -> Optional[float]:
        """The radius of the "accuracy to chance" check, or None."""
        return self._data["settings"].get("large_eps")

    @property
    def settings(self) -> dict:
        """A copy of the settings (attacks and their options, thresholds)."""
        return copy.deepcopy(self._data["settings"])

    @property
    def worst_case_only(self) -> bool:
        """Whether the report ran each attack only on what the earlier ones
        left correct (``RobustnessReport(worst_case_only=True)``): an
        attack's accuracy is then what is left after it and every attack
        before it, and there is no transfer matrix."""
        return bool(self._data["settings"].get("worst_case_only", False))

    @property
    def masking_checks(self) -> List[dict]:
        """A copy of the masking checks, each with ``passed``/``message``."""
        return copy.deepcopy(self._data["masking_checks"])

    @property
    def warnings(self) -> List[str]:
        """The messages of the masking checks that failed."""
        return list(self._data["warnings"])

    @property
    def section_names(self) -> List[str]:
        """The extra sections, in the order they were added."""
        return list(self._data["sections"])

    def _entry(self, model: str) -> dict:
        try:
            return self._data["models"][model]
        except KeyError:
            raise KeyError(f"No model {model!r}; the results hold "
                           f"{self.model_names}.") from None

    def _attack(self, attack: Optional[str]) -> str:
        if attack is None or attack == _CLEAN:
            return _CLEAN
        if attack != _WORST and attack not in self.attack_names:
            raise KeyError(f"No attack {attack!r}; the results hold "
                           f"{self.attack_names} and {_WORST!r}.")
        return attack

    def accuracy(self, model: str, attack: Optional[str] = None,
                 eps: Union[float, str, None] = None) -> float:
        """Accuracy of ``model`` under ``attack`` at ``eps`` (white-box).

        Args:
            model: A name of :attr:`model_names`.
            attack: A name of :attr:`attack_names`, ``"worst_case"`` (per
                example over every attack and the clean prediction), or
                None for clean accuracy.
            eps: One of :attr:`eps_values` or :attr:`large_eps` (a number
                or its key, e.g. ``"0.1"``); ignored for clean accuracy.
        """
        entry, attack = self._entry(model), self._attack(attack)
        if attack == _CLEAN:
            return entry[_CLEAN]
        key = self._eps(eps, attack != _WORST)
        if key in entry[attack]:
            return entry[attack][key]
        return entry["large_eps"][attack]

    def _eps(self, eps, large_ok: bool) -> str:
        if eps is None:
            raise ValueError("eps is needed for an attack's accuracy.")
        key = eps_key(eps)
        allowed = [eps_key(e) for e in self.eps_values]
        if large_ok and self.large_eps is not None:
            allowed.append(eps_key(self.large_eps))
        if key not in allowed:
            raise KeyError(f"No eps {eps!r}; the results hold {allowed}.")
        return key

    def transfer(self, source: str, target: str, attack: str) -> float:
        """Accuracy of ``target`` on examples crafted on ``source`` with
        ``attack`` at :attr:`transfer_eps` (white-box when equal)."""
        self._entry(source), self._entry(target)
        if self._attack(attack) in (_CLEAN, _WORST):
            raise KeyError("transfer needs an attack of attack_names.")
        if source != target and self.worst_case_only:
            raise KeyError("A worst-case-only report crafts no transfer "
                           "attacks.")
        return self._data["transfer"][source][target][attack]

    def broken_by(self, model: str, attack: str, eps) -> dict:
        """Share of examples each part of an ensemble broke (e.g.
        AutoAttack's), ``{}`` for an attack that does not say."""
        entry, key = self._entry(model), self._eps(eps, False)
        return dict(entry.get("broken_by", {}).get(attack, {}).get(key, {}))

    def model_entry(self, model: str) -> dict:
        """A copy of ``model``'s entry: ``{"clean": acc, "<attack>": {eps:
        acc}, "worst_case": {eps: acc}, ...}`` (as results.json holds it;
        what :func:`keras_gradreg.log_robustness` takes)."""
        return copy.deepcopy(self._entry(model))

    def array_keys(self) -> List[tuple]:
        """The keys of the per-example arrays these results can hold."""
        keys = []
        all_eps = [eps_key(e) for e in self.eps_values]
        if self.large_eps is not None and eps_key(self.large_eps) not in all_eps:
            all_eps.append(eps_key(self.large_eps))
        for model in self.model_names:
            keys.append((_CLEAN, model))
            keys += [("white_box", model, attack, key)
                     for attack in self.attack_names for key in all_eps]
            for attack, by_eps in self._entry(model).get("broken_by", {}).items():
                keys += [("broken_by", model, attack, key) for key in by_eps]
        if not self.worst_case_only:
            keys += [("transfer", source, target, attack)
                     for source in self.model_names
                     for target in self.model_names
                     for attack in self.attack_names if source != target]
        return keys

    def _array(self, key: tuple) -> np.ndarray:
        if key not in self._correct:
            raise KeyError(
                f"No per-example array {key}: these results were built "
                f"without it, or loaded without {_files.FILES['npz']}."
            )
        return self._correct[key].copy()

    def correct(self, model: str, attack: Optional[str] = None,
                eps: Union[float, str, None] = None,
                source: Optional[str] = None) -> np.ndarray:
        """Whether ``model`` classifies each example correctly.

        Args:
            model: The model evaluated.
            attack: As in :meth:`accuracy` (None: clean).
            eps: As in :meth:`accuracy`.
            source: The model the examples were crafted on (default
                ``model``: white-box); another gives the transfer attack
                at :attr:`transfer_eps`.

        Returns:
            A boolean array, one entry per example, in data order.
        """
        self._entry(model)
        attack = self._attack(attack)
        if attack == _CLEAN:
            return self._array((_CLEAN, model))
        if source is not None and source != model:
            self._entry(source)
            if eps is not None and eps_key(eps) != eps_key(self.transfer_eps):
                raise KeyError(f"Transfer attacks ran at eps "
                               f"{self.transfer_eps:g} only.")
            return self._array(("transfer", source, model, attack))
        if attack == _WORST:
            key, robust = self._eps(eps, False), self.correct(model)
            for name in self.attack_names:
                robust &= self._array(("white_box", model, name, key))
            return robust
        return self._array(("white_box", model, attack,
                            self._eps(eps, True))).astype(bool)

    def breakers(self, model: str, attack: str, eps) -> np.ndarray:
        """The part of an ensemble that broke each example (``""``: none,
        ``"clean"``: misclassified from the start)."""
        return self._array(("broken_by", model, attack, self._eps(eps, False)))

    def section(self, name: str):
        """A copy of the data of the extra section ``name``."""
        if name not in self._data["sections"]:
            raise KeyError(f"No section {name!r}; the results hold "
                           f"{self.section_names}.")
        return copy.deepcopy(self._data["sections"][name]["data"])

    # Adding --------------------------------------------------------------

    def add_section(self, name: str, data, markdown: Union[str, Iterable[str],
                                                          None] = None,
                    title: Optional[str] = None, replace: bool = False) -> None:
        """Adds a named section to results.json and, with ``markdown``, to
        results.md.

        Args:
            name: The section's key under ``"sections"`` in results.json;
                not a model name nor an old top-level key (``"settings"``,
                ``"transfer"``, ...).
            data: JSON-serializable data (stored as a JSON round-trip copy).
            markdown: Lines (or one string) of Markdown written under
                ``## title`` at the end of results.md; None for none.
            title: The Markdown heading (default ``name``).
            replace: Replace a section of the same name instead of raising.

        Raises:
            ValueError: For a name that is taken.
            TypeError: For data that is not JSON-serializable.
        """
        if not isinstance(name, str) or not name:
            raise TypeError(f"A section name is a non-empty string, got "
                            f"{name!r}.")
        if name in META_KEYS or name in self._data["models"] or name in (
                "models", "sections", "format_version"):
            raise ValueError(f"Section name {name!r} is taken by a model or "
                             f"a key of the results; choose another.")
        if name in self._data["sections"] and not replace:
            raise ValueError(f"Section {name!r} exists; pass replace=True.")
        if isinstance(markdown, str):
            markdown = markdown.splitlines()
        self._data["sections"][name] = {
            "title": str(title or name), "data": _plain(data, "data"),
            "markdown": None if markdown is None else [
                str(line) for line in markdown],
        }

    # Files ---------------------------------------------------------------

    def to_dict(self) -> dict:
        """The ``results.json`` layout, as a new dict."""
        return copy.deepcopy(self._data)

    def to_markdown(self) -> str:
        """The text of results.md: tables, checks, then the sections."""
        return _files.markdown(self)

    def csv_rows(self) -> List[list]:
        """The rows of results.csv, header first."""
        return _files.csv_rows(self)

    def save(self, out_dir: str, overwrite: bool = True) -> dict:
        """Writes results.json, results.md, results.csv, correct.npz and
        accuracy_vs_eps.png into ``out_dir``, each atomically.

        Every file is first written to a temporary file in ``out_dir``,
        then renamed over the old one once all are complete: a failure
        leaves the old files intact, and a folder that a kill left between
        the renames does not :meth:`load` (correct.npz records the SHA-256
        of the other files). ``keras-gradreg evaluate`` replaces the whole
        folder with one rename. Without matplotlib (the
        ``examples`` extra) the PNG is skipped with a warning (and an old
        one removed, since it would not match).

        Args:
            out_dir: Folder to write into (created if missing).
            overwrite: Whether existing files may be replaced; if not, an
                existing one raises ``FileExistsError`` before any writing.

        Returns:
            Dict kind (``"json"``, ``"md"``, ``"csv"``, ``"npz"``,
            ``"png"``) -> path of the files written.
        """
        return _files.save(self, out_dir, overwrite)

    @classmethod
    def load(cls, out_dir: str) -> "Results":
        """Reads results.json and, if there, correct.npz from ``out_dir``.

        Raises:
            ValueError: If the folder's files are not all of one
                :meth:`save` (e.g. one interrupted between its renames):
                correct.npz records the SHA-256 of the files it was saved
                with.
        """
        data, read_arrays = _files.load(out_dir)
        results = cls(data)
        results._correct.update(read_arrays(results.array_keys()))
        return results

    @classmethod
    def merge(cls, parts: Sequence["Results"]) -> "Results":
        """Joins the results of shards (``RobustnessReport.run(shard=...)``)
        of one evaluation into one, examples in data order.

        The accuracies, worst case and masking checks are computed anew from
        the joined per-example arrays, so all ``n`` shards of a run give per
        example exactly what one run gives; fewer shards give results of
        the examples they hold (``settings["examples"]``). Sections are
        not merged (each describes one part).

        Args:
            parts: Results of the same settings and models, each holding
                its per-example arrays (as :meth:`load` reads them with
                correct.npz).

        Raises:
            ValueError: If the parts differ in settings or models, or an
                example is in more than one part.
            KeyError: If a part lacks its per-example arrays.
        """
        parts = list(parts)
        if not parts:
            raise ValueError("merge needs at least one Results.")
        for part in parts:
            if not isinstance(part, Results):
                raise TypeError(f"merge takes Results, got "
                                f"{type(part).__name__}.")
        first = _common_settings(parts[0])
        for number, part in enumerate(parts[1:], 1):
            other = _common_settings(part)
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
        totals = {part.settings.get("total_examples") for part in parts}
        if len(totals) > 1:
            raise ValueError(f"The parts come from data of different sizes: "
                             f"{sorted(t for t in totals if t is not None)}.")
        total = totals.pop()
        held = []
        for part in parts:
            examples = part.settings.get(
                "examples", [[0, part.settings["num_examples"]]])
            held.append(_chunks.indices(examples))
        every = np.concatenate(held)
        order = np.argsort(every, kind="stable")
        ordered = every[order]
        repeated = ordered[1:][np.diff(ordered) == 0]
        if len(repeated):
            raise ValueError(
                f"The parts overlap: example {int(repeated[0])} (and "
                f"{len(repeated) - 1} more) is in more than one part.")
        keys = parts[0].array_keys()
        correct = {key: np.concatenate([part._array(key) for part in parts])[
            order] for key in keys}
        settings = dict(first, num_examples=int(len(every)))
        if total is None or not np.array_equal(ordered, np.arange(total)):
            settings["examples"] = _chunks.ranges(ordered)
            settings["total_examples"] = total
        results = cls.from_correct(
            correct, parts[0].model_names, parts[0].attack_names,
            parts[0].eps_values, parts[0].transfer_eps, settings,
            large_eps=parts[0].large_eps)
        _masking.record(results)
        return results

    def arrays(self) -> dict:
        """The per-example arrays by key (copies)."""
        return {key: value.copy() for key, value in self._correct.items()}

    def __repr__(self) -> str:
        return (f"Results(models={self.model_names}, "
                f"attacks={self.attack_names}, eps={self.eps_values})")

    def __eq__(self, other) -> bool:
        if not isinstance(other, Results):
            return NotImplemented
        mine, theirs = self._correct, other._correct
        return self._data == other._data and mine.keys() == theirs.keys() and all(
            np.array_equal(mine[key], theirs[key]) for key in mine)

    __hash__ = None
