"""The ``keras-gradreg`` command: evaluate a saved model, or make it robust.

``evaluate`` measures clean accuracy and accuracy under the attacks of
:mod:`keras_gradreg.attacks` (in L-inf, L2 or L1) through
:class:`keras_gradreg.RobustnessReport`, at any scale (resumable shards);
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
kept unless ``--overwrite`` is given. Data and outputs are checked before
any attack or training step. Each output (the ``--out`` folder or model,
the TensorBoard run) is written in a hidden scratch folder beside it and
swapped in with one rename at the end: a kill leaves the old output or the
new one, never a mix, and the next run removes the scratch a killed one
left. ``finetune`` also logs to TensorBoard
(``--logdir``, default ``logs`` beside ``--out``; ``--no_tensorboard`` turns
it off). ``python -m keras_gradreg`` is the same command.
"""
from __future__ import annotations

import argparse
import importlib
import os
import sys
from typing import Optional, Sequence

from keras_gradreg.cli import _parser
from keras_gradreg.cli._parser import CommandLineError
from keras_gradreg.cli._parser import one_line

# PAPER_SETTINGS and AttackSettings resolve through __getattr__ below.
__all__ = ["main", "build_parser", "PAPER_SETTINGS", "AttackSettings"]  # noqa: F822

PROG = "keras-gradreg"

# Names read from the modules that import TensorFlow, on first use (PEP 562),
# so that parsing and --help run without it.
_LAZY = {
    "PAPER_SETTINGS": "keras_gradreg.cli._settings",
    "AttackSettings": "keras_gradreg.cli._settings",
    "attack_settings": "keras_gradreg.cli._settings",
    "EVALUATE_SECTION": "keras_gradreg.cli._evaluate",
    "format_table": "keras_gradreg.cli._evaluate",
}


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def build_parser() -> argparse.ArgumentParser:
    """Returns the parser of the ``keras-gradreg`` command.

    Example:
        >>> args = build_parser().parse_args(
        ...     ["evaluate", "m.keras", "--dataset", "mnist", "--out", "r"])
        >>> args.command, args.norm, args.shard
        ('evaluate', 'linf', None)
    """
    return _parser.build_parser(
        PROG, "Evaluate the robustness of a saved Keras model, or fine-tune "
        "it with a robust recipe (N-FGSM adversarial training by default).")


# Entry point -----------------------------------------------------------------


def _fail(message: str, status: int) -> None:
    print(f"{PROG}: error: {message}", file=sys.stderr)
    raise SystemExit(status)


def main(argv: Optional[Sequence[str]] = None) -> None:
    """Runs the ``keras-gradreg`` command line.

    Args:
        argv: The arguments after the program name (default ``sys.argv``);
            paths (``os.PathLike``) are taken as their strings.

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
    argv = [os.fspath(arg) for arg in (sys.argv[1:] if argv is None
                                       else argv)]
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

