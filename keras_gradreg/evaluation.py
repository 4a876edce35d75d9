"""Robust accuracy, multi-model robustness reports and masking checks.

* :func:`robust_accuracy`: accuracy of one model under one attack.
* :class:`RobustnessReport`: models x attacks x eps (the paper's Tables 1-3),
  a transfer matrix (Tables 4-6), per-example worst case over attacks
  (as AutoAttack reports it), and gradient-masking sanity checks after
  Athalye et al. (2018) and Carlini et al. (2019), written to JSON, Markdown,
  CSV and a PNG plot.
"""

from __future__ import annotations

import csv
import json
import os
import warnings
from typing import Callable, Iterable, Optional, Union

import keras
import numpy as np
import tensorflow as tf

from keras_gradreg import attacks as attacks_lib
from keras_gradreg import regularizers as regs
from keras_gradreg.attacks import _core

__all__ = ["robust_accuracy", "RobustnessReport", "ATTACKS"]

ATTACKS = {
    "fgsm": attacks_lib.fgsm,
    "bim": attacks_lib.bim,
    "cw": attacks_lib.cw_linf,
    "pgd": attacks_lib.pgd,
    "apgd": attacks_lib.apgd,
}
_NEEDS_STEP = (attacks_lib.bim, attacks_lib.cw_linf, attacks_lib.pgd)
DEFAULT_STEPS = 10
_RESERVED = ("transfer", "transfer_eps", "masking_checks", "warnings", "settings")


# Attacks and data -------------------------------------------------------


def _attack_function(attack) -> Callable:
    if callable(attack):
        return attack
    if attack in ATTACKS:
        return ATTACKS[attack]
    raise ValueError(
        f"Unknown attack {attack!r}: use one of {sorted(ATTACKS)} or a "
        "callable attack(model, x, y, eps=eps, **kwargs) -> x_adv."
    )


def _craft(model, x, y, attack: Callable, eps: float, kwargs: dict):
    """Adversarial examples; named attacks get steps 10, step 2.5 eps/steps."""
    kwargs = dict(kwargs)
    if attack in _NEEDS_STEP:
        kwargs.setdefault("steps", DEFAULT_STEPS)
        kwargs.setdefault("step_size", 2.5 * eps / kwargs["steps"])
    return attack(model, x, y, eps=eps, **kwargs)


def _correct(model, x, labels: np.ndarray, batch_size: int) -> np.ndarray:
    logits = _core.predict_logits(model, x, batch_size)
    return np.argmax(logits.numpy(), axis=-1) == labels


def _is_batched(dataset: tf.data.Dataset, model) -> bool:
    x_spec, y_spec = tuple(dataset.element_spec)[:2]
    if y_spec.shape.rank == 0:
        return False
    if x_spec.shape.rank and x_spec.shape[0] is None:
        return True
    inputs = getattr(model, "inputs", None) or getattr(
        getattr(model, "base", None), "inputs", None
    )
    if inputs:
        return x_spec.shape.rank == len(inputs[0].shape)
    raise ValueError(
        "Cannot tell whether the dataset is batched; batch it with "
        "dataset.batch(n) before passing it."
    )


def _batches(data, batch_size: int, model):
    """Yields ``(x, sparse labels)`` numpy batches and the batch count."""
    if isinstance(data, tf.data.Dataset):
        if not _is_batched(data, model):
            data = data.batch(batch_size)
        count = int(data.cardinality())
        count = count if count >= 0 else None
        batches = (
            (np.asarray(e[0]), regs.sparse_labels(e[1]).numpy())
            for e in data.as_numpy_iterator()
        )
        return batches, count
    if not isinstance(data, (tuple, list)) or len(data) != 2:
        raise TypeError(
            "data must be a tuple (x, y) of arrays or a tf.data.Dataset of "
            f"(x, y) elements, got {type(data).__name__}."
        )
    x = np.asarray(data[0])
    labels = regs.sparse_labels(data[1]).numpy()
    if len(x) != len(labels):
        raise ValueError(f"x has {len(x)} examples but y has {len(labels)}.")
    starts = range(0, len(x), batch_size)
    batches = ((x[s : s + batch_size], labels[s : s + batch_size]) for s in starts)
    return batches, len(starts)


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
        attack: ``"fgsm"``, ``"bim"``, ``"cw"``, ``"pgd"``, ``"apgd"``, a
            callable ``attack(model, x, y, eps=eps, **kwargs) -> x_adv``, or
            None for clean accuracy. Named BIM, C&W and PGD default to 10
            steps of ``2.5 * eps / steps``.
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
    _core.check_number("eps", eps, 0.0, strict=False)
    batch_size = _core.check_int("batch_size", batch_size)
    attack_fn = None if attack is None else _attack_function(attack)
    batches, count = _batches(data, batch_size, model)
    progbar = keras.utils.Progbar(count, verbose=verbose, unit_name="batch")
    correct, total = 0, 0
    for x, labels in batches:
        if attack_fn is not None and eps > 0:
            x = _craft(model, x, labels, attack_fn, eps, attack_kwargs)
        correct += int(_correct(model, x, labels, batch_size).sum())
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
    for name, spec in attacks.items():
        attack, kwargs = spec if isinstance(spec, tuple) else (spec, {})
        specs[str(name)] = (_attack_function(attack), dict(kwargs))
    if not specs:
        raise ValueError("attacks is empty.")
    return specs


