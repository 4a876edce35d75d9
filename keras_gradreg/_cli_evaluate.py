"""``keras-gradreg evaluate``: clean and robust accuracy of a saved model.

Also the table both commands print, and the robustness measurement that
``finetune`` runs before and after training.
"""

from __future__ import annotations

import os
from typing import Sequence

from keras_gradreg import evaluation
from keras_gradreg._cli_io import check_compatible
from keras_gradreg._cli_io import check_fresh
from keras_gradreg._cli_io import load_data
from keras_gradreg._cli_io import load_model
from keras_gradreg._cli_io import one_line
from keras_gradreg._cli_io import prepare_output
from keras_gradreg._cli_settings import AttackSettings
from keras_gradreg._cli_settings import CommandLineError
from keras_gradreg._cli_settings import attack_settings
from keras_gradreg._cli_settings import attack_specs
from keras_gradreg._cli_settings import check_dataset
from keras_gradreg._cli_settings import check_numbers
from keras_gradreg._cli_settings import parse_attacks
from keras_gradreg._cli_settings import takes_step_size

EVALUATE_FILES = tuple(evaluation.Results.FILES.values())
EVALUATE_SECTION = "evaluate"  # the section of the command's own table


def _simple_results(entry: dict, attacks, eps: tuple) -> dict:
    """The report's entry with eps keys spelled as the user gave them."""
    results = {"clean": entry["clean"]}
    for attack in attacks:
        results[attack] = {value: entry[attack][f"{float(value):g}"]
                           for value in eps}
    return results


def robustness(model, data, attacks: Sequence[str],
               settings: AttackSettings, args) -> tuple:
    """Runs a RobustnessReport; returns it and its accuracies by user eps."""
    report = evaluation.RobustnessReport(
        {"model": model}, attack_specs(attacks, settings, args),
        [float(value) for value in settings.eps],
        batch_size=args.batch_size or 256, verbose=1,
    )
    entry = report.run(data).model_entry("model")
    return report, _simple_results(entry, report.attacks, settings.eps)


def print_warnings(results: evaluation.Results, when: str = "") -> None:
    """Prints each failed masking check as one ``WARNING:`` line (they are
    in results.md too)."""
    for warning in results.warnings:
        print(f"WARNING{when}: {one_line(warning)}")


def format_table(results: dict, eps: tuple) -> str:
    """Formats ``{"clean", attack: {eps: acc}}`` as a text table.

    Example:
        >>> print(format_table({"clean": 0.9, "mine": {"0.1": 0.5}}, ("0.1",)))
        clean accuracy: 90.00%
        attack  eps=0.1
        mine     50.00%
    """
    headers = [f"eps={value}" for value in eps]
    width = max(len(h) for h in headers + ["100.00%"])
    names = max([7] + [len(attack) for attack in results if attack != "clean"])
    lines = [f"clean accuracy: {100 * results['clean']:.2f}%",
             "attack".ljust(names) + " " + " ".join(
                 h.rjust(width) for h in headers)]
    for attack, accuracies in results.items():
        if attack != "clean":
            cells = [f"{100 * accuracies[value]:.2f}%".rjust(width)
                     for value in eps]
            lines.append(f"{attack:<{names}} " + " ".join(cells))
    return "\n".join(lines)


def _write_evaluation(results, table: dict, eps: tuple, output) -> None:
    """Adds the command's table (eps as given) to the results as a section,
    writes their files into the output's scratch folder and swaps it in
    place of the old folder with one rename (the old folder's other files
    are carried over): a kill leaves the old outputs or the new, never a
    mix."""
    results.add_section(
        EVALUATE_SECTION, table, title="keras-gradreg evaluate",
        markdown=["Accuracy by eps as given on the command line:", "",
                  "```", *format_table(table, eps).splitlines(), "```"])
    results.save(output.target)
    output.commit()


def evaluate_command(args) -> evaluation.Results:
    """Runs ``keras-gradreg evaluate``; returns the results written."""
    check_dataset(args.dataset)
    check_numbers(args)
    attacks = parse_attacks(args.attacks)
    iterative = any(takes_step_size(name) for name in attacks)
    settings = attack_settings(args, iterative)
    if os.path.exists(args.out) and not os.path.isdir(args.out):
        raise CommandLineError(f"--out {args.out} is a file, not a folder.")
    check_fresh([os.path.join(args.out, n) for n in EVALUATE_FILES],
                args.overwrite)
    model = load_model(args.model)
    x, y = load_data(args.dataset, args.split, args.data_dir,
                     args.num_examples)
    y = check_compatible(model, x, y, args.dataset, settings.clip_min,
                         settings.clip_max)
    output = prepare_output(args.out, "--out",
                            keep=lambda name: name not in EVALUATE_FILES)
    try:
        print(f"Evaluating {args.model} on {len(x)} examples of "
              f"{args.dataset}.")
        report, table = robustness(model, (x, y), attacks, settings, args)
        _write_evaluation(report.results, table, settings.eps, output)
    except BaseException:
        output.discard()
        raise
    print(format_table(table, settings.eps))
    print_warnings(report.results)
    written = [name for name in EVALUATE_FILES
               if os.path.exists(os.path.join(args.out, name))]
    print(f"Wrote {', '.join(written)} to {args.out}.")
    return report.results
