"""The ``keras-gradreg`` command: evaluate a saved model, or make it robust.

``evaluate`` measures clean accuracy and accuracy under the L-inf attacks of
:mod:`keras_gradreg.attacks` through :class:`keras_gradreg.RobustnessReport`;
``finetune`` trains a saved model for a few more epochs with a robust
recipe and saves the result. The default recipe, ``--recipe n_fgsm``, is the
one docs/RESULTS.md measured best for its cost: N-FGSM adversarial training
(:meth:`keras_gradreg.AdversarialTrainingModel.n_fgsm`) at ``--train_eps``,
with the paper's input-gradient penalty on top when ``--c`` > 0;
``--recipe gradreg`` is the paper's penalty alone
(:class:`keras_gradreg.GradRegModel`, Eq. 2-4 of Yu et al.)::

    keras-gradreg evaluate natural.keras --dataset mnist --out report/
    keras-gradreg finetune natural.keras --dataset mnist --train_eps 0.1 \\
        --epochs 2 --out robust.keras
    keras-gradreg finetune natural.keras --dataset mnist --recipe gradreg \\
        --c 0.3 --epochs 2 --out logit_reg.keras

``--dataset`` is a name of :func:`keras_gradreg.datasets.load` or
``npz:FILE`` (arrays ``x`` and ``y`` in one ``.npz``). Attack settings
default to the paper's for its datasets and must be given for others. Bad
input ends the command with one line on stderr and exit status 2 (1 when a
step fails at run time); nothing is written then, and existing outputs are
kept unless ``--overwrite`` is given. ``finetune`` also logs to TensorBoard
(``--logdir``, default ``logs`` beside ``--out``; ``--no_tensorboard`` turns
it off). ``python -m keras_gradreg`` is the same command.
"""

from __future__ import annotations

import argparse
import inspect
import os
import sys
from typing import Optional, Sequence

import keras

from keras_gradreg import _cli_tensorboard
from keras_gradreg import adversarial_training
from keras_gradreg import attacks as attacks_lib
from keras_gradreg import evaluation
from keras_gradreg import regularizers
from keras_gradreg._cli_io import check_compatible
from keras_gradreg._cli_io import check_fresh
from keras_gradreg._cli_io import load_data
from keras_gradreg._cli_io import load_model
from keras_gradreg._cli_io import one_line
from keras_gradreg._cli_io import replace_folder_files
from keras_gradreg._cli_io import write_atomically
from keras_gradreg._cli_settings import NPZ_PREFIX  # noqa: F401
from keras_gradreg._cli_settings import PAPER_SETTINGS
from keras_gradreg._cli_settings import AttackSettings
from keras_gradreg._cli_settings import CommandLineError
from keras_gradreg._cli_settings import attack_settings
from keras_gradreg._cli_settings import attack_specs
from keras_gradreg._cli_settings import check_dataset
from keras_gradreg._cli_settings import check_numbers
from keras_gradreg._cli_settings import parse_attacks
from keras_gradreg._cli_settings import takes_step_size
from keras_gradreg.adversarial_training import AdversarialTrainingModel
from keras_gradreg.model import GradRegModel

__all__ = ["main", "build_parser", "PAPER_SETTINGS", "AttackSettings"]

PROG = "keras-gradreg"
# The files of evaluation.Results, and report.json, written by 0.1.0 (an
# old one is replaced under --overwrite, so no stale file stays).
EVALUATE_FILES = tuple(evaluation.Results.FILES.values()) + ("report.json",)
EVALUATE_SECTION = "evaluate"  # the section of the command's own table
# The command's defaults, named in keras_gradreg.attacks.
EVALUATE_ATTACKS = attacks_lib.DEFAULT_ATTACKS
FINETUNE_ATTACKS = attacks_lib.QUICK_ATTACKS
# finetune's recipes: AdversarialTrainingModel's named constructors (the
# first, N-FGSM, is the default: docs/RESULTS.md measured it best per cost on
# MNIST), and the paper's penalty alone.
PENALTY_ONLY = "gradreg"
RECIPES = tuple(adversarial_training.RECIPES) + (PENALTY_ONLY,)
DEFAULT_RECIPE = RECIPES[0]
# c when --c is not given and the model has none: the paper's penalty alone
# needs one; the adversarial recipes train without it.
DEFAULT_C = {PENALTY_ONLY: 0.01}


