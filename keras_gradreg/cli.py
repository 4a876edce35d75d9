"""The ``keras-gradreg`` command: evaluate a saved model, or make it robust.

``evaluate`` measures clean accuracy and accuracy under the L-inf attacks of
:mod:`keras_gradreg.attacks` through :class:`keras_gradreg.RobustnessReport`;
``finetune`` wraps a saved model in :class:`keras_gradreg.GradRegModel`
(Eq. 2-4 of Yu et al.), trains it for a few epochs and saves the result::

    keras-gradreg evaluate natural.keras --dataset mnist --out report/
    keras-gradreg finetune natural.keras --dataset mnist --c 0.01 \\
        --epochs 3 --out robust.keras

``--dataset`` is a name of :func:`keras_gradreg.datasets.load` or
``npz:FILE`` (arrays ``x`` and ``y`` in one ``.npz``). Attack settings
default to the paper's for its datasets and must be given for others. Bad
input ends the command with one line on stderr and exit status 2 (1 when a
step fails at run time); nothing is written then, and existing outputs are
kept unless ``--overwrite`` is given. ``python -m keras_gradreg`` is the same
command.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import shutil
import sys
import tempfile
from typing import Optional, Sequence

import keras
import numpy as np

from keras_gradreg import datasets
from keras_gradreg import evaluation
from keras_gradreg import regularizers
from keras_gradreg.model import GradRegModel

__all__ = ["main", "build_parser", "PAPER_SETTINGS", "AttackSettings"]

PROG = "keras-gradreg"
NPZ_PREFIX = "npz:"
EVALUATE_FILES = (
    "results.json", "results.md", "results.csv", "accuracy_vs_eps.png",
    "report.json",
)
FINETUNE_ATTACKS = ("fgsm", "pgd")


@dataclasses.dataclass(frozen=True)
class AttackSettings:
    """L-inf attack settings: radii (as given), steps, step size, clip range.

    Example:
        >>> PAPER_SETTINGS["mnist"].eps
        ('0.1', '0.2', '0.3')
    """

    eps: tuple
    step_size: Optional[float]
    steps: Optional[int]
    clip_min: Optional[float]
    clip_max: Optional[float]


# Section 4 of Yu et al.: MNIST in [0, 1], CIFAR-10 in [0, 255], MFCCs.
PAPER_SETTINGS = {
    "mnist": AttackSettings(("0.1", "0.2", "0.3"), 0.05, 10, 0.0, 1.0),
    "cifar10": AttackSettings(("3", "6", "9"), 1.0, 10, 0.0, 255.0),
    "speech_commands": AttackSettings(
        ("0.25", "0.5", "0.75"), 0.002, 8, None, None
    ),
}


class CommandLineError(Exception):
    """Bad input: reported as one line on stderr, exit status 2."""


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
                       help="Step of BIM, C&W and PGD.")
    group.add_argument("--steps", type=int, help="Steps of BIM, C&W and PGD.")
    group.add_argument("--clip_min", type=float)
    group.add_argument("--clip_max", type=float)
    group.add_argument("--no_clip", action="store_true",
                       help="Unbounded inputs (e.g. MFCC features).")
    group.add_argument("--pgd_restarts", type=int, default=1)
    group.add_argument("--apgd_steps", type=int, default=100)
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
        "--attacks", default="fgsm,bim,cw,pgd",
        help=f"Comma-separated, from {','.join(evaluation.ATTACKS)}.",
    )
    evaluate.add_argument("--out", required=True, help="Output folder.")
    _add_attack_arguments(evaluate)
    evaluate.set_defaults(handler=evaluate_command)

    finetune = commands.add_parser(
        "finetune", help="Fine-tune a saved model with GradRegModel."
    )
    _add_data_arguments(finetune, split="train")
    finetune.add_argument("--c", type=float, help="Penalty weight c.")
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
    _add_attack_arguments(finetune)
    finetune.set_defaults(handler=finetune_command)
    return parser


def _parse_eps(text: str) -> tuple:
    """``"0.1,0.2"`` -> ``("0.1", "0.2")``, each a finite number > 0."""
    values = tuple(part.strip() for part in text.split(","))
    for value in values:
        try:
            number = float(value)
        except ValueError:
            number = math.nan
        if not math.isfinite(number) or number <= 0:
            raise CommandLineError(
                f"--eps {text!r}: {value!r} is not a number > 0; give "
                "comma-separated radii such as 0.1,0.2,0.3."
            )
    if len({float(value) for value in values}) != len(values):
        raise CommandLineError(f"--eps {text!r} repeats a radius.")
    return values


def _parse_attacks(text: str) -> tuple:
    names = tuple(part.strip() for part in text.split(","))
    unknown = [name for name in names if name not in evaluation.ATTACKS]
    if unknown:
        raise CommandLineError(
            f"unknown attack {unknown[0]!r}: use a comma-separated list of "
            f"{', '.join(evaluation.ATTACKS)}."
        )
    if len(set(names)) != len(names):
        raise CommandLineError(f"--attacks {text!r} repeats an attack.")
    return names


def _check_dataset(spec: str) -> None:
    if spec.startswith(NPZ_PREFIX) or spec in PAPER_SETTINGS:
        return
    raise CommandLineError(
        f"unknown dataset {spec!r}: use one of {', '.join(PAPER_SETTINGS)} "
        "or npz:FILE."
    )


def _required(value, flag: str, dataset: str):
    if value is None:
        raise CommandLineError(
            f"{flag} is required for dataset {dataset!r}: the paper's "
            f"settings cover only {', '.join(PAPER_SETTINGS)}."
        )
    return value


def _clip_range(args, paper: Optional[AttackSettings]) -> tuple:
    if args.no_clip:
        if args.clip_min is not None or args.clip_max is not None:
            raise CommandLineError("--no_clip excludes --clip_min/--clip_max.")
        return None, None
    if paper is None and (args.clip_min is None or args.clip_max is None):
        raise CommandLineError(
            f"dataset {args.dataset!r} needs --clip_min and --clip_max (the "
            "range of valid inputs) or --no_clip."
        )
    low = args.clip_min if args.clip_min is not None else paper.clip_min
    high = args.clip_max if args.clip_max is not None else paper.clip_max
    if low is not None and high is not None and low >= high:
        raise CommandLineError(
            f"--clip_min {low} must be < --clip_max {high}."
        )
    return low, high


def attack_settings(args, iterative: bool) -> AttackSettings:
    """The attack settings of parsed ``args``: the paper's, then the flags.

    Args:
        args: Parsed arguments of ``evaluate`` or ``finetune``.
        iterative: Whether an iterative attack needs ``steps``/``step_size``.

    Raises:
        CommandLineError: For unparsable eps, or a setting that a dataset
            without paper defaults is missing.
    """
    _check_dataset(args.dataset)
    paper = PAPER_SETTINGS.get(args.dataset)

    def pick(name: str):
        given = getattr(args, name)
        return given if given is not None else getattr(paper, name, None)

    eps = _parse_eps(args.eps) if args.eps is not None else pick("eps")
    eps = _required(eps, "--eps", args.dataset)
    step_size, steps = pick("step_size"), pick("steps")
    if iterative:
        _required(step_size, "--step_size", args.dataset)
        _required(steps, "--steps", args.dataset)
    for flag, value in (("--step_size", step_size), ("--steps", steps)):
        if value is not None and not value > 0:
            raise CommandLineError(f"{flag} must be > 0, got {value}.")
    return AttackSettings(eps, step_size, steps, *_clip_range(args, paper))


def _attack_specs(names: Sequence[str], settings: AttackSettings,
                  args) -> dict:
    """``{name: (name, kwargs)}`` for :class:`RobustnessReport`."""
    clip = {"clip_min": settings.clip_min, "clip_max": settings.clip_max}
    iterative = {"step_size": settings.step_size, "steps": settings.steps}
    kwargs = {
        "fgsm": clip,
        "bim": {**clip, **iterative},
        "cw": {**clip, **iterative},
        "pgd": {**clip, **iterative, "restarts": args.pgd_restarts,
                "seed": args.seed},
        "apgd": {**clip, "steps": args.apgd_steps, "seed": args.seed},
    }
    return {name: (name, kwargs[name]) for name in names}


def _check_positive(args, names: Sequence[str]) -> None:
    for name in names:
        value = getattr(args, name, None)
        if value is not None and value < 1:
            raise CommandLineError(f"--{name} must be >= 1, got {value}.")


# Files -----------------------------------------------------------------------


def _check_fresh(paths: Sequence[str], overwrite: bool) -> None:
    for path in paths:
        if os.path.exists(path) and not overwrite:
            raise CommandLineError(
                f"{path} exists; pass --overwrite to replace it."
            )


def _one_line(error: BaseException) -> str:
    text = " ".join(str(error).split())
    return text if len(text) <= 400 else text[:397] + "..."


def load_model(path: str) -> keras.Model:
    """Loads a saved Keras model, or raises a one-line CommandLineError."""
    if not os.path.isfile(path):
        raise CommandLineError(f"model file {path} not found.")
    try:
        return keras.models.load_model(path, compile=False)
    except Exception as error:  # Keras raises many types for bad files.
        raise CommandLineError(
            f"cannot load model {path}: {_one_line(error)}"
        ) from error


def _load_npz(path: str) -> tuple:
    if not os.path.isfile(path):
        raise CommandLineError(f"data file {path} not found.")
    try:
        with np.load(path, allow_pickle=False) as arrays:
            missing = {"x", "y"} - set(arrays.files)
            if missing:
                raise CommandLineError(
                    f"{path} must hold arrays 'x' and 'y'; it holds "
                    f"{sorted(arrays.files)}."
                )
            return arrays["x"], arrays["y"]
    except (OSError, ValueError) as error:
        raise CommandLineError(
            f"cannot read {path} as .npz: {_one_line(error)}"
        ) from error


def _as_sparse_labels(y: np.ndarray, source: str) -> np.ndarray:
    """Integer class labels from sparse, ``(n, 1)`` or one-hot labels."""
    if y.ndim == 2:
        y = y[:, 0] if y.shape[1] == 1 else np.argmax(y, axis=-1)
    numeric = np.issubdtype(y.dtype, np.number)
    if y.ndim != 1 or not numeric or np.any(np.mod(y, 1) != 0) or y.min() < 0:
        raise CommandLineError(
            f"the labels of {source} must be class indices >= 0 (or one-hot "
            "rows)."
        )
    return y.astype("int64")


def load_data(spec: str, split: str, data_dir, limit) -> tuple:
    """Returns ``(x, y)``: float32 inputs and int64 class labels.

    Raises:
        CommandLineError: For an unknown dataset, an unreadable file or
            data that cannot be loaded.
    """
    _check_dataset(spec)
    if spec.startswith(NPZ_PREFIX):
        x, y = _load_npz(spec[len(NPZ_PREFIX):])
        x, y = x[:limit], y[:limit]
    else:
        try:
            dataset = datasets.load(spec, split, data_dir=data_dir)
            x, y = datasets.to_arrays(dataset, limit=limit)
        except Exception as error:  # tfds and file errors come in many types.
            raise CommandLineError(
                f"cannot load {spec} {split}: {_one_line(error)}"
            ) from error
    if len(x) == 0 or len(x) != len(y):
        raise CommandLineError(
            f"{spec} needs as many labels as inputs (> 0), got {len(x)} "
            f"inputs and {len(y)} labels."
        )
    if not np.issubdtype(x.dtype, np.floating):
        x = x.astype("float32")
    return x, _as_sparse_labels(np.asarray(y), spec)


def check_compatible(model: keras.Model, x: np.ndarray, y: np.ndarray,
                     source: str) -> None:
    """Raises CommandLineError if ``model`` cannot take ``x`` or ``y``."""
    network = model.base if isinstance(model, GradRegModel) else model
    inputs = getattr(network, "inputs", None) or []
    if len(inputs) > 1:
        raise CommandLineError("models with several inputs are not supported.")
    if inputs:
        expected = tuple(inputs[0].shape[1:])
        fits = len(expected) == x.ndim - 1 and all(
            want in (None, got) for want, got in zip(expected, x.shape[1:])
        )
        if not fits:
            raise CommandLineError(
                f"the model takes inputs of shape {expected} but {source} has "
                f"examples of shape {tuple(x.shape[1:])}."
            )
    classes = getattr(network, "output_shape", (None,))[-1]
    if classes is not None and y.max() >= classes:
        raise CommandLineError(
            f"{source} has label {int(y.max())} but the model has {classes} "
            "classes."
        )


# evaluate --------------------------------------------------------------------


def _simple_results(entry: dict, attacks, eps: tuple) -> dict:
    """The report's entry with eps keys spelled as the user gave them."""
    results = {"clean": entry["clean"]}
    for attack in attacks:
        results[attack] = {value: entry[attack][f"{float(value):g}"]
                           for value in eps}
    return results


