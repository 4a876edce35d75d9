"""Robustness reports: several models, attacks and eps in one pass.

:class:`RobustnessReport` runs the attacks, chunk by chunk, and builds a
:class:`~keras_gradreg.evaluation.Results` (the paper's Tables 1-3 and
4-6, the per-example worst case, masking checks). Its arguments are checked
and its settings recorded in ``_report_settings.py``.
"""

from __future__ import annotations

from typing import Callable, Dict, Iterable, Optional, Tuple, Union

import keras
import numpy as np
import tensorflow as tf

from keras_gradreg import _checks
from keras_gradreg import attacks as attacks_lib
from keras_gradreg.attacks import _core
from keras_gradreg.attacks import _norms
from keras_gradreg.evaluation import _batches
from keras_gradreg.evaluation import _chunks
from keras_gradreg.evaluation import _environment
from keras_gradreg.evaluation import _masking
from keras_gradreg.evaluation import _report_settings
from keras_gradreg.evaluation._layout import META_KEYS
from keras_gradreg.evaluation._results import Results
from keras_gradreg.evaluation._tables import eps_key


class RobustnessReport:
    """White-box, transfer and worst-case robust accuracy of several models.

    For every model, attack and eps it records the accuracy on adversarial
    examples crafted against that model (white-box; the paper's Tables 1-3),
    the per-example worst case over all attacks and the clean prediction
    (AutoAttack's robust accuracy), and at ``transfer_eps`` the accuracy of
    each target model on examples crafted on each source model (Tables 4-6;
    the diagonal is white-box).

    :meth:`run` returns a :class:`~keras_gradreg.evaluation.Results` that
    also keeps every per-example correctness array; ``save`` writes its
    files. Masking checks (Athalye et al. 2018; Carlini et al. 2019), each
    recorded with ``passed`` in ``results.masking_checks``; failures are
    listed in ``results.warnings`` and in the Markdown, never dropped:

    * ``iterative_at_least_fgsm``: every other attack is at least as strong
      as FGSM (an attack flagged ``single_step``) at the same eps, when one
      is among the attacks;
    * ``monotone_in_eps``: accuracy never increases with eps (clean first);
    * ``large_eps_to_chance``: at ``large_eps`` the strongest attack brings
      accuracy to at most chance (1 / classes) + ``chance_margin``;
    * ``whitebox_at_least_transfer``: white-box accuracy is at most every
      transfer accuracy against the same target;
    * ``black_box_beats_white_box``: when the report holds a black-box
      attack (flagged ``black_box``: Square, alone or inside AutoAttack) and
      a gradient attack, Square breaks at most 1% of the examples that every
      gradient attack missed; more means the gradients are masked (recorded
      per eps in each model's ``black_box_only``);
    * ``attacks_agree``: no multi-step attack (any but FGSM) leaves more than
      ``attack_spread`` accuracy above the strongest one at the same eps. A
      model trained to flatten one loss's gradient resists the attacks that
      follow it: on MNIST, C&W and APGD-DLR (logit-margin losses) left 17-28
      points more than APGD-CE on an L1 Logit-reg model
      (docs/RESULTS.md).

    Args:
        models: Dict name -> Keras model returning logits (or GradRegModel).
        attacks: List of names in :data:`keras_gradreg.attacks.ATTACKS`
            (default: the paper's FGSM, BIM and C&W), or dict name -> name,
            callable, or ``(name or callable, kwargs)``. The headline attack
            (AutoAttack), when present, is the first column, and the share
            of examples each of its parts broke is recorded
            (:meth:`Results.broken_by`). Names may not be one of
            ``clean``, ``worst_case``, ``broken_by``, ``black_box_only``,
            ``large_eps``.
        eps_values: Radii in the norm ``norm``, each > 0 and given once; a
            bare number is taken as a one-element list.
        transfer_eps: The eps of the transfer matrix; one of ``eps_values``,
            default the largest.
        large_eps: Optional eps for the "accuracy to chance" check.
        tolerance: Slack allowed in the comparisons before flagging.
        chance_margin: Slack above chance for the large-eps check.
        attack_spread: Accuracy (a fraction) a multi-step attack may leave
            above the strongest one before it is flagged.
        batch_size: Examples per batch. A batch is also the chunk that
            :meth:`run`'s ``resume_dir`` keeps and ``shard`` deals out.
        verbose: 1 shows a progress bar with the time left, one unit per
            batch, model, attack and eps.
        worst_case_only: Measure only the per-example worst case, the
            AutoAttack way: each attack runs only on the examples that the
            clean prediction and every earlier attack left correct (the
            headline attack first, black-box attacks last), so a strong
            first attack leaves little work to the rest. An attack's column
            then reads the accuracy left after it and every attack before
            it; no transfer matrix is crafted, and the masking checks that
            compare attacks' columns (``iterative_at_least_fgsm``,
            ``attacks_agree``, ``whitebox_at_least_transfer``) are left
            out. For large evaluations, with :meth:`run`'s ``resume_dir``
            and ``shard``.
        norm: The threat model of every attack and eps: ``"linf"``
            (default), ``"l2"`` or ``"l1"``. Passed to each attack as
            ``norm=`` (except in L-inf, every attack's default); recorded
            in the results' settings and table titles.

    Raises:
        ValueError: For an attack that does not support ``norm`` (its
            ``norms``), or one whose own ``norm`` option differs.

    Example:
        >>> import keras, numpy as np
        >>> from keras_gradreg import attacks
        >>> model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3)])
        >>> x, y = np.random.rand(16, 4).astype("float32"), np.zeros(16)
        >>> report = RobustnessReport({"a": model}, attacks.PAPER_ATTACKS,
        ...                           [0.1], verbose=0)
        >>> results = report.run((x, y))
        >>> results.attack_names == list(attacks.PAPER_ATTACKS)
        True
        >>> results.accuracy("a", "worst_case", 0.1) <= results.accuracy("a")
        True
    """

    def __init__(
        self,
        models: dict,
        attacks: Union[Iterable[str], dict] = attacks_lib.PAPER_ATTACKS,
        eps_values: Iterable[float] = (0.1, 0.2, 0.3),
        transfer_eps: Optional[float] = None,
        large_eps: Optional[float] = None,
        tolerance: float = 0.0,
        chance_margin: float = 0.1,
        attack_spread: float = 0.1,
        batch_size: int = 256,
        verbose: int = 1,
        worst_case_only: bool = False,
        norm: str = "linf",
    ):
        if not isinstance(models, dict) or not models:
            raise TypeError("models must be a non-empty dict name -> model.")
        for name in models:
            if name in META_KEYS:
                raise ValueError(f"Model name {name!r} is reserved: {META_KEYS}.")
        self.models = dict(models)
        self.norm = _norms.check(norm)
        self.attacks = _report_settings.attack_specs(attacks, self.norm)
        self.eps_values = _report_settings.eps_list(eps_values)
        if transfer_eps is None:
            transfer_eps = self.eps_values[-1]
        if transfer_eps not in self.eps_values:
            raise ValueError(
                f"transfer_eps={transfer_eps} must be one of {self.eps_values}."
            )
        self.transfer_eps = transfer_eps
        if large_eps is not None:
            large_eps = _checks.number("large_eps", large_eps, 0.0, True)
        self.large_eps = large_eps
        self.tolerance = _checks.number("tolerance", tolerance, 0.0, False)
        self.chance_margin = _checks.number(
            "chance_margin", chance_margin, 0.0, False
        )
        self.attack_spread = _checks.number(
            "attack_spread", attack_spread, 0.0, False
        )
        self.batch_size = _checks.integer("batch_size", batch_size)
        self.verbose = verbose
        if not isinstance(worst_case_only, bool):
            raise TypeError(f"worst_case_only must be True or False, got "
                            f"{worst_case_only!r}.")
        self.worst_case_only = worst_case_only
        if worst_case_only:
            self.attacks = _report_settings.black_box_last(self.attacks)
        self.results: Optional[Results] = None

    # Running --------------------------------------------------------------

    def _all_eps(self) -> list:
        extra = [self.large_eps] if self.large_eps is not None else []
        return self.eps_values + [e for e in extra if e not in self.eps_values]

    def _units_per_batch(self) -> int:
        """The progress bar's units per batch: one per model, attack and
        eps crafted (an AutoAttack call on 1,000 images takes an hour)."""
        return len(self.models) * len(self.attacks) * len(self._all_eps())

    def _evaluate_batch(self, x, labels,
                        tick: Callable[[], None] = lambda: None) -> dict:
        """The per-example arrays of one batch, by key (as
        :meth:`Results.from_correct` takes them)."""
        if self.worst_case_only:
            return self._worst_case_batch(x, labels, tick)
        found = {}

        def record(key: tuple, model, inputs) -> None:
            found[key] = _batches.correct(model, inputs, labels,
                                          self.batch_size)

        for source, model in self.models.items():
            record(("clean", source), model, x)
        for attack_name, (attack, kwargs) in self.attacks.items():
            for eps in self._all_eps():
                key = eps_key(eps)
                for source, model in self.models.items():
                    x_adv, broken_by = _batches.craft(
                        model, x, labels, attack, eps, kwargs, breakers=True
                    )
                    if broken_by is not None:
                        found[("broken_by", source, attack_name, key)] = (
                            np.asarray(broken_by))
                    record(("white_box", source, attack_name, key), model,
                           x_adv)
                    tick()
                    if eps != self.transfer_eps:
                        continue
                    for target, target_model in self.models.items():
                        if target != source:
                            record(("transfer", source, target, attack_name),
                                   target_model, x_adv)
        return found

    def _worst_case_batch(self, x, labels, tick: Callable[[], None]) -> dict:
        """Worst-case mode: each attack on the examples still correct; an
        attack's array is what is left correct after it and every attack
        before it."""
        found = {}
        for source, model in self.models.items():
            clean = _batches.correct(model, x, labels, self.batch_size)
            found[("clean", source)] = clean
            for eps in self._all_eps():
                key = eps_key(eps)
                alive = clean.copy()
                for attack_name, (attack, kwargs) in self.attacks.items():
                    left = np.flatnonzero(alive)
                    names = None
                    if _batches.names_parameter(attack, "return_breakers"):
                        names = np.where(clean, "", "clean").astype("<U16")
                    if len(left):
                        x_adv, broken_by = _batches.craft(
                            model, x[left], labels[left], attack, eps, kwargs,
                            breakers=True)
                        hit = _batches.correct(model, x_adv, labels[left],
                                               self.batch_size)
                        alive = alive.copy()
                        alive[left] = hit
                        if names is not None and broken_by is not None:
                            names[left] = np.asarray(broken_by)
                    if names is not None:
                        found[("broken_by", source, attack_name, key)] = names
                    found[("white_box", source, attack_name, key)] = alive
                    tick()
        return found

    def run(self, data, resume_dir: Optional[str] = None,
            shard: Optional[Tuple[int, int]] = None) -> Results:
        """Evaluates every model, attack and eps on ``data``; returns results.

        Args:
            data: ``(x, y)`` arrays or a ``tf.data.Dataset`` (as in
                :func:`robust_accuracy`), in the same order on every run
                that shares ``resume_dir`` or is one of a set of shards.
            resume_dir: Optional folder that keeps every finished batch
                (chunk) of examples. A rerun with the same settings and
                models goes on where an interrupted run stopped; a run
                with other settings, weights or data is refused.
            shard: Optional ``(i, n)``: evaluate only chunks ``i``,
                ``i + n``, ``i + 2n``, ... (chunk = batch), e.g. one process
                per device or host; :meth:`Results.merge` joins the ``n``
                results, per example exactly what one run gives.

        Returns:
            The :class:`~keras_gradreg.evaluation.Results` (also kept in
            ``self.results``), masking checks recorded. A shard's results
            record the examples they hold (``settings["examples"]``, runs
            of indices ``[start, stop]``, and ``settings["shard"]``).

        Example:
            >>> import keras, numpy as np, tempfile
            >>> model = keras.Sequential([keras.Input((4,)),
            ...                           keras.layers.Dense(3)])
            >>> x = np.random.rand(40, 4).astype("float32")
            >>> y = np.zeros(40)
            >>> report = RobustnessReport({"a": model}, ["fgsm", "pgd"], [0.1],
            ...                           batch_size=8, verbose=0,
            ...                           worst_case_only=True)
            >>> folder = tempfile.mkdtemp()
            >>> parts = [report.run((x, y), resume_dir=f"{folder}/{i}",
            ...                     shard=(i, 2)) for i in range(2)]
            >>> merged = Results.merge(parts)
            >>> whole = report.run((x, y))
            >>> bool((merged.correct("a", "worst_case", 0.1)
            ...       == whole.correct("a", "worst_case", 0.1)).all())
            True
        """
        index, count = _report_settings.shard(shard)
        any_model = next(iter(self.models.values()))
        batches, num_batches = _batches.batches(data, self.batch_size,
                                                any_model)
        units = max(self._units_per_batch(), 1)
        mine = None if num_batches is None else len(
            range(index, num_batches, count))
        progbar = keras.utils.Progbar(
            None if mine is None else mine * units, verbose=self.verbose)
        store = None
        if resume_dir is not None:
            store = _chunks.ChunkStore(resume_dir,
                                      _report_settings.identity(self))
        pieces: Dict[tuple, list] = {}
        held, offset, num_classes = [], 0, None
        for chunk, (x, labels) in enumerate(batches):
            start, offset = offset, offset + len(x)
            if chunk % count != index:
                continue
            if num_classes is None:
                num_classes = _core.num_classes(any_model, x)
                for model in self.models.values():
                    _core.warn_if_probabilities(model, tf.convert_to_tensor(x))
            found = None
            if store is not None:
                data_hash = _chunks.fingerprint_batch(x, labels)
                found = store.load(chunk, data_hash)
            if found is None:
                found = self._evaluate_batch(x, labels,
                                             lambda: progbar.add(1))
                if store is not None:
                    store.save(chunk, data_hash, found)
            else:
                progbar.add(units)
            for key, values in found.items():
                pieces.setdefault(key, []).append(values)
            held.append(np.arange(start, offset))
        if not pieces:
            raise ValueError("data holds no examples"
                             + (f" for shard {index} of {count}."
                                if count > 1 else "."))
        correct = {key: np.concatenate(values) for key, values in pieces.items()}
        num_examples = len(correct[("clean", next(iter(self.models)))])
        settings = _report_settings.settings(self, num_classes, num_examples)
        if count > 1:
            settings["shard"] = [index, count]
            settings["examples"] = _chunks.ranges(np.concatenate(held))
            settings["total_examples"] = offset
        results = Results.from_correct(
            correct, list(self.models), list(self.attacks), self.eps_values,
            self.transfer_eps, settings, large_eps=self.large_eps)
        _masking.record(results)
        _environment.record(results, [_environment.environment()])
        self.results = results
        return results

    # Writing ----------------------------------------------------------------

    def save(self, out_dir: str) -> dict:
        """Writes the results' files (:meth:`Results.save`) into ``out_dir``.

        Args:
            out_dir: Folder to write into (created if missing).

        Returns:
            Dict kind -> path of the files written.

        Raises:
            RuntimeError: If :meth:`run` has not been called.
        """
        if self.results is None:
            raise RuntimeError("Call run(data) before save(out_dir).")
        return self.results.save(out_dir)