class _Parser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are one line, not usage + traceback."""

    def error(self, message):
        raise CommandLineError(f"{message} (see {self.prog} --help).")


# Arguments -------------------------------------------------------------------


def _add_data_arguments(parser, split: str) -> None:
    parser.add_argument("model", help="A saved Keras model (.keras or .h5).")
    parser.add_argument(
        "--dataset", required=True,
        help=f"One of {', '.join(PAPER_SETTINGS)}, or npz:FILE with arrays "
        "x and y.",
    )
    parser.add_argument("--data_dir", help="Folder of the dataset's files.")
    parser.add_argument("--split", default=split, help="Dataset split.")
    parser.add_argument(
        "--num_examples", type=int, help="Use the first N examples only."
    )
    parser.add_argument("--batch_size", type=int, default=None)
    parser.add_argument("--overwrite", action="store_true",
                        help="Replace existing output files.")


def _add_attack_arguments(parser) -> None:
    group = parser.add_argument_group(
        "attacks", "Default to the paper's settings for its datasets."
    )
    group.add_argument("--eps", help="Comma-separated L-inf radii.")
    group.add_argument("--step_size", type=float,
                       help="Step of the fixed-step attacks (BIM, C&W, PGD).")
    group.add_argument("--steps", type=int,
                       help="Steps of the fixed-step attacks.")
    group.add_argument("--clip_min", type=float)
    group.add_argument("--clip_max", type=float)
    group.add_argument("--no_clip", action="store_true",
                       help="Unbounded inputs (e.g. MFCC features).")
    group.add_argument("--pgd_restarts", type=int, default=1,
                       help="Restarts of the fixed-step attacks that restart "
                       "(PGD).")
    group.add_argument("--apgd_steps", type=int, default=100,
                       help="Steps of the attacks that adapt their step "
                       "(APGD, APGD-T, FAB-T, AutoAttack).")
    group.add_argument("--seed", type=int, default=0,
                       help="Seed of the random starts (and of training).")


def build_parser() -> argparse.ArgumentParser:
    """Returns the parser of the ``keras-gradreg`` command.

    Example:
        >>> args = build_parser().parse_args(
        ...     ["evaluate", "m.keras", "--dataset", "mnist", "--out", "r"])
        >>> args.command, args.attacks
        ('evaluate', 'fgsm,bim,cw,pgd')
    """
    parser = _Parser(prog=PROG, description=__doc__.split("\n")[0])
    parser.add_argument("--debug", action="store_true",
                        help="Show Python tracebacks of failures.")
    commands = parser.add_subparsers(dest="command", required=True,
                                     parser_class=_Parser)
    evaluate = commands.add_parser(
        "evaluate", help="Clean and robust accuracy of a saved model."
    )
    _add_data_arguments(evaluate, split="test")
    evaluate.add_argument(
        "--attacks", default=",".join(EVALUATE_ATTACKS),
        help=f"Comma-separated, from {','.join(attacks_lib.ATTACKS)}.",
    )
    evaluate.add_argument("--out", required=True, help="Output folder.")
    _add_attack_arguments(evaluate)
    evaluate.set_defaults(handler=evaluate_command)

    finetune = commands.add_parser(
        "finetune", help="Fine-tune a saved model with GradRegModel."
    )
    _add_data_arguments(finetune, split="train")
    finetune.add_argument(
        "--recipe", default=DEFAULT_RECIPE, choices=RECIPES,
        help="n_fgsm (default: N-FGSM, noise of 2 * train_eps and one step "
        "of train_eps, unprojected), fgsm_rs, pgd (--train_steps steps of "
        "2.5 * train_eps / steps), or gradreg (the paper's penalty alone).")
    finetune.add_argument(
        "--train_eps", type=float,
        help="L-inf radius of the training attack (default: the smallest "
        "--eps).")
    finetune.add_argument("--train_steps", type=int, default=7,
                          help="Attack steps of --recipe pgd (default 7).")
    finetune.add_argument(
        "--c", type=float,
        help="Penalty weight c of Eq. 2, at the adversarial examples for the "
        "adversarial recipes (default: the model's own, else 0.01 for "
        "gradreg and 0 for the others).")
    finetune.add_argument("--regularizer",
                          choices=sorted(regularizers.REGULARIZERS))
    finetune.add_argument("--norm", choices=sorted(regularizers.NORMS))
    finetune.add_argument("--epochs", type=int, default=1)
    finetune.add_argument("--learning_rate", type=float, default=1e-4)
    finetune.add_argument("--optimizer", default="adam",
                          help="A Keras optimizer name (default adam).")
    finetune.add_argument("--eval_dataset",
                          help="Data to measure accuracy on (default: "
                          "--dataset).")
    finetune.add_argument("--eval_split", default="test")
    finetune.add_argument("--eval_examples", type=int, default=1000)
    finetune.add_argument("--out", required=True, help="Output .keras file.")
    finetune.add_argument(
        "--logdir", help="TensorBoard folder; the run goes into "
        "LOGDIR/<name of --out> (default: logs beside --out).")
    finetune.add_argument(
        "--no_tensorboard", action="store_true",
        help="Write no TensorBoard logs (scalars, input-gradient norms, "
        "conv1/fc2 histograms, FGSM accuracy per epoch, HParams).")
    _add_attack_arguments(finetune)
    finetune.set_defaults(handler=finetune_command)
    return parser


# evaluate --------------------------------------------------------------------


def _simple_results(entry: dict, attacks, eps: tuple) -> dict:
    """The report's entry with eps keys spelled as the user gave them."""
    results = {"clean": entry["clean"]}
    for attack in attacks:
        results[attack] = {value: entry[attack][f"{float(value):g}"]
                           for value in eps}
    return results


