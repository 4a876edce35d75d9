"""``keras-gradreg evaluate``: clean and robust accuracy of a saved model.

Also the table both commands print, and the robustness measurement that
``finetune`` runs before and after training.
"""

from __future__ import annotations

import os
from typing import Sequence

from keras_gradreg import evaluation
from keras_gradreg.cli._io import check_compatible
from keras_gradreg.cli._io import check_fresh
from keras_gradreg.cli._io import load_data
from keras_gradreg.cli._io import load_model
from keras_gradreg.cli._io import one_line
from keras_gradreg.cli._io import prepare_output
from keras_gradreg.cli._settings import AttackSettings
from keras_gradreg.cli._settings import CommandLineError
from keras_gradreg.cli._settings import attack_settings
from keras_gradreg.cli._settings import attack_specs
from keras_gradreg.cli._settings import attacks_in_norm
from keras_gradreg.cli._settings import check_dataset
from keras_gradreg.cli._settings import check_numbers
from keras_gradreg.cli._settings import takes_step_size
from keras_gradreg.evaluation import _files
from keras_gradreg.evaluation._tables import eps_keys

EVALUATE_FILES = tuple(evaluation.Results.FILES.values())
EVALUATE_SECTION = "evaluate"  # the section of the command's own table
MODEL = "model"  # the model's name in the results
DEFAULT_BATCH = 256


def command_table(results: evaluation.Results) -> dict:
    """The command's table of ``results``: ``{"clean", attack: {eps: acc}}``,
    eps keyed as in the results (``"0.1"``)."""
    entry = results.model_entry(MODEL)
    table = {"clean": entry["clean"]}
    for attack in results.attack_names:
        table[attack] = {key: entry[attack][key]
                         for key in eps_keys(results.eps_values)}
    return table


def robustness(model, data, attacks: Sequence[str],
               settings: AttackSettings, args, norm: str = "linf",
               worst_case_only: bool = False, resume_dir=None,
               shard=None) -> tuple:
    """Runs a RobustnessReport; returns it and its table (:func:`command_table`).

    Args:
        model: The model to attack.
        data: ``(x, y)``.
        attacks: Names in :data:`keras_gradreg.attacks.ATTACKS`.
        settings: The attack settings of the flags.
        args: The parsed flags (``--seed``, ``--batch_size``, ...).
        norm: The threat model.
        worst_case_only: :class:`RobustnessReport`'s ``worst_case_only``.
        resume_dir: :meth:`RobustnessReport.run`'s ``resume_dir``.
        shard: :meth:`RobustnessReport.run`'s ``shard``.
    """
    report = evaluation.RobustnessReport(
        {MODEL: model}, attack_specs(attacks, settings, args),
        list(settings.eps),
        batch_size=args.batch_size or DEFAULT_BATCH, verbose=1,
        worst_case_only=worst_case_only, norm=norm,
    )
    results = report.run(data, resume_dir=resume_dir, shard=shard)
    return report, command_table(results)


def print_warnings(results: evaluation.Results, when: str = "") -> None:
    """Prints each failed masking check as one ``WARNING:`` line (they are
    in results.md too)."""
    for warning in results.warnings:
        print(f"WARNING{when}: {one_line(warning)}")


def format_table(results: dict, eps: Sequence[float]) -> str:
    """Formats ``{"clean", attack: {eps_key: acc}}`` as a text table.

    Example:
        >>> print(format_table({"clean": 0.9, "mine": {"0.1": 0.5}}, (0.1,)))
        clean accuracy: 90.00%
        attack  eps=0.1
        mine     50.00%
    """
    eps = eps_keys(eps)
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


