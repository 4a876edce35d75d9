"""What the benchmarks share: the machine they ran on, shards."""

from __future__ import annotations

import argparse
import datetime
import os
import platform
from typing import Optional, Tuple

import keras
import tensorflow as tf
from absl import app

import keras_gradreg
from keras_gradreg.cli import _parser as cli_parser


def machine() -> dict:
    """The CPU model, core and GPU counts, and library versions of this machine."""
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            names = [line.split(":", 1)[1].strip() for line in cpuinfo
                     if line.startswith("model name")]
        cpu = names[0] if names else cpu
    except OSError:
        pass
    return {"cpu": cpu, "cores": os.cpu_count(),
            "gpus": len(tf.config.list_physical_devices("GPU")),
            "keras_gradreg": keras_gradreg.__version__,
            "tensorflow": tf.__version__, "keras": keras.__version__,
            "python": platform.python_version(),
            "date": datetime.date.today().isoformat()}


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