def _robustness(model, data, attacks: Sequence[str],
                settings: AttackSettings, args) -> tuple:
    """Runs a RobustnessReport; returns it and its accuracies by user eps."""
    report = evaluation.RobustnessReport(
        {"model": model}, attack_specs(attacks, settings, args),
        [float(value) for value in settings.eps],
        batch_size=args.batch_size or 256, verbose=1,
    )
    entry = report.run(data)["model"]
    return report, _simple_results(entry, report.attacks, settings.eps)


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


def _write_evaluation(results, table: dict, eps: tuple, out: str) -> None:
    """Adds the command's table (eps as given) to the results as a section
    and writes their files, each by atomic rename once all are complete (an
    interrupt leaves the old outputs intact)."""
    results.add_section(
        EVALUATE_SECTION, table, title="keras-gradreg evaluate",
        markdown=["Accuracy by eps as given on the command line:", "",
                  "```", *format_table(table, eps).splitlines(), "```"])
    replace_folder_files(out, results.save, EVALUATE_FILES)


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
    check_compatible(model, x, y, args.dataset)
    print(f"Evaluating {args.model} on {len(x)} examples of {args.dataset}.")
    report, table = _robustness(model, (x, y), attacks, settings, args)
    _write_evaluation(report.results, table, settings.eps, args.out)
    print(format_table(table, settings.eps))
    for warning in report.results.warnings:
        print(f"WARNING: {warning}")
    written = [name for name in EVALUATE_FILES
               if os.path.exists(os.path.join(args.out, name))]
    print(f"Wrote {', '.join(written)} to {args.out}.")
    return report.results


# finetune --------------------------------------------------------------------


def _wrap(model: keras.Model, args, settings: AttackSettings) -> GradRegModel:
    """The model's network in a new training model of ``--recipe`` (never a
    double wrap: a saved GradRegModel gives its base, and its penalty
    settings where no flag is given)."""
    previous = model if isinstance(model, GradRegModel) else None
    base = previous.base if previous else model
    if args.c is not None:
        c = args.c
    elif previous is not None and previous.c > 0:
        c = previous.c
    else:
        c = DEFAULT_C.get(args.recipe, 0.0)
    penalty = dict(
        c=c,
        regularizer=args.regularizer or (
            previous.regularizer if previous else "logit_margin"),
        norm=args.norm or (previous.norm if previous else "squared_l2"),
    )
    try:
        if args.recipe == PENALTY_ONLY:
            return GradRegModel(base, **penalty)
        recipe = adversarial_training.RECIPES[args.recipe]
        if "steps" in inspect.signature(recipe).parameters:
            penalty["steps"] = args.train_steps
        return recipe(base, eps=train_eps(args, settings),
                      clip_min=settings.clip_min, clip_max=settings.clip_max,
                      seed=args.seed, **penalty)
    except (TypeError, ValueError) as error:
        raise CommandLineError(one_line(error)) from error


def train_eps(args, settings: AttackSettings) -> float:
    """``--train_eps``, or the smallest evaluation eps.

    Example:
        >>> import argparse
        >>> train_eps(argparse.Namespace(train_eps=None),
        ...           PAPER_SETTINGS["mnist"])
        0.1
    """
    if args.train_eps is not None:
        return float(args.train_eps)
    return min(float(eps) for eps in settings.eps)


def _describe(robust: GradRegModel, args) -> str:
    """``"N-FGSM at eps 0.1 with c=0.03 (l1)"`` and the like."""
    if not isinstance(robust, AdversarialTrainingModel):
        return f"the paper's penalty, c={robust.c:g}"
    title = adversarial_training.RECIPES[args.recipe].title.replace(
        "-k", f"-{robust.steps}")
    penalty = (f" plus the penalty, c={robust.c:g} "
               f"({getattr(robust.norm, '__name__', robust.norm)})"
               if robust.c > 0 else "")
    return f"{title} at eps {robust.eps:g}{penalty}"


