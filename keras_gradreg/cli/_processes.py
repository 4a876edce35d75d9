"""``keras-gradreg evaluate --processes N``: one shard process per device.

The command runs N processes of itself, ``--shard i/N`` each, waits for
them and merges their results (:meth:`keras_gradreg.Results.merge`): per
example exactly what one process gives. Each process is pinned to one
device: GPU ``i`` (modulo the GPUs visible) through
``CUDA_VISIBLE_DEVICES`` when GPUs are visible, otherwise ``cores // N``
intra-op threads of the host's CPU.

Processes rather than a ``tf.distribute`` strategy: they need no
strategy-aware attacks, shards merge to exactly one process's results, and
on a 2-core host two single-thread processes gave 1.33x the throughput of
one default process.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from typing import List

import tensorflow as tf

from keras_gradreg import evaluation
from keras_gradreg.cli._parser import command_argv

SHARDS_FOLDER = ".shards"
"""The parts' folder inside the output's scratch folder (removed before
the merged results are written)."""


def _cores() -> int:
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def _pinned(index: int, count: int, args) -> tuple:
    """The environment and the extra flags of shard process ``index``."""
    env = dict(os.environ)
    gpus = tf.config.list_physical_devices("GPU")
    if gpus:
        visible = env.get("CUDA_VISIBLE_DEVICES")
        ids = visible.split(",") if visible else [str(i) for i in
                                                  range(len(gpus))]
        env["CUDA_VISIBLE_DEVICES"] = ids[index % len(ids)]
        return env, {}
    threads = args.threads or max(1, _cores() // count)
    return env, {"threads": threads}


def _last_line(path: str) -> str:
    with open(path, errors="replace") as handle:
        lines = [line.strip() for line in handle.read().splitlines()]
    lines = [line for line in lines if line]
    return lines[-1] if lines else "(no output)"


def run_processes(args, scratch: str) -> evaluation.Results:
    """Runs ``args.processes`` shard processes of ``evaluate`` and merges
    their results.

    Args:
        args: The parsed flags of ``evaluate`` (``--processes`` > 1, no
            ``--shard``), already checked.
        scratch: A folder of this command's own; the parts are written in
            it and removed after the merge.

    Returns:
        The merged results.

    Raises:
        RuntimeError: If a shard process fails, with its last output line
            (the whole output is in ``part-I.log``).
    """
    count = args.processes
    parts = os.path.join(scratch, SHARDS_FOLDER)
    resume = args.resume or os.path.join(parts, "chunks")
    os.makedirs(parts, exist_ok=True)
    running: List[tuple] = []
    try:
        for index in range(count):
            env, pinned = _pinned(index, count, args)
            argv = command_argv(
                args, **pinned, shard=(index, count), processes=1,
                out=os.path.join(parts, f"part-{index}"), overwrite=False,
                resume=os.path.join(resume, f"shard-{index}-of-{count}"))
            log = os.path.join(parts, f"part-{index}.log")
            with open(log, "w") as handle:
                process = subprocess.Popen(
                    [sys.executable, "-m", "keras_gradreg", *argv], env=env,
                    stdout=handle, stderr=subprocess.STDOUT)
            running.append((process, log))
        print(f"Running {count} shard processes.")
        for index, (process, log) in enumerate(running):
            if process.wait() != 0:
                raise RuntimeError(
                    f"shard process {index} of {count} failed (status "
                    f"{process.returncode}): {_last_line(log)}")
        merged = evaluation.Results.merge([
            evaluation.Results.load(os.path.join(parts, f"part-{index}"))
            for index in range(count)])
    finally:
        for process, _ in running:
            if process.poll() is None:
                process.kill()
                process.wait()
    shutil.rmtree(parts)
    return merged
