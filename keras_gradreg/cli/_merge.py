"""``keras-gradreg merge``: join the outputs of ``evaluate --shard i/n``."""

from __future__ import annotations

import os

from keras_gradreg import evaluation
from keras_gradreg.cli._evaluate import check_out
from keras_gradreg.cli._evaluate import prepare_results_output
from keras_gradreg.cli._evaluate import write_evaluation
from keras_gradreg.cli._parser import CommandLineError
from keras_gradreg.cli._parser import one_line


def _load(part: str) -> evaluation.Results:
    if not os.path.isdir(part):
        raise CommandLineError(f"part {part} is not a folder of results.")
    try:
        return evaluation.Results.load(part)
    except (OSError, ValueError, KeyError) as error:
        raise CommandLineError(
            f"cannot read part {part}: {one_line(error)}") from None


def merge_command(args) -> evaluation.Results:
    """Runs ``keras-gradreg merge``; returns the results written."""
    check_out(args.out, args.overwrite, "OUT")
    parts = [_load(part) for part in args.parts]
    try:
        merged = evaluation.Results.merge(parts)
    except (ValueError, KeyError, TypeError) as error:
        raise CommandLineError(f"cannot merge {' '.join(args.parts)}: "
                               f"{one_line(error)}") from None
    output = prepare_results_output(args.out, "OUT")
    print(f"Merged {len(parts)} parts: {merged.settings['num_examples']} "
          "examples.")
    write_evaluation(merged, args.out, output)
    return merged
