"""The examples' tables: the paper's Table 1 / 4 layout, transfer and
training-time tables as sections of a ``keras_gradreg.Results``, and the
training curves."""

from __future__ import annotations

import dataclasses
import warnings
from typing import List, Optional

from keras_gradreg import attacks
from keras_gradreg.evaluation import markdown_table
from keras_gradreg.paper import PaperSettings

ROW_TITLES = {
    "natural": "Natural Model", "xent_reg": "Xent-reg Model",
    "logit_reg": "Logit-reg Model", "fgsm_rs_at": "FGSM-RS adv. training",
    "nfgsm_at": "N-FGSM adv. training", "pgd_at": "PGD adv. training",
}


def attack_title(key: str) -> str:
    """Table title of a results key: an attack's ``title`` (C&W for the
    key cw), or for a loss variant (apgd_dlr) the title, then the loss.

    Example:
        >>> attack_title("apgd_dlr"), attack_title(attacks.PAPER_ATTACKS[-1])
        ('APGD-DLR', 'C&W')
    """
    if key in attacks.ATTACKS:
        return getattr(attacks.ATTACKS[key], "title", key)
    name, _, loss = key.partition("_")
    if name not in attacks.ATTACKS:
        return key
    title = getattr(attacks.ATTACKS[name], "title", name)
    return f"{title}-{loss.upper()}" if loss else title


def _pct(value: float) -> str:
    return f"{100 * value:.1f}"


def _accuracymarkdown_table(results, names: List[str], columns: dict,
                    with_clean: bool) -> List[str]:
    """Rows: models; columns: ``{attack: title}`` at every eps."""
    eps_values = results.eps_values
    header = ["Models"] + (["Natural"] if with_clean else [])
    header += [f"{title} {e:g}" for title in columns.values()
               for e in eps_values]
    rows = []
    for name in names:
        row = [ROW_TITLES.get(name, name)]
        row += [_pct(results.accuracy(name))] if with_clean else []
        row += [_pct(results.accuracy(name, a, e)) for a in columns
                for e in eps_values]
        rows.append(row)
    return markdown_table(header, rows)


def _transfermarkdown_table(results, names: List[str]) -> List[str]:
    short = {"natural": "Natural", "xent_reg": "Xent", "logit_reg": "Logit",
             "fgsm_rs_at": "FGSM-RS AT", "nfgsm_at": "N-FGSM AT",
             "pgd_at": "PGD AT"}
    pairs = [(a, s) for a in attacks.PAPER_ATTACKS for s in names]
    header = ["Models"] + [
        f"{attack_title(a)} / {short.get(s, s)}" for a, s in pairs]
    rows = [[ROW_TITLES.get(t, t)] + [
        _pct(results.transfer(s, t, a)) for a, s in pairs] for t in names]
    return markdown_table(header, rows)


def _timemarkdown_table(training: dict, evaluation_s: float) -> List[str]:
    def seconds(entry: dict, per_epoch: bool) -> str:
        if entry["wall_time_s"] is None:  # resumed without its record
            return "not recorded"
        return f"{entry['wall_time_s'] / (max(entry['epochs'], 1) if per_epoch else 1):.1f}"

    rows = [[name, str(entry["epochs"]), f"{entry.get('c', '')}",
             seconds(entry, False), seconds(entry, True)]
            for name, entry in training.items()]
    lines = markdown_table(["Model", "epochs", "c", "training (s)", "s / epoch"], rows)
    return lines + ["", f"Evaluation (all models and attacks): "
                        f"{evaluation_s:.1f} s."]


def paper_tables(settings: PaperSettings, results) -> List[str]:
    """The paper's Tables 1-3 (white-box) and 4-6 (transfer), as Markdown
    lines of :class:`keras_gradreg.Results` (its models in order)."""
    names = results.model_names
    paper = {name: attack_title(name) for name in attacks.PAPER_ATTACKS}
    extras = {key: attack_title(key) for key in results.attack_names
              if key not in paper}
    size = results.settings["num_examples"]
    lines = [
        f"{size} test examples; white-box L-inf attacks; BIM and C&W "
        f"{settings.steps} iterations of step {settings.step_size:g}, C&W "
        f"k = {settings.confidence:g}. Natural = clean accuracy.", "",
    ] + _accuracymarkdown_table(results, names, paper, with_clean=True)
    if extras:
        lines += ["", "### Stronger attacks (honesty checks, not in the "
                  "paper)", "", "Worst case: per example, over all attacks "
                  "and the clean prediction.", ""]
        lines += _accuracymarkdown_table(results, names,
                                 dict(extras, worst_case="Worst case"),
                                 with_clean=False)
    lines += ["", f"### Transfer attacks at eps={results.transfer_eps:g} (%)",
              "", "Rows: the model evaluated; columns: attack / model the "
              "examples were crafted on (the diagonal is white-box).", ""]
    return lines + _transfermarkdown_table(results, names)


def add_sections(results, settings: PaperSettings, training: dict,
                 evaluation_s: float, c: dict, flag_record: dict,
                 resolved: dict) -> None:
    """Adds the experiment's sections to ``results``: the paper's tables,
    training records and wall times, c, the flags and resolved settings."""
    title = f"{settings.title}: test accuracy under adversarial attacks (%)"
    results.add_section("paper_tables", {"dataset": settings.dataset},
                        markdown=paper_tables(settings, results), title=title)
    results.add_section("training", training)
    results.add_section("wall_time_s", {
        "training": {name: e["wall_time_s"] for name, e in training.items()},
        "evaluation": evaluation_s,
    }, markdown=_timemarkdown_table(training, evaluation_s), title="Wall time")
    results.add_section("c", c, markdown=[
        f"Xent-reg c = {c['xent_reg']:g}, Logit-reg c = {c['logit_reg']:g}."])
    results.add_section("flags", flag_record)
    results.add_section("experiment", dict(
        dataset=settings.dataset, resolved=resolved,
        paper={k: v for k, v in dataclasses.asdict(settings).items()
               if k != "build_model"}))


def plot_training(training: dict, path: str) -> Optional[str]:
    """Plots loss and accuracy per epoch of every model into ``path``."""
    try:
        from matplotlib.figure import Figure
    except ImportError:
        warnings.warn("matplotlib is not installed: no training_curves.png.")
        return None
    figure = Figure(figsize=(8, 3))
    axes = figure.subplots(1, 2)
    for name, entry in training.items():
        for axis, key in zip(axes, ("loss", "accuracy")):
            values = entry["history"].get(key, [])
            axis.plot(range(1, len(values) + 1), values, marker="o", label=name)
            axis.set_xlabel("epoch")
            axis.set_title(f"training {key}")
    axes[1].legend(fontsize="small")
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    return path
