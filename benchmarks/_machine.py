"""What a benchmark ran on: CPU, cores, GPUs, library versions, date."""

from __future__ import annotations

import datetime
import os
import platform

import keras
import tensorflow as tf

import keras_gradreg


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