def _eps_key(eps: float) -> str:
    return f"{eps:g}"


_CHECKS = {
    "iterative_at_least_fgsm": "at least as strong as FGSM",
    "monotone_in_eps": "accuracy non-increasing in eps",
    "large_eps_to_chance": "accuracy at large eps at most chance + margin",
    "whitebox_at_least_transfer": "white-box at least as strong as transfer",
}


def _check(kind, passed, failure, **where) -> dict:
    """One masking check; ``message`` is ``failure`` when it did not pass."""
    message = failure if not passed else f"ok: {_CHECKS[kind]}"
    return {"check": kind, **where, "passed": bool(passed), "message": message}


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
      as FGSM at the same eps (when "fgsm" is among the attacks);
    * ``monotone_in_eps``: accuracy never increases with eps (clean first);
    * ``large_eps_to_chance``: at ``large_eps`` the strongest attack brings
      accuracy to at most chance (1 / classes) + ``chance_margin``;
    * ``whitebox_at_least_transfer``: white-box accuracy is at most every
      transfer accuracy against the same target.

    Args:
        models: Dict name -> Keras model returning logits (or GradRegModel).
        attacks: List of attack names, or dict name -> name, callable, or
            ``(name or callable, kwargs)``.
        eps_values: L-inf radii, each > 0.
        transfer_eps: The eps of the transfer matrix; one of ``eps_values``,
            default the largest.
        large_eps: Optional eps for the "accuracy to chance" check.
        tolerance: Slack allowed in the comparisons before flagging.
        chance_margin: Slack above chance for the large-eps check.
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
        attacks: Union[Iterable[str], dict] = ("fgsm", "bim", "cw"),
        eps_values: Iterable[float] = (0.1, 0.2, 0.3),
        transfer_eps: Optional[float] = None,
        large_eps: Optional[float] = None,
        tolerance: float = 0.0,
        chance_margin: float = 0.1,
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
        self.eps_values = sorted(
            _core.check_number("eps", e, 0.0, strict=True) for e in eps_values
        )
        if not self.eps_values:
            raise ValueError("eps_values is empty.")
        if transfer_eps is None:
            transfer_eps = self.eps_values[-1]
        if transfer_eps not in self.eps_values:
            raise ValueError(
                f"transfer_eps={transfer_eps} must be one of {self.eps_values}."
            )
        self.transfer_eps = transfer_eps
        if large_eps is not None:
            large_eps = _core.check_number("large_eps", large_eps, 0.0, True)
        self.large_eps = large_eps
        self.tolerance = _core.check_number("tolerance", tolerance, 0.0, False)
        self.chance_margin = _core.check_number(
            "chance_margin", chance_margin, 0.0, False
        )
        self.batch_size = _core.check_int("batch_size", batch_size)
        self.verbose = verbose
        self.results: Optional[dict] = None

    # Running --------------------------------------------------------------

    def _all_eps(self) -> list:
        extra = [self.large_eps] if self.large_eps is not None else []
        return self.eps_values + [e for e in extra if e not in self.eps_values]

    def _evaluate_batch(self, x, labels, store: dict) -> None:
        for source, model in self.models.items():
            store.setdefault(("clean", source), []).append(
                _correct(model, x, labels, self.batch_size)
            )
        for attack_name, (attack, kwargs) in self.attacks.items():
            for eps in self._all_eps():
                for source, model in self.models.items():
                    x_adv = _craft(model, x, labels, attack, eps, kwargs)
                    targets = self.models if eps == self.transfer_eps else {
                        source: model
                    }
                    for target, target_model in targets.items():
                        store.setdefault(
                            (source, target, attack_name, eps), []
                        ).append(
                            _correct(target_model, x_adv, labels, self.batch_size)
                        )

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
        batches, count = _batches(data, self.batch_size, any_model)
        progbar = keras.utils.Progbar(count, verbose=self.verbose)
        num_classes = None
        for x, labels in batches:
            if num_classes is None:
                num_classes = int(_core.predict_logits(any_model, x[:1]).shape[-1])
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
            robust = clean.copy()
            for attack in self.attacks:
                hit = correct[(name, name, attack, eps)]
                entry.setdefault(attack, {})[_eps_key(eps)] = float(hit.mean())
                robust &= hit
            worst_case[_eps_key(eps)] = float(robust.mean())
        entry["worst_case"] = worst_case
        if self.large_eps is not None:
            entry["large_eps"] = {"eps": self.large_eps}
            for attack in self.attacks:
                hit = correct[(name, name, attack, self.large_eps)]
                entry["large_eps"][attack] = float(hit.mean())
        return entry

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
        checks = self._masking_checks(results, num_classes)
        results["masking_checks"] = checks
        results["warnings"] = [c["message"] for c in checks if not c["passed"]]
        num_examples = len(correct[("clean", next(iter(self.models)))])
        results["settings"] = self._settings(num_classes, num_examples)
        return results

    # Masking checks -------------------------------------------------------

    def _masking_checks(self, results: dict, num_classes: int) -> list:
        checks = []
        for model in self.models:
            checks += self._fgsm_checks(model, results[model])
            checks += self._monotone_checks(model, results[model])
            if self.large_eps is not None:
                checks.append(
                    self._chance_check(model, results[model], num_classes)
                )
        return checks + self._transfer_checks(results)

    def _fgsm_checks(self, model: str, entry: dict) -> list:
        fgsm = [n for n, (fn, _) in self.attacks.items() if fn is attacks_lib.fgsm]
        if not fgsm:
            return []
        checks = []
        for attack in self.attacks:
            for eps in map(_eps_key, self.eps_values):
                if attack == fgsm[0]:
                    continue
                acc, fgsm_acc = entry[attack][eps], entry[fgsm[0]][eps]
                checks.append(_check(
                    "iterative_at_least_fgsm", acc <= fgsm_acc + self.tolerance,
                    f"{model}: {attack} ({acc:.2%}) is weaker than FGSM "
                    f"({fgsm_acc:.2%}) at eps={eps}: the attack may be weak "
                    "or the gradients masked.",
                    model=model, attack=attack, eps=eps,
                ))
        return checks

    def _monotone_checks(self, model: str, entry: dict) -> list:
        checks = []
        for attack in self.attacks:
            series = [("0", entry["clean"])] + [
                (e, entry[attack][e]) for e in map(_eps_key, self.eps_values)
            ]
            rises = [
                f"{a[1]:.2%} at eps={a[0]} -> {b[1]:.2%} at eps={b[0]}"
                for a, b in zip(series, series[1:])
                if b[1] > a[1] + self.tolerance
            ]
            checks.append(_check(
                "monotone_in_eps", not rises,
                f"{model}: accuracy under {attack} increases with eps: "
                + ", ".join(rises) + ".",
                model=model, attack=attack,
            ))
        return checks

    def _chance_check(self, model: str, entry: dict, num_classes: int) -> dict:
        best = min(entry["large_eps"][a] for a in self.attacks)
        bound = 1.0 / num_classes + self.chance_margin
        return _check(
            "large_eps_to_chance", best <= bound,
            f"{model}: at eps={self.large_eps:g} the strongest attack leaves "
            f"{best:.2%} accuracy, above chance + margin ({bound:.2%}): the "
            "attacks may be failing.",
            model=model, eps=_eps_key(self.large_eps),
        )

    def _transfer_checks(self, results: dict) -> list:
        checks = []
        matrix = results["transfer"]
        for target in self.models:
            for attack in self.attacks:
                white = matrix[target][target][attack]
                for source in self.models:
                    if source == target:
                        continue
                    moved = matrix[source][target][attack]
                    checks.append(_check(
                        "whitebox_at_least_transfer",
                        white <= moved + self.tolerance,
                        f"{target}: white-box {attack} ({white:.2%}) is weaker "
                        f"than {attack} transferred from {source} ({moved:.2%}) "
                        f"at eps={self.transfer_eps:g}: a sign of masked "
                        "gradients.",
                        model=target, source=source, attack=attack,
                        eps=_eps_key(self.transfer_eps),
                    ))
        return checks

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
        os.makedirs(out_dir, exist_ok=True)
        paths = {
            "json": os.path.join(out_dir, "results.json"),
            "md": os.path.join(out_dir, "results.md"),
            "csv": os.path.join(out_dir, "results.csv"),
            "png": os.path.join(out_dir, "accuracy_vs_eps.png"),
        }
        with open(paths["json"], "w") as handle:
            json.dump(self.results, handle, indent=2)
        with open(paths["md"], "w") as handle:
            handle.write(_markdown(self.results, self.models, self.attacks))
        with open(paths["csv"], "w", newline="") as handle:
            csv.writer(handle).writerows(
                _csv_rows(self.results, self.models, self.attacks)
            )
        try:
            _plot(self.results, self.models, self.attacks, paths["png"])
        except ImportError:
            warnings.warn("matplotlib is not installed: no accuracy_vs_eps.png.")
            del paths["png"]
        return paths



