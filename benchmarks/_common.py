"""What the benchmarks share: per-example bits, shards."""

from __future__ import annotations

import argparse
from typing import Optional, Tuple

from absl import app

from keras_gradreg.cli import _parser as cli_parser


def bits(correct) -> str:
    """Per-example correctness as a string of 0s and 1s."""
    return "".join("1" if value else "0" for value in correct)


def parse_shard(text: Optional[str]) -> Optional[Tuple[int, int]]:
    """``"i/n"`` -> ``(i, n)`` (None stays None), by the command line's own rule
    (``keras-gradreg evaluate --shard``).

    Raises:
        app.UsageError: Unless ``0 <= i < n``.
    """
    if text is None:
        return None
    try:
        return cli_parser.parse_shard(text)
    except argparse.ArgumentTypeError as error:
        raise app.UsageError(f"--shard must be i/n with 0 <= i < n: {error}.") from None
