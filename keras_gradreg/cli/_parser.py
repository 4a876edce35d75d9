"""The flags of ``keras-gradreg evaluate`` and ``finetune``, without TensorFlow.

Parsing, ``--help`` and flag errors run before TensorFlow is imported; the
commands themselves (``_evaluate``, ``_finetune``) import it once
the flags parse. So the names the help lists are spelled here: each tuple
below equals its registry (``keras_gradreg.attacks.ATTACKS``, the paper's
datasets, the recipes, regularizers, norms and AutoAttack versions), which
tests/test_cli.py checks.
"""

from __future__ import annotations

import argparse

NPZ_PREFIX = "npz:"


class CommandLineError(Exception):
    """Bad input: reported as one line on stderr, exit status 2."""


def one_line(error: BaseException) -> str:
    """``error``'s message on one line of at most 400 characters."""
    text = " ".join(str(error).split())
    return text if len(text) <= 400 else text[:397] + "..."


# The registries' names (see the module docstring) -----------------------------

DATASETS = ("mnist", "cifar10", "speech_commands")
"""The paper's datasets (``keras_gradreg.paper.SETTINGS``)."""
ATTACK_NAMES = ("fgsm", "bim", "cw", "pgd", "apgd", "apgd_t", "fab_t",
                "square", "autoattack")
"""``keras_gradreg.attacks.ATTACKS``."""
EVALUATE_ATTACKS = ("fgsm", "bim", "cw", "pgd")
"""``keras_gradreg.attacks.DEFAULT_ATTACKS``: what ``evaluate`` runs."""
FINETUNE_ATTACKS = ("fgsm", "pgd")
"""``keras_gradreg.attacks.QUICK_ATTACKS``: ``finetune``'s before / after."""
PENALTY_ONLY = "gradreg"
RECIPES = ("n_fgsm", "fgsm_rs", "pgd", PENALTY_ONLY)
"""``keras_gradreg.adversarial_training.RECIPES``, then the penalty alone."""
REGULARIZERS = ("cross_entropy", "logit_margin")
PENALTY_NORMS = ("l1", "l2", "linf", "squared_l2")
"""``keras_gradreg.regularizers.NORMS``: the penalty's gradient norms."""
AUTOATTACK_VERSIONS = ("fast", "rand", "standard")
THREAT_NORMS = ("linf", "l2", "l1")
"""``keras_gradreg.attacks.NORMS``: the threat models of ``evaluate``."""

DEFAULT_STEPS = 10
"""Steps of the fixed-step attacks on data without the paper's settings."""
DEFAULT_C = {PENALTY_ONLY: 0.01}
"""c when --c is not given and the model has none: the paper's penalty
alone needs one; the adversarial recipes train without it."""


class _Parser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are one line, not usage + traceback."""

    def error(self, message):
        raise CommandLineError(f"{message} (see {self.prog} --help).")


class _HelpFormatter(argparse.HelpFormatter):
    """Adds ``(default: X)`` to each flag's help that has a default and
    does not say it already."""

    def _get_help_string(self, action):
        text = action.help or ""
        shown = action.default not in (None, False, argparse.SUPPRESS)
        if shown and action.option_strings and "default" not in text:
            stem, period = (text[:-1], ".") if text.endswith(".") else (
                text, "")
            text = f"{stem} (default: %(default)s){period}"
        return text


def build_parser(prog: str, description: str) -> argparse.ArgumentParser:
    """The parser of the command; each command's handler is ``handler``."""
    parser = _Parser(prog=prog, description=description,
                     formatter_class=_HelpFormatter)
    parser.add_argument("--debug", action="store_true",
                        help="Show Python tracebacks of failures.")
    commands = parser.add_subparsers(dest="command", required=True,
                                     parser_class=_Parser)
    _add_evaluate(commands)
    _add_merge(commands)
    _add_finetune(commands)
    return parser


def parse_shard(text: str) -> tuple:
    """``"i/n"`` -> ``(i, n)``, integers with ``0 <= i < n``.

    Example:
        >>> parse_shard("1/8")
        (1, 8)
    """
    index, slash, count = text.partition("/")
    try:
        index, count = int(index), int(count)
    except ValueError:
        index = count = None
    if not slash or index is None:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not i/n: give the shard index and the shard count, "
            "e.g. 0/8")
    if count < 1 or not 0 <= index < count:
        raise argparse.ArgumentTypeError(
            f"{text!r}: the shard index i must satisfy 0 <= i < n")
    return index, count