# Writers ------------------------------------------------------------------


def _percent(value: float) -> str:
    return f"{100 * value:.1f}"


def _markdown(results: dict, models: dict, attacks: dict) -> str:
    eps_keys = [_eps_key(e) for e in results["settings"]["eps_values"]]
    columns = [(a, e) for a in list(attacks) + ["worst_case"] for e in eps_keys]
    lines = [
        "# Robustness report",
        "",
        f"{results['settings']['num_examples']} examples; accuracy in %; "
        "white-box L-inf attacks; worst_case = per-example worst over all "
        "attacks and the clean prediction.",
        "",
        "| Model | Natural | "
        + " | ".join(f"{a} eps={e}" for a, e in columns) + " |",
        "|---" * (len(columns) + 2) + "|",
    ]
    for name in models:
        row = [name, _percent(results[name]["clean"])]
        row += [_percent(results[name][a][e]) for a, e in columns]
        lines.append("| " + " | ".join(row) + " |")
    transfer = results["transfer"]
    pairs = [(a, s) for a in attacks for s in models]
    lines += [
        "",
        f"## Transfer attacks at eps={results['transfer_eps']:g} (%)",
        "",
        "Rows: the model evaluated; columns: attack / model the examples were "
        "crafted on (the diagonal is white-box).",
        "",
        "| Model | " + " | ".join(f"{a} / {s}" for a, s in pairs) + " |",
        "|---" * (len(pairs) + 1) + "|",
    ]
    for target in models:
        row = [target] + [_percent(transfer[s][target][a]) for a, s in pairs]
        lines.append("| " + " | ".join(row) + " |")
    checks = results["masking_checks"]
    lines += ["", "## Masking checks", "",
              f"{len(checks) - len(results['warnings'])} of {len(checks)} "
              "checks passed.", ""]
    lines += [f"- **WARNING**: {message}" for message in results["warnings"]]
    return "\n".join(lines) + "\n"