def format_table(results: dict, eps: tuple) -> str:
    """Formats ``{"clean", attack: {eps: acc}}`` as a text table.

    Example:
        >>> print(format_table({"clean": 0.9, "fgsm": {"0.1": 0.5}}, ("0.1",)))
        clean accuracy: 90.00%
        attack  eps=0.1
        fgsm     50.00%
    """
    headers = [f"eps={value}" for value in eps]
    width = max(len(h) for h in headers + ["100.00%"])
    lines = [f"clean accuracy: {100 * results['clean']:.2f}%",
             "attack  " + " ".join(h.rjust(width) for h in headers)]
    for attack, accuracies in results.items():
        if attack != "clean":
            cells = [f"{100 * accuracies[value]:.2f}%".rjust(width)
                     for value in eps]
            lines.append(f"{attack:<7} " + " ".join(cells))
    return "\n".join(lines)


def _write_evaluation(report, results: dict, out: str) -> None:
    with tempfile.TemporaryDirectory() as scratch:
        report.save(scratch)
        os.makedirs(out, exist_ok=True)
        os.replace(os.path.join(scratch, "results.json"),
                   os.path.join(scratch, "report.json"))
        for name in os.listdir(scratch):
            shutil.move(os.path.join(scratch, name), os.path.join(out, name))
    with open(os.path.join(out, "results.json"), "w") as handle:
        json.dump(results, handle, indent=2)


