"""Where a measurement ran: library versions, processor, devices and date.

:class:`keras_gradreg.RobustnessReport` stores it with every result it makes
(the ``"environment"`` section of results.json, a line under "Measured with"
in results.md), and :meth:`Results.merge` keeps each distinct one of its
parts, so a number carries the versions and the hardware it was measured on.
"""

from __future__ import annotations

import datetime
import os
import platform
from typing import List, Mapping, Sequence

import keras
import tensorflow as tf

SECTION = "environment"  # the section of Results that holds it


def _cpu() -> str:
    """The processor's model name (Linux' /proc/cpuinfo), else what
    ``platform`` knows."""
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def environment() -> dict:
    """This process' environment, as a result records it.

    Returns:
        ``keras_gradreg``, ``tensorflow``, ``keras`` and ``python`` versions,
        the ``cpu`` model, the logical ``cores``, the visible ``gpus`` and
        today's ``date`` (ISO).

    Example:
        >>> sorted(environment())
        ['cores', 'cpu', 'date', 'gpus', 'keras', 'keras_gradreg', 'python', 'tensorflow']
    """
    from keras_gradreg import __version__  # the package imports this module

    return {"cpu": _cpu(), "cores": os.cpu_count(),
            "gpus": len(tf.config.list_physical_devices("GPU")),
            "keras_gradreg": __version__, "tensorflow": tf.__version__,
            "keras": keras.__version__, "python": platform.python_version(),
            "date": datetime.date.today().isoformat()}


def describe(env: Mapping) -> str:
    """One line for people: versions; processor, cores, GPUs; date.

    Example:
        >>> describe({"keras_gradreg": "0.2.0", "tensorflow": "2.21.0",
        ...           "keras": "3.12.0", "python": "3.11.7", "cpu": "Xeon",
        ...           "cores": 2, "gpus": 0, "date": "2026-12-03"})
        'keras-gradreg 0.2.0, TensorFlow 2.21.0, Keras 3.12.0, Python 3.11.7; Xeon, 2 cores, no GPU; 2026-12-03'
    """  # noqa: E501
    gpus = env.get("gpus") or 0
    devices = "no GPU" if not gpus else f"{gpus} GPU" + ("s" if gpus > 1 else "")
    return (f"keras-gradreg {env.get('keras_gradreg')}, TensorFlow {env.get('tensorflow')}, "
            f"Keras {env.get('keras')}, Python {env.get('python')}; {env.get('cpu')}, "
            f"{env.get('cores')} cores, {devices}; {env.get('date')}")


def record(results, environments: Sequence[Mapping]) -> None:
    """Stores the distinct ``environments`` (in order) as ``results``'
    section, replacing one it had."""
    distinct: List[dict] = []
    for env in environments:
        if dict(env) not in distinct:
            distinct.append(dict(env))
    results.add_section(SECTION, distinct, title="Measured with", replace=True,
                        markdown=[f"- {describe(env)}" for env in distinct])


def of(results) -> List[dict]:
    """The environments ``results`` holds (none for results made without a
    report, e.g. by ``Results.from_correct``)."""
    return results.section(SECTION) if SECTION in results.section_names else []