def _optimizer(args) -> keras.optimizers.Optimizer:
    try:
        return keras.optimizers.get({
            "class_name": args.optimizer,
            "config": {"learning_rate": args.learning_rate},
        })
    except (TypeError, ValueError) as error:
        raise CommandLineError(
            f"unknown optimizer {args.optimizer!r}: use a Keras optimizer "
            "name such as adam or sgd."
        ) from error


def _print_comparison(before: dict, after: dict, eps: tuple) -> None:
    rows = [("clean", before["clean"], after["clean"])]
    rows += [(f"{attack} eps={value}", before[attack][value],
              after[attack][value])
             for attack in FINETUNE_ATTACKS for value in eps]
    width = max(len(row[0]) for row in rows)
    print(f"{'accuracy':<{width}}   before    after")
    for name, old, new in rows:
        print(f"{name:<{width}} {100 * old:7.2f}% {100 * new:7.2f}%")


def finetune_command(args) -> dict:
    """Runs ``keras-gradreg finetune``; returns accuracies before and after."""
    eval_spec = args.eval_dataset or args.dataset
    for spec in (args.dataset, eval_spec):
        check_dataset(spec)
    check_numbers(args)
    settings = attack_settings(
        args, iterative=any(map(takes_step_size, FINETUNE_ATTACKS)))
    if not args.out.endswith(".keras"):
        raise CommandLineError(f"--out {args.out} must end in .keras.")
    log_dir = None if args.no_tensorboard else _cli_tensorboard.run_dir(args)
    check_fresh([args.out] + ([log_dir] if log_dir else []), args.overwrite)
    optimizer = _optimizer(args)
    model = load_model(args.model)
    train = load_data(args.dataset, args.split, args.data_dir,
                      args.num_examples)
    held_out = load_data(eval_spec, args.eval_split, args.data_dir,
                         args.eval_examples)
    check_compatible(model, *train, args.dataset)
    check_compatible(model, *held_out, eval_spec)
    keras.utils.set_random_seed(args.seed)
    robust = _wrap(model, args, settings)
    print(f"Accuracy of {args.model} before fine-tuning:")
    _, before = _robustness(robust, held_out, FINETUNE_ATTACKS, settings,
                            args)
    robust.compile(optimizer, keras.losses.SparseCategoricalCrossentropy(
        from_logits=not robust.output_softmax), metrics=["accuracy"])
    print(f"Fine-tuning with {_describe(robust, args)} for {args.epochs} "
          "epoch(s):")
    logged = {} if log_dir is None else dict(
        callbacks=_cli_tensorboard.training_callbacks(
            log_dir, robust, train, held_out, settings),
        validation_data=tuple(a[:_cli_tensorboard.HELD_OUT_SIZE]
                              for a in held_out))
    with _cli_tensorboard.Timer() as timer:
        robust.fit(*train, batch_size=args.batch_size or 50,
                   epochs=args.epochs, verbose=1, **logged)
    print("Accuracy after fine-tuning:")
    report, after = _robustness(robust, held_out, FINETUNE_ATTACKS, settings,
                                args)
    if log_dir is not None:
        _cli_tensorboard.finish(log_dir, robust, args,
                                report.results.model_entry("model"),
                                timer.seconds)
    write_atomically(args.out, robust.save)
    _print_comparison(before, after, settings.eps)
    print(f"Saved the fine-tuned GradRegModel to {args.out}.")
    if log_dir is not None:
        print(f"TensorBoard: tensorboard --logdir {os.path.dirname(log_dir)}")
    return {"before": before, "after": after}


# Entry point -----------------------------------------------------------------


def _fail(message: str, status: int) -> None:
    print(f"{PROG}: error: {message}", file=sys.stderr)
    raise SystemExit(status)


def main(argv: Optional[Sequence[str]] = None) -> None:
    """Runs the ``keras-gradreg`` command line.

    Args:
        argv: The arguments after the program name (default ``sys.argv``).

    Raises:
        SystemExit: With status 2 for bad input and 1 for a failure at run
            time, after one line on stderr; 0 after ``--help``.

    Example:
        A missing model prints ``keras-gradreg: error: model file
        missing.keras not found.`` on stderr and exits with status 2:

        >>> try:
        ...     main(["evaluate", "missing.keras", "--dataset", "mnist",
        ...           "--out", "report"])
        ... except SystemExit as exit:
        ...     print(exit.code)
        2
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv
    try:
        args = build_parser().parse_args(argv)
        args.handler(args)
    except CommandLineError as error:
        if debug:
            raise
        _fail(str(error), 2)
    except KeyboardInterrupt:
        _fail("interrupted.", 130)
    except Exception as error:  # A one-line report, as promised; see --debug.
        if debug:
            raise
        _fail(f"{type(error).__name__}: {one_line(error)} (rerun with "
              "--debug for the traceback)", 1)
