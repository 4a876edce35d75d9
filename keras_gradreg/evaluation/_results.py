"""The results of a robustness evaluation: one typed object.

:class:`Results` holds what :class:`~keras_gradreg.RobustnessReport`
measured (accuracies per model, attack and eps; the per-example worst case;
the transfer matrix; which part of an ensemble broke each example), the
per-example correctness behind every accuracy, the settings, the masking
checks, and named extra sections that the command line and the examples
add. Its layout is ``_layout.py``; it writes and reads its own files
(``_files.py``) and joins the results of shards (``_merge.py``).
"""

from __future__ import annotations

import copy
from typing import Iterable, List, Optional, Sequence, Union

import numpy as np

from keras_gradreg.evaluation import _files
from keras_gradreg.evaluation import _layout
from keras_gradreg.evaluation import _merge
from keras_gradreg.evaluation import _tables
from keras_gradreg.evaluation._layout import CLEAN
from keras_gradreg.evaluation._layout import FORMAT_VERSION
from keras_gradreg.evaluation._layout import WORST_CASE
from keras_gradreg.evaluation._tables import eps_key


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
        self._data = _layout.checked(data)
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
                       "transfer": transfer, "transfer_eps": float(transfer_eps),
                       "settings": _layout.plain(settings, "settings")})
        wanted = set(results.array_keys())
        results._correct = {key: np.asarray(value)
                            for key, value in correct.items() if key in wanted}
        return results

    def _record_checks(self, checks: List[dict],
                       black_box_only: dict) -> None:
        """Stores the masking checks (``_masking.record`` calls this)."""
        _layout.record_checks(self._data, checks, black_box_only)

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
        entry, attack = self._entry(model), _layout.attack_key(attack, self.attack_names)
        if attack == CLEAN:
            return entry[CLEAN]
        key = self._eps(eps, attack != WORST_CASE)
        if key in entry[attack]:
            return entry[attack][key]
        return entry["large_eps"][attack]

    def _eps(self, eps, large_ok: bool) -> str:
        return _layout.eps_key_in(
            eps, self.eps_values, self.large_eps if large_ok else None)

    def transfer(self, source: str, target: str, attack: str) -> float:
        """Accuracy of ``target`` on examples crafted on ``source`` with
        ``attack`` at :attr:`transfer_eps` (white-box when equal)."""
        self._entry(source), self._entry(target)
        if _layout.attack_key(attack, self.attack_names) in (CLEAN, WORST_CASE):
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
        broken_by = {model: self._entry(model).get("broken_by", {})
                     for model in self.model_names}
        return _tables.array_keys(
            self.model_names, self.attack_names, self.eps_values,
            self.large_eps, broken_by, with_transfer=not self.worst_case_only)

    def _array(self, key: tuple) -> np.ndarray:
        if key not in self._correct:
            raise KeyError(f"No per-example array {key}: these results were built "
                           f"without it, or loaded without {_files.FILES['npz']}.")
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
        attack = _layout.attack_key(attack, self.attack_names)
        if attack == CLEAN:
            return self._array((CLEAN, model))
        if source is not None and source != model:
            self._entry(source)
            if eps is not None and eps_key(eps) != eps_key(self.transfer_eps):
                raise KeyError(f"Transfer attacks ran at eps "
                               f"{self.transfer_eps:g} only.")
            return self._array(("transfer", source, model, attack))
        if attack == WORST_CASE:
            return _tables.worst_case(self._array, model, self.attack_names,
                                      self._eps(eps, False))
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
        _layout.add_section(self._data, name, data, markdown, title, replace)

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
        of the other files). Without matplotlib (the ``examples`` extra)
        the PNG is skipped with a warning (an old one is removed).

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
        return _merge.merged(cls, parts)

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
