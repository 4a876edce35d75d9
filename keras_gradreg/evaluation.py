"""Robust accuracy, multi-model robustness reports and masking checks.

* :func:`robust_accuracy`: accuracy of one model under one attack.
* :class:`RobustnessReport`: models x attacks x eps (the paper's Tables 1-3),
  a transfer matrix (Tables 4-6), per-example worst case over attacks
  (as AutoAttack reports it), and gradient-masking sanity checks after
  Athalye et al. (2018) and Carlini et al. (2019), written to JSON, Markdown,
  CSV and a PNG plot.
"""

from __future__ import annotations

from typing import Callable, Iterable, Optional, Union

import keras
import numpy as np
import tensorflow as tf

from keras_gradreg import _checks
from keras_gradreg import _evaluation_core
from keras_gradreg import _masking_checks
from keras_gradreg import _report_files
from keras_gradreg import attacks as attacks_lib
from keras_gradreg.attacks import _core

ATTACKS = attacks_lib.ATTACKS  # the registry itself, not a copy

__all__ = ["robust_accuracy", "RobustnessReport", "ATTACKS"]

_RESERVED = ("transfer", "transfer_eps", "masking_checks", "warnings", "settings")


def robust_accuracy(
    model,
    data,
    attack: Union[str, Callable, None] = "pgd",
    eps: float = 0.0,
    batch_size: int = 256,
    verbose: int = 1,
    **attack_kwargs,
) -> float:
    """Accuracy of ``model`` on adversarial examples crafted against it.

    Args:
        model: A Keras model returning logits, or a GradRegModel.
        data: ``(x, y)`` arrays, or a ``tf.data.Dataset`` of ``(x, y)``
            elements, batched or not (unbatched ones are batched here).
        attack: A name in :data:`keras_gradreg.attacks.ATTACKS`, a
            callable ``attack(model, x, y, eps=eps, **kwargs) -> x_adv``, or
            None for clean accuracy. Each attack owns its defaults (BIM,
            C&W and PGD: 10 steps of ``2.5 * eps / steps``).
        eps: L-inf radius; 0 gives clean accuracy.
        batch_size: Examples per batch (for arrays and unbatched datasets).
        verbose: 1 shows a ``keras.utils.Progbar``, 0 is silent.
        **attack_kwargs: Forwarded to the attack (e.g. ``steps``, ``seed``,
            ``clip_min``).

    Returns:
        The fraction of examples still classified correctly.

    Raises:
        ValueError, TypeError: For an unknown attack, a negative eps or
            malformed data.

    Example:
        >>> import keras, numpy as np
        >>> model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3)])
        >>> x, y = np.random.rand(16, 4).astype("float32"), np.zeros(16)
        >>> clean = robust_accuracy(model, (x, y), None, verbose=0)
        >>> robust_accuracy(model, (x, y), "fgsm", 0.1, verbose=0) <= clean
        True
    """
    _checks.number("eps", eps, 0.0, strict=False)
    batch_size = _checks.integer("batch_size", batch_size)
    attack_fn = None if attack is None else _evaluation_core.attack_function(attack)
    batches, count = _evaluation_core.batches(data, batch_size, model)
    progbar = keras.utils.Progbar(count, verbose=verbose, unit_name="batch")
    correct, total = 0, 0
    for x, labels in batches:
        if total == 0 and (attack_fn is None or eps == 0):
            _core.warn_if_probabilities(model, tf.convert_to_tensor(x))
        if attack_fn is not None and eps > 0:
            x = _evaluation_core.craft(model, x, labels, attack_fn, eps, attack_kwargs)
        correct += int(_evaluation_core.correct(model, x, labels, batch_size).sum())
        total += len(labels)
        progbar.add(1, [("accuracy", correct / max(total, 1))])
    if total == 0:
        raise ValueError("data holds no examples.")
    return correct / total


# Report -----------------------------------------------------------------


def _normalize_attacks(attacks) -> dict:
    if isinstance(attacks, str) or callable(attacks):
        raise TypeError("attacks must be a list of names or a dict.")
    if not isinstance(attacks, dict):
        attacks = {name: (name, {}) for name in attacks}
    specs = {}
    for name in _evaluation_core.headline_first(attacks):
        spec = attacks[name]
        attack, kwargs = spec if isinstance(spec, tuple) else (spec, {})
        specs[str(name)] = (_evaluation_core.attack_function(attack), dict(kwargs))
    if not specs:
        raise ValueError("attacks is empty.")
    return specs