def evaluate_command(args) -> dict:
    """Runs ``keras-gradreg evaluate``; returns the results written."""
    _check_dataset(args.dataset)
    attacks = _parse_attacks(args.attacks)
    iterative = any(name in ("bim", "cw", "pgd") for name in attacks)
    settings = attack_settings(args, iterative)
    _check_positive(args, ["num_examples", "batch_size", "pgd_restarts",
                           "apgd_steps"])
    if os.path.exists(args.out) and not os.path.isdir(args.out):
        raise CommandLineError(f"--out {args.out} is a file, not a folder.")
    _check_fresh([os.path.join(args.out, n) for n in EVALUATE_FILES],
                 args.overwrite)
    model = load_model(args.model)
    x, y = load_data(args.dataset, args.split, args.data_dir,
                     args.num_examples)
    check_compatible(model, x, y, args.dataset)
    print(f"Evaluating {args.model} on {len(x)} examples of {args.dataset}.")
    report = evaluation.RobustnessReport(
        {"model": model}, _attack_specs(attacks, settings, args),
        [float(value) for value in settings.eps],
        batch_size=args.batch_size or 256, verbose=1,
    )
    entry = report.run((x, y))["model"]
    results = _simple_results(entry, attacks, settings.eps)
    _write_evaluation(report, results, args.out)
    print(format_table(results, settings.eps))
    for warning in report.results["warnings"]:
        print(f"WARNING: {warning}")
    print(f"Wrote {', '.join(EVALUATE_FILES)} to {args.out}.")
    return results


