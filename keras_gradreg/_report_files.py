"""The files of a :class:`RobustnessReport`: JSON, Markdown, CSV and a plot."""

from __future__ import annotations

import csv
import json
import os
import warnings

from keras_gradreg._evaluation_core import eps_key


def write(results: dict, models: dict, attacks: dict, out_dir: str) -> dict:
    """Writes results.json/.md/.csv and accuracy_vs_eps.png into ``out_dir``.

    Without matplotlib the PNG is skipped with a warning.

    Returns:
        Dict kind (``"json"``, ``"md"``, ``"csv"``, ``"png"``) -> path of
        the files written.
    """
    os.makedirs(out_dir, exist_ok=True)
    paths = {
        "json": os.path.join(out_dir, "results.json"),
        "md": os.path.join(out_dir, "results.md"),
        "csv": os.path.join(out_dir, "results.csv"),
        "png": os.path.join(out_dir, "accuracy_vs_eps.png"),
    }
    with open(paths["json"], "w") as handle:
        json.dump(results, handle, indent=2)
    with open(paths["md"], "w") as handle:
        handle.write(_markdown(results, models, attacks))
    with open(paths["csv"], "w", newline="") as handle:
        csv.writer(handle).writerows(_csv_rows(results, models, attacks))
    try:
        _plot(results, models, attacks, paths["png"])
    except ImportError:
        warnings.warn("matplotlib is not installed: no accuracy_vs_eps.png.")
        del paths["png"]
    return paths


def _percent(value: float) -> str:
    return f"{100 * value:.1f}"


def _markdown(results: dict, models: dict, attacks: dict) -> str:
    eps_keys = [eps_key(e) for e in results["settings"]["eps_values"]]
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
                results[name][attack][eps_key(e)] for e in eps_values[1:]
            ]
            axis.plot(eps_values, accs, marker="o", label=name)
        axis.set_title(attack)
        axis.set_xlabel("eps (L-inf)")
        axis.set_ylim(0.0, 1.02)
    axes[0][0].set_ylabel("accuracy")
    axes[0][-1].legend(fontsize="small")
    figure.tight_layout()
    figure.savefig(path, dpi=100)