class RobustnessReport:
    """White-box, transfer and worst-case robust accuracy of several models.

    For every model, attack and eps it records the accuracy on adversarial
    examples crafted against that model (white-box; the paper's Tables 1-3),
    the per-example worst case over all attacks and the clean prediction
    (AutoAttack's robust accuracy), and at ``transfer_eps`` the accuracy of
    each target model on examples crafted on each source model (Tables 4-6;
    the diagonal is white-box).

    Masking checks (Athalye et al. 2018; Carlini et al. 2019), each recorded
    with ``passed`` in ``results["masking_checks"]``; failures are listed in
    ``results["warnings"]`` and in the Markdown, never dropped:

    * ``iterative_at_least_fgsm``: every other attack is at least as strong
      as FGSM (a single-step attack) at the same eps, when one is among the
      attacks;
    * ``monotone_in_eps``: accuracy never increases with eps (clean first);
    * ``large_eps_to_chance``: at ``large_eps`` the strongest attack brings
      accuracy to at most chance (1 / classes) + ``chance_margin``;
    * ``whitebox_at_least_transfer``: white-box accuracy is at most every
      transfer accuracy against the same target;
    * ``black_box_beats_white_box``: when the report holds Square (alone or
      inside ``"autoattack"``) and a gradient attack, Square breaks at most
      1% of the examples that every gradient attack missed; more means the
      gradients are masked (recorded per eps in ``"black_box_only"``);
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
            callable, or ``(name or callable, kwargs)``. ``"autoattack"``,
            when present, is the first (headline) column, and the share of
            examples each of its attacks broke is recorded in ``"broken_by"``.
        eps_values: L-inf radii, each > 0 and given once; a bare number is
            taken as a one-element list.
        transfer_eps: The eps of the transfer matrix; one of ``eps_values``,
            default the largest.
        large_eps: Optional eps for the "accuracy to chance" check.
        tolerance: Slack allowed in the comparisons before flagging.
        chance_margin: Slack above chance for the large-eps check.
        attack_spread: Accuracy (a fraction) a multi-step attack may leave
            above the strongest one before it is flagged.
        batch_size: Examples per batch.
        verbose: 1 shows a progress bar over batches.

    Example:
        >>> import keras, numpy as np
        >>> model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3)])
        >>> x, y = np.random.rand(16, 4).astype("float32"), np.zeros(16)
        >>> report = RobustnessReport({"a": model}, ["fgsm", "bim"], [0.1],
        ...                           verbose=0)
        >>> results = report.run((x, y))
        >>> sorted(results["a"])
        ['bim', 'clean', 'fgsm', 'worst_case']
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
    ):
        if not isinstance(models, dict) or not models:
            raise TypeError("models must be a non-empty dict name -> model.")
        for name in models:
            if name in _RESERVED:
                raise ValueError(f"Model name {name!r} is reserved: {_RESERVED}.")
        self.models = dict(models)
        self.attacks = _normalize_attacks(attacks)
        if _checks.is_number(eps_values):  # a bare radius: one-element list
            eps_values = [eps_values]
        self.eps_values = sorted(
            _checks.number("eps", e, 0.0, strict=True) for e in eps_values
        )
        if not self.eps_values:
            raise ValueError("eps_values is empty.")
        if len(set(self.eps_values)) != len(self.eps_values):
            raise ValueError(
                f"eps_values repeats a radius: {list(eps_values)}; give each "
                "eps once."
            )
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
        self.results: Optional[dict] = None

    # Running --------------------------------------------------------------

    def _all_eps(self) -> list:
        extra = [self.large_eps] if self.large_eps is not None else []
        return self.eps_values + [e for e in extra if e not in self.eps_values]

    def _evaluate_batch(self, x, labels, store: dict) -> None:
        def record(key: tuple, model, inputs) -> None:
            store.setdefault(key, []).append(
                _evaluation_core.correct(model, inputs, labels, self.batch_size)
            )

        for source, model in self.models.items():
            record(("clean", source), model, x)
        for attack_name, (attack, kwargs) in self.attacks.items():
            for eps in self._all_eps():
                for source, model in self.models.items():
                    x_adv, broken_by = _evaluation_core.craft(
                        model, x, labels, attack, eps, kwargs, breakers=True
                    )
                    if broken_by is not None:
                        store.setdefault(
                            ("broken_by", source, attack_name, eps), []
                        ).append(broken_by)
                    targets = self.models if eps == self.transfer_eps else {
                        source: model
                    }
                    for target, target_model in targets.items():
                        record((source, target, attack_name, eps),
                               target_model, x_adv)

    def run(self, data) -> dict:
        """Evaluates every model, attack and eps on ``data``; returns results.

        Args:
            data: ``(x, y)`` arrays or a ``tf.data.Dataset`` (as in
                :func:`robust_accuracy`).

        Returns:
            The results dict (also kept in ``self.results``): per model
            ``{"clean": acc, "<attack>": {"<eps>": acc}, "worst_case":
            {"<eps>": acc}}`` plus ``"transfer"``, ``"transfer_eps"``,
            ``"masking_checks"``, ``"warnings"`` and ``"settings"``.
        """
        store = {}
        any_model = next(iter(self.models.values()))
        batches, count = _evaluation_core.batches(
            data, self.batch_size, any_model
        )
        progbar = keras.utils.Progbar(count, verbose=self.verbose)
        num_classes = None
        for x, labels in batches:
            if num_classes is None:
                num_classes = _core.num_classes(any_model, x)
                for model in self.models.values():
                    _core.warn_if_probabilities(model, tf.convert_to_tensor(x))
            self._evaluate_batch(x, labels, store)
            progbar.add(1)
        if not store:
            raise ValueError("data holds no examples.")
        correct = {key: np.concatenate(values) for key, values in store.items()}
        self.results = self._summarize(correct, num_classes)
        return self.results

    def _model_entry(self, name: str, correct: dict) -> dict:
        """``{"clean", <attack>: {eps: acc}, "worst_case": {eps: acc}}``."""
        clean = correct[("clean", name)]
        entry = {"clean": float(clean.mean())}
        worst_case = {}
        for eps in self.eps_values:
            key = _evaluation_core.eps_key(eps)
            robust = clean.copy()
            for attack in self.attacks:
                hit = correct[(name, name, attack, eps)]
                entry.setdefault(attack, {})[key] = float(hit.mean())
                robust &= hit
            worst_case[key] = float(robust.mean())
        entry["worst_case"] = worst_case
        entry.update(self._breakers(name, correct))
        if self.large_eps is not None:
            entry["large_eps"] = {"eps": self.large_eps}
            for attack in self.attacks:
                hit = correct[(name, name, attack, self.large_eps)]
                entry["large_eps"][attack] = float(hit.mean())
        return entry

    def _breakers(self, name: str, correct: dict) -> dict:
        """``broken_by`` (AutoAttack's share per attack) and
        ``black_box_only`` (what only Square broke), per eps, if any."""
        found = {}
        for attack in self.attacks:
            for eps in self.eps_values:
                names = correct.get(("broken_by", name, attack, eps))
                if names is None:
                    continue
                parts, counts = np.unique(names[names != ""], return_counts=True)
                found.setdefault("broken_by", {}).setdefault(attack, {})[
                    _evaluation_core.eps_key(eps)
                ] = {str(p): float(c) / len(names) for p, c in zip(parts, counts)}
        black_box = {
            _evaluation_core.eps_key(eps): share
            for eps in self.eps_values
            if (share := _masking_checks.black_box_only(
                self, correct, name, eps)) is not None
        }
        if black_box:
            found["black_box_only"] = black_box
        return found

    def _settings(self, num_classes: int, num_examples: int) -> dict:
        def plain(value):
            simple = (int, float, str, bool, type(None))
            return value if isinstance(value, simple) else repr(value)

        attacks = {
            name: {
                "attack": getattr(fn, "__name__", repr(fn)),
                "kwargs": {k: plain(v) for k, v in kwargs.items()},
            }
            for name, (fn, kwargs) in self.attacks.items()
        }
        return {
            "attacks": attacks,
            "eps_values": self.eps_values,
            "large_eps": self.large_eps,
            "tolerance": self.tolerance,
            "attack_spread": self.attack_spread,
            "num_classes": num_classes,
            "num_examples": num_examples,
        }

    def _summarize(self, correct: dict, num_classes: int) -> dict:
        results = {name: self._model_entry(name, correct) for name in self.models}
        eps = self.transfer_eps
        results["transfer"] = {
            source: {
                target: {
                    attack: float(correct[(source, target, attack, eps)].mean())
                    for attack in self.attacks
                }
                for target in self.models
            }
            for source in self.models
        }
        results["transfer_eps"] = eps
        checks = _masking_checks.masking_checks(self, results, num_classes)
        results["masking_checks"] = checks
        results["warnings"] = [c["message"] for c in checks if not c["passed"]]
        num_examples = len(correct[("clean", next(iter(self.models)))])
        results["settings"] = self._settings(num_classes, num_examples)
        return results


    # Writing ----------------------------------------------------------------

    def save(self, out_dir: str) -> dict:
        """Writes results.json, results.md, results.csv and accuracy_vs_eps.png.

        The PNG needs matplotlib (the ``examples`` extra); without it the plot
        is skipped with a warning.

        Args:
            out_dir: Folder to write into (created if missing).

        Returns:
            Dict kind -> path of the files written.

        Raises:
            RuntimeError: If :meth:`run` has not been called.
        """
        if self.results is None:
            raise RuntimeError("Call run(data) before save(out_dir).")
        return _report_files.write(
            self.results, self.models, self.attacks, out_dir
        )