# finetune --------------------------------------------------------------------


def _wrap(model: keras.Model, args) -> GradRegModel:
    """A new GradRegModel on the model's network (never a double wrap)."""
    previous = model if isinstance(model, GradRegModel) else None
    base = previous.base if previous else model
    c = args.c if args.c is not None else (previous.c if previous else 0.01)
    regularizer = args.regularizer or (
        previous.regularizer if previous else "logit_margin"
    )
    norm = args.norm or (previous.norm if previous else "squared_l2")
    try:
        return GradRegModel(base, c=c, regularizer=regularizer, norm=norm)
    except (TypeError, ValueError) as error:
        raise CommandLineError(_one_line(error)) from error


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


def _robustness(model, data, settings: AttackSettings, args) -> dict:
    report = evaluation.RobustnessReport(
        {"model": model}, _attack_specs(FINETUNE_ATTACKS, settings, args),
        [float(value) for value in settings.eps],
        batch_size=args.batch_size or 256, verbose=1,
    )
    entry = report.run(data)["model"]
    return _simple_results(entry, FINETUNE_ATTACKS, settings.eps)


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
        _check_dataset(spec)
    settings = attack_settings(args, iterative=True)
    _check_positive(args, ["num_examples", "batch_size", "epochs",
                           "eval_examples", "pgd_restarts"])
    if args.c is not None and not 0 <= args.c < math.inf:
        raise CommandLineError(
            f"--c must be a finite number >= 0, got {args.c}."
        )
    if not args.out.endswith(".keras"):
        raise CommandLineError(f"--out {args.out} must end in .keras.")
    _check_fresh([args.out], args.overwrite)
    optimizer = _optimizer(args)
    model = load_model(args.model)
    train = load_data(args.dataset, args.split, args.data_dir,
                      args.num_examples)
    held_out = load_data(eval_spec, args.eval_split, args.data_dir,
                         args.eval_examples)
    check_compatible(model, *train, args.dataset)
    check_compatible(model, *held_out, eval_spec)
    keras.utils.set_random_seed(args.seed)
    robust = _wrap(model, args)
    print(f"Accuracy of {args.model} before fine-tuning:")
    before = _robustness(robust, held_out, settings, args)
    robust.compile(optimizer, keras.losses.SparseCategoricalCrossentropy(
        from_logits=not robust.output_softmax), metrics=["accuracy"])
    print(f"Fine-tuning with c={robust.c:g} for {args.epochs} epoch(s):")
    robust.fit(*train, batch_size=args.batch_size or 50, epochs=args.epochs,
               verbose=1)
    print("Accuracy after fine-tuning:")
    after = _robustness(robust, held_out, settings, args)
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    robust.save(args.out)
    _print_comparison(before, after, settings.eps)
    print(f"Saved the fine-tuned GradRegModel to {args.out}.")
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
        >>> main(["evaluate", "missing.keras", "--dataset", "mnist",
        ...       "--out", "report"])  # doctest: +SKIP
        keras-gradreg: error: model file missing.keras not found.
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
        _fail(f"{type(error).__name__}: {_one_line(error)} (rerun with "
              "--debug for the traceback)", 1)