def command_argv(args: argparse.Namespace, **changes) -> list:
    """The arguments that parse back to ``args`` with ``changes`` applied.

    Example:
        >>> parser = build_parser("keras-gradreg", "")
        >>> args = parser.parse_args(["evaluate", "m.keras", "--dataset",
        ...                           "mnist", "--out", "r"])
        >>> argv = command_argv(args, shard=(1, 2))
        >>> vars(parser.parse_args(argv)) == dict(vars(args), shard=(1, 2))
        True
    """
    values = dict(vars(args), **changes)
    parser = build_parser("", "")
    command = parser._subparsers._group_actions[0].choices[args.command]
    positional, flags = [], []
    for action in command._actions:
        value = values.get(action.dest)
        if isinstance(action, argparse._HelpAction) or value is None or (
                value is False):
            continue
        if not action.option_strings:
            positional += [str(v) for v in (
                value if isinstance(value, list) else [value])]
        elif value is True:
            flags.append(action.option_strings[-1])
        else:
            text = "/".join(map(str, value)) if isinstance(
                value, tuple) else str(value)
            flags += [action.option_strings[-1], text]
    debug = ["--debug"] if values.get("debug") else []
    return debug + [args.command] + positional + flags


def _evaluate(args):
    from keras_gradreg.cli._evaluate import evaluate_command

    return evaluate_command(args)


def _merge(args):
    from keras_gradreg.cli._merge import merge_command

    return merge_command(args)


def _finetune(args):
    from keras_gradreg.cli._finetune import finetune_command

    return finetune_command(args)


def _add_evaluate(commands) -> None:
    evaluate = commands.add_parser(
        "evaluate", help="Clean and robust accuracy of a saved model.",
        description="Clean and robust accuracy of a saved model; writes "
        "results.json, results.md, results.csv, correct.npz and "
        "accuracy_vs_eps.png into --out.",
        formatter_class=_HelpFormatter)
    _add_data_arguments(
        evaluate, split="test",
        batch_size="Examples per attack batch (default: 256).")
    evaluate.add_argument(
        "--attacks",
        help=f"Comma-separated, from {', '.join(ATTACK_NAMES)} (default: "
        f"{','.join(EVALUATE_ATTACKS)}, less those that do not support "
        "--norm).")
    evaluate.add_argument("--out", required=True, help="Output folder.")
    evaluate.add_argument(
        "--norm", default=THREAT_NORMS[0], choices=THREAT_NORMS,
        help="The threat model: the norm of every attack and --eps. An "
        "attack that does not support it is an error (C&W is linf only, "
        "Square linf and l2); l2 and l1 need --eps.")
    scale = evaluate.add_argument_group(
        "scale", "Large evaluations: worst case only, resumable chunks of "
        "--batch_size examples, shards merged with keras-gradreg merge.")
    scale.add_argument(
        "--worst_case_only", action="store_true",
        help="Measure only the per-example worst case, the AutoAttack way: "
        "each attack runs on the examples every earlier attack left "
        "correct; an attack's column reads the accuracy left after it and "
        "those before it.")
    scale.add_argument(
        "--resume", metavar="DIR",
        help="Keep each finished chunk in DIR; a rerun of the same command "
        "reads them back and attacks only the rest.")
    scale.add_argument(
        "--shard", type=parse_shard, metavar="i/n",
        help="Evaluate only shard i of n (chunks i, i + n, ...), 0 <= i < n; "
        "join the n outputs with keras-gradreg merge.")
    scale.add_argument(
        "--processes", type=int, default=1, metavar="N",
        help="Run N shard processes of this command, each pinned to one "
        "device (GPU i when GPUs are visible, else cores // N intra-op "
        "threads), and merge them into --out. Processes rather than a "
        "tf.distribute strategy: they need no strategy-aware attacks, merge "
        "to exactly one process's results, and two single-thread "
        "processes on a 2-core host gave 1.33x the throughput of one "
        "default process.")
    scale.add_argument(
        "--threads", type=int, metavar="N",
        help="Intra-op threads of TensorFlow (default: its own choice).")
    _add_attack_arguments(
        evaluate, "Comma-separated radii, in the --norm norm (default: the "
        "paper's for its datasets, L-inf radii: l2 and l1 need --eps).")
    evaluate.set_defaults(handler=_evaluate)


def _add_merge(commands) -> None:
    merge = commands.add_parser(
        "merge", help="Join the outputs of evaluate --shard i/n into one.",
        description="Join the --out folders of the shards of one evaluation "
        "(evaluate --shard i/n) into OUT, per example exactly what one "
        "evaluate gives; prints the same table.",
        formatter_class=_HelpFormatter)
    merge.add_argument("out", metavar="OUT", help="Output folder.")
    merge.add_argument("parts", nargs="+", metavar="PART",
                       help="The --out folders of the shards.")
    merge.add_argument("--overwrite", action="store_true",
                       help="Replace existing outputs.")
    merge.set_defaults(handler=_merge)


