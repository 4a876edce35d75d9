"""Several single-threaded processes sharing one resumable output folder.

On 2 CPU cores, TensorFlow's default threads keep about 1.6 cores busy on
the benchmarks' batches; two processes of one thread each did a third more
work (docs/ATTACKS.md). ``benchmarks/autoattack_eval.py`` (units: chunks of
images per model and eps) and ``benchmarks/robustness_per_cost.py`` (units:
recipes) run that way with ``--workers N``:

* the parent clears the claims of an earlier, interrupted run and starts N
  copies of the script with ``--worker=i`` and one TensorFlow thread each
  (:func:`run_workers`);
* each copy takes the next unit that is neither finished (in the script's
  results file) nor claimed by another copy, and writes a claim line for it
  (:func:`claim_next`), all under ``OUT/.lock`` (:func:`locked`);
* results are appended under the same lock (:func:`append_line`), and files
  that several copies rewrite are replaced by rename
  (:func:`write_atomically`).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import subprocess
import sys
import tempfile
from typing import Callable, Hashable, List, Mapping, Optional, Sequence

CLAIMS = "claims.jsonl"  # units taken by the workers of a --workers run


@contextlib.contextmanager
def locked(out: str):
    """Holds ``out``'s lock file: one process at a time reads or appends
    result and claim lines. Makes ``out`` if it is missing."""
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, ".lock"), "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def append_line(path: str, line: Mapping) -> None:
    """Appends one JSON line (call under :func:`locked`)."""
    with open(path, "a") as handle:
        handle.write(json.dumps(line) + "\n")
        handle.flush()
        os.fsync(handle.fileno())


def write_atomically(path: str, text: str) -> None:
    """Replaces ``path`` by rename, so that a reader (or another worker
    writing it) never sees half a file."""
    handle, temporary = tempfile.mkstemp(dir=os.path.dirname(path) or ".")
    with os.fdopen(handle, "w") as stream:
        stream.write(text)
    os.chmod(temporary, 0o644)  # mkstemp's 0600 would hide the table
    os.replace(temporary, path)


def claim_next(out: str, todo: Sequence[Hashable], settings: Mapping,
               worker: int, *, done: Callable[[], set],
               describe: Callable[[Hashable], dict],
               key: Callable[[Mapping], Hashable]) -> Optional[Hashable]:
    """The first unit of ``todo`` that is neither done nor claimed by
    another worker of this run (same ``settings``), claimed for ``worker``;
    None when none is left.

    A worker runs one unit at a time and asks for the next only once its
    unit is done, so a unit claimed by ``worker`` itself and not done was
    left by an earlier process of that number that stopped: it is taken
    again (a worker restarted with ``--worker=N`` goes on where it stopped).

    Args:
        out: The shared output folder (its lock and claims file).
        todo: The units in run order.
        settings: The run's settings; claims of other settings are ignored.
        worker: This process's number, written in its claims.
        done: Returns the finished units (called under the lock).
        describe: A unit's fields in its claim line.
        key: The unit of a claim line (the inverse of ``describe``).
    """
    path = os.path.join(out, CLAIMS)
    with locked(out):
        taken = set(done())
        if os.path.exists(path):
            with open(path) as handle:
                claims = [json.loads(text) for text in handle if text.strip()]
            taken |= {key(line) for line in claims
                      if line["settings"] == dict(settings)
                      and line["worker"] != worker}
        for unit in todo:
            if unit not in taken:
                append_line(path, {**describe(unit),
                                   "settings": dict(settings),
                                   "worker": worker})
                return unit
    return None


def worker_argv(argv: Sequence[str], index: int) -> List[str]:
    """The arguments of worker ``index``: ``argv`` without ``--workers``.

    Example:
        >>> worker_argv(["--models=a.keras", "--workers", "2", "--out=o"], 1)
        ['--models=a.keras', '--out=o', '--worker=1']
    """
    kept, skip = [], False
    for arg in argv:
        if skip:
            skip = False
        elif arg in ("--workers", "--worker"):
            skip = True
        elif not arg.startswith(("--workers=", "--worker=")):
            kept.append(arg)
    return kept + [f"--worker={index}"]


def run_workers(script: str, argv: Sequence[str], out: str, workers: int,
                threads: int = 1) -> None:
    """Runs ``script`` ``workers`` times side by side on the same ``out``,
    each process with ``threads`` TensorFlow threads; raises if one fails.

    ``argv`` are the script's arguments (``--workers`` is dropped). Claims
    of an earlier, interrupted run are cleared first: its unfinished units
    are free again.
    """
    os.makedirs(out, exist_ok=True)
    with locked(out):
        if os.path.exists(os.path.join(out, CLAIMS)):
            os.remove(os.path.join(out, CLAIMS))
    env = {**os.environ, "TF_NUM_INTRAOP_THREADS": str(threads),
           "TF_NUM_INTEROP_THREADS": str(threads)}
    processes = [
        subprocess.Popen([sys.executable, os.path.abspath(script),
                          *worker_argv(argv, index)], env=env)
        for index in range(workers)]
    failed = [index for index, process in enumerate(processes)
              if process.wait() != 0]
    if failed:
        raise RuntimeError(f"Workers {failed} failed; rerun to go on.")


def threads() -> str:
    """This process's TensorFlow intra-op threads: a number, or "default"."""
    return os.environ.get("TF_NUM_INTRAOP_THREADS", "default")