def write_evaluation(results: evaluation.Results, out: str, output) -> None:
    """Writes ``results`` with the command's table into ``out`` and prints
    the table, the masking warnings and the files written.

    The table is added as a section; the files are written straight into
    the output's scratch folder, which then takes the old folder's place
    with one rename (the old folder's other files are carried over): a kill
    leaves the old outputs or the new, never a mix.
    """
    table = command_table(results)
    eps = results.eps_values
    try:
        results.add_section(
            EVALUATE_SECTION, table, title="keras-gradreg evaluate",
            markdown=["Accuracy by eps:", "",
                      "```", *format_table(table, eps).splitlines(), "```"])
        _files.write_into(results, output.target)
        output.commit()
    except BaseException:
        output.discard()
        raise
    print(format_table(table, eps))
    print_warnings(results)
    written = [name for name in EVALUATE_FILES
               if os.path.exists(os.path.join(out, name))]
    print(f"Wrote {', '.join(written)} to {out}.")


def check_out(out: str, overwrite: bool, flag: str = "--out") -> None:
    """Raises CommandLineError unless ``out`` may take the results files."""
    if os.path.exists(out) and not os.path.isdir(out):
        raise CommandLineError(f"{flag} {out} is a file, not a folder.")
    check_fresh([os.path.join(out, n) for n in EVALUATE_FILES], overwrite)


def prepare_results_output(out: str, flag: str = "--out"):
    """The prepared output of the results folder ``out``: its other files
    are kept."""
    return prepare_output(out, flag,
                          keep=lambda name: name not in EVALUATE_FILES)


def _set_threads(threads) -> None:
    if threads is None:
        return
    import tensorflow as tf

    try:
        tf.config.threading.set_intra_op_parallelism_threads(threads)
    except RuntimeError:
        raise CommandLineError(
            "--threads must be set before TensorFlow starts; run the "
            "command in a fresh process.") from None


def _check_shards(args, num_examples: int) -> None:
    """Raises CommandLineError for --shard / --processes that do not fit."""
    if args.processes > 1 and args.shard is not None:
        raise CommandLineError("--processes runs the shards itself: give "
                               "--processes or --shard, not both.")
    count = args.shard[1] if args.shard is not None else args.processes
    chunks = -(-num_examples // (args.batch_size or DEFAULT_BATCH))
    if count > chunks:
        raise CommandLineError(
            f"{count} shards of {chunks} chunks ({num_examples} examples in "
            f"batches of {args.batch_size or DEFAULT_BATCH}): give at most "
            f"{chunks} shards, or a smaller --batch_size.")
    if args.resume is not None and os.path.exists(args.resume) and (
            not os.path.isdir(args.resume)):
        raise CommandLineError(
            f"--resume {args.resume} is a file, not a folder.")


def evaluate_command(args) -> evaluation.Results:
    """Runs ``keras-gradreg evaluate``; returns the results written."""
    check_dataset(args.dataset)
    check_numbers(args)
    attacks = attacks_in_norm(args.attacks, args.norm)
    iterative = any(takes_step_size(name) for name in attacks)
    settings = attack_settings(args, iterative, args.norm)
    check_out(args.out, args.overwrite)
    _set_threads(args.threads)
    model = load_model(args.model)
    x, y = load_data(args.dataset, args.split, args.data_dir,
                     args.num_examples)
    _check_shards(args, len(x))
    y = check_compatible(model, x, y, args.dataset, settings.clip_min,
                         settings.clip_max)
    output = prepare_results_output(args.out)
    try:
        print(f"Evaluating {args.model} on {len(x)} examples of "
              f"{args.dataset}" + (f", shard {args.shard[0]} of "
                                   f"{args.shard[1]}" if args.shard else "")
              + ".")
        if args.processes > 1:
            from keras_gradreg.cli._processes import run_processes

            results = run_processes(args, output.target)
        else:
            report, _ = robustness(
                model, (x, y), attacks, settings, args, norm=args.norm,
                worst_case_only=args.worst_case_only,
                resume_dir=args.resume, shard=args.shard)
            results = report.results
    except BaseException:
        output.discard()
        raise
    write_evaluation(results, args.out, output)
    return results