def _add_finetune(commands) -> None:
    finetune = commands.add_parser(
        "finetune", help="Fine-tune a saved model with a robust recipe "
        "(default: N-FGSM adversarial training).",
        description="Fine-tune a saved model with a robust recipe and save "
        f"it; prints accuracy under {' and '.join(FINETUNE_ATTACKS)} before "
        "and after.", formatter_class=_HelpFormatter)
    _add_data_arguments(
        finetune, split="train", batch_size="Batch size of training and of "
        "the attacks (default: 50 for training, 256 for the attacks).")
    finetune.add_argument(
        "--recipe", default=RECIPES[0], choices=RECIPES,
        help="n_fgsm (N-FGSM, noise of 2 * train_eps and one step of "
        "train_eps, unprojected), fgsm_rs, pgd (--train_steps steps of "
        "2.5 * train_eps / steps), or gradreg (the paper's penalty alone).")
    finetune.add_argument(
        "--train_eps", type=float,
        help="L-inf radius of the training attack (default: the smallest "
        "--eps).")
    finetune.add_argument("--train_steps", type=int, default=7,
                          help="Attack steps of --recipe pgd.")
    finetune.add_argument(
        "--c", type=float,
        help="Penalty weight c of Eq. 2, at the adversarial examples for the "
        "adversarial recipes (default: the model's own, else "
        f"{DEFAULT_C[PENALTY_ONLY]} for gradreg and 0 for the others).")
    for flag, names, what, fallback in (
            ("--regularizer", REGULARIZERS, "Reg(x)", "logit_margin"),
            ("--norm", PENALTY_NORMS, "The norm", "squared_l2")):
        finetune.add_argument(
            flag, choices=names, help=f"{what} of the penalty (default: the "
            f"model's own, else {fallback}).")
    finetune.add_argument("--epochs", type=int, default=1,
                          help="Epochs of fine-tuning.")
    finetune.add_argument("--learning_rate", type=float, default=1e-4,
                          help="Learning rate of --optimizer.")
    finetune.add_argument("--optimizer", default="adam",
                          help="A Keras optimizer name.")
    finetune.add_argument("--eval_dataset",
                          help="Data to measure accuracy on (default: "
                          "--dataset).")
    finetune.add_argument("--eval_split", default="test",
                          help="Split of --eval_dataset.")
    finetune.add_argument("--eval_examples", type=int, default=1000,
                          help="Examples to measure accuracy on.")
    finetune.add_argument("--out", required=True, help="Output .keras file.")
    finetune.add_argument(
        "--logdir", help="TensorBoard folder; the run goes into "
        "LOGDIR/<name of --out> (default: logs beside --out).")
    finetune.add_argument(
        "--no_tensorboard", action="store_true",
        help="Write no TensorBoard logs (scalars, input-gradient norms, "
        "conv1/fc2 histograms, FGSM accuracy per epoch, HParams).")
    _add_attack_arguments(finetune, "Comma-separated L-inf radii.")
    finetune.set_defaults(handler=_finetune)


def _add_data_arguments(parser, split: str, batch_size: str) -> None:
    """The model, data and output flags that both commands take."""
    parser.add_argument("model", help="A saved Keras model (.keras or .h5).")
    parser.add_argument(
        "--dataset", required=True,
        help=f"One of {', '.join(DATASETS)}, or npz:FILE with arrays x and "
        "y.")
    parser.add_argument("--data_dir", help="Folder of the dataset's files.")
    parser.add_argument("--split", default=split, help="Dataset split.")
    parser.add_argument(
        "--num_examples", type=int,
        help="Use the first N examples only (default: all).")
    parser.add_argument("--batch_size", type=int, help=batch_size)
    parser.add_argument("--overwrite", action="store_true",
                        help="Replace existing outputs.")


def _add_attack_arguments(parser, eps_help: str) -> None:
    """The attack flags that both commands take."""
    group = parser.add_argument_group(
        "attacks", "Default to the paper's settings for its datasets.")
    group.add_argument("--eps", help=eps_help)
    group.add_argument("--step_size", type=float,
                       help="Step of the fixed-step attacks (BIM, C&W, PGD) "
                       "(default: the paper's, else 2.5 * eps / steps).")
    group.add_argument("--steps", type=int,
                       help="Steps of the fixed-step attacks (default: the "
                       f"paper's, else {DEFAULT_STEPS}).")
    group.add_argument("--clip_min", type=float,
                       help="Smallest valid input (default: the paper's).")
    group.add_argument("--clip_max", type=float,
                       help="Largest valid input (default: the paper's).")
    group.add_argument("--no_clip", action="store_true",
                       help="Unbounded inputs (e.g. MFCC features).")
    group.add_argument("--pgd_restarts", type=int, default=1,
                       help="Restarts of the fixed-step attacks that restart "
                       "(PGD).")
    group.add_argument("--apgd_steps", type=int, default=100,
                       help="Steps of the attacks that adapt their step "
                       "(APGD, APGD-T, FAB-T, AutoAttack).")
    group.add_argument("--queries", type=int, default=5000,
                       help="Queries of Square, alone and in AutoAttack's "
                       "standard version.")
    group.add_argument("--autoattack_version", default="standard",
                       choices=AUTOATTACK_VERSIONS,
                       help="The AutoAttack ensemble: standard (APGD-CE, "
                       "APGD-T, FAB-T, Square), fast (APGD-CE, APGD-T) or "
                       "rand (APGD-CE, APGD-DLR with EOT, for randomized "
                       "models).")
    group.add_argument("--seed", type=int, default=0,
                       help="Seed of the random starts and of training.")