def _csv_rows(results: dict, models: dict, attacks: dict) -> list:
    rows = [["kind", "source", "target", "attack", "eps", "accuracy"]]
    for name in models:
        rows.append(["clean", name, name, "", 0.0, results[name]["clean"]])
        for attack in list(attacks) + ["worst_case"]:
            kind = "worst_case" if attack == "worst_case" else "white_box"
            for eps, acc in results[name][attack].items():
                rows.append([kind, name, name, attack, float(eps), acc])
    for source, targets in results["transfer"].items():
        for target, accs in targets.items():
            for attack, acc in accs.items():
                rows.append(["transfer", source, target, attack,
                             results["transfer_eps"], acc])
    return rows


def _plot(results: dict, models: dict, attacks: dict, path: str) -> None:
    # A bare Figure renders with Agg and leaves pyplot's backend untouched.
    from matplotlib.figure import Figure

    panels = list(attacks) + ["worst_case"]
    eps_values = [0.0] + list(results["settings"]["eps_values"])
    figure = Figure(figsize=(3.2 * len(panels), 3.0))
    axes = figure.subplots(1, len(panels), squeeze=False)
    for axis, attack in zip(axes[0], panels):
        for name in models:
            accs = [results[name]["clean"]] + [
                results[name][attack][_eps_key(e)] for e in eps_values[1:]
            ]
            axis.plot(eps_values, accs, marker="o", label=name)
        axis.set_title(attack)
        axis.set_xlabel("eps (L-inf)")
        axis.set_ylim(0.0, 1.02)
    axes[0][0].set_ylabel("accuracy")
    axes[0][-1].legend(fontsize="small")
    figure.tight_layout()
    figure.savefig(path, dpi=100)
