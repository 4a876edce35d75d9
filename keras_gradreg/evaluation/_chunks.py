"""Chunks of a report kept on disk, so that a long evaluation resumes.

:meth:`~keras_gradreg.RobustnessReport.run` with ``resume_dir`` keeps each
finished chunk of examples (one batch) as one ``chunk-NNNNNN.npz`` file,
written atomically, beside ``run.json``: the report's settings and a
fingerprint of each model's weights. A rerun with the same settings and
models reads the finished chunks instead of attacking them again; a run with
other settings, other weights or other data in a chunk is refused, so that
results of two runs never mix.

Example:
    >>> import tempfile
    >>> store = ChunkStore(tempfile.mkdtemp(), {"eps": [0.1]})
    >>> store.save(0, "data-hash", {("clean", "a"): np.array([True, False])})
    >>> store.load(0, "data-hash")
    {('clean', 'a'): array([ True, False])}
    >>> store.load(1, "data-hash") is None
    True
"""

from __future__ import annotations

import hashlib
import json
import os
from typing import Dict, Optional

import numpy as np

from keras_gradreg import _atomic

RUN_FILE = "run.json"
"""The settings and model fingerprints of the run a folder's chunks belong to."""


def fingerprint_model(model) -> str:
    """A SHA-256 of ``model``'s weights (names, shapes and values)."""
    digest = hashlib.sha256()
    for weight in model.weights:
        values = np.asarray(weight.numpy() if hasattr(weight, "numpy")
                            else weight)
        digest.update(f"{weight.path}:{values.dtype}:{values.shape};".encode())
        digest.update(np.ascontiguousarray(values).tobytes())
    return digest.hexdigest()


def fingerprint_batch(x: np.ndarray, labels: np.ndarray) -> str:
    """A SHA-256 of one chunk's inputs and labels."""
    digest = hashlib.sha256()
    for array in (np.asarray(x), np.asarray(labels)):
        digest.update(f"{array.dtype}:{array.shape};".encode())
        digest.update(np.ascontiguousarray(array).tobytes())
    return digest.hexdigest()


def ranges(indices: np.ndarray) -> list:
    """``[[start, stop], ...]``: the runs of consecutive example indices.

    Example:
        >>> ranges(np.array([0, 1, 2, 5, 6, 9]))
        [[0, 3], [5, 7], [9, 10]]
    """
    if not len(indices):
        return []
    breaks = np.flatnonzero(np.diff(indices) != 1) + 1
    starts = np.concatenate([[0], breaks])
    stops = np.concatenate([breaks, [len(indices)]])
    return [[int(indices[a]), int(indices[b - 1]) + 1]
            for a, b in zip(starts, stops)]


def indices(example_ranges: list) -> np.ndarray:
    """The example indices of ``[[start, stop], ...]`` (:func:`ranges`)."""
    if not example_ranges:
        return np.zeros(0, dtype=np.int64)
    return np.concatenate([np.arange(start, stop, dtype=np.int64)
                           for start, stop in example_ranges])


class ChunkStore:
    """The finished chunks of one run in ``folder``.

    Args:
        folder: Created if missing. A folder that holds the chunks of a run
            with another ``run`` description is refused.
        run: JSON-serializable description of the run (settings, model
            fingerprints); chunks of equal descriptions are interchangeable.

    Raises:
        ValueError: If ``folder`` holds chunks of another run.
    """

    def __init__(self, folder: str, run: dict):
        if os.path.exists(folder) and not os.path.isdir(folder):
            raise ValueError(f"resume_dir {folder} is a file, not a folder.")
        os.makedirs(folder, exist_ok=True)
        self.folder = folder
        run = json.loads(json.dumps(run))
        path = os.path.join(folder, RUN_FILE)
        if os.path.exists(path):
            with open(path) as handle:
                stored = json.load(handle)
            if stored != run:
                differ = sorted(key for key in set(stored) | set(run)
                                if stored.get(key) != run.get(key))
                raise ValueError(
                    f"resume_dir {folder} holds the chunks of another run "
                    f"(it differs in {', '.join(differ)}): give another "
                    "resume_dir, or remove this one to start afresh.")
        else:
            _atomic.write_atomically(path, lambda temporary: _write_json(
                temporary, run))

    def _path(self, index: int) -> str:
        return os.path.join(self.folder, f"chunk-{index:06d}.npz")

    def load(self, index: int, data_hash: str) -> Optional[Dict[tuple, np.ndarray]]:
        """The arrays of finished chunk ``index``, or None if not finished.

        Raises:
            ValueError: If the chunk was computed on other data.
        """
        path = self._path(index)
        if not os.path.exists(path):
            return None
        with np.load(path, allow_pickle=False) as stored:
            if str(stored["data_hash"]) != data_hash:
                raise ValueError(
                    f"{path} was computed on other data than chunk {index} "
                    "of this run's: give another resume_dir, or the same "
                    "data in the same order.")
            keys = json.loads(str(stored["keys"]))
            return {tuple(key): stored[f"a{i}"] for i, key in enumerate(keys)}

    def save(self, index: int, data_hash: str,
             arrays: Dict[tuple, np.ndarray]) -> None:
        """Keeps the arrays of chunk ``index`` (atomically)."""
        keys = list(arrays)
        payload = {f"a{i}": np.asarray(arrays[key]) for i, key in enumerate(keys)}
        payload["keys"] = np.array(json.dumps([list(key) for key in keys]))
        payload["data_hash"] = np.array(data_hash)

        def write(temporary: str) -> None:
            with open(temporary, "wb") as handle:
                np.savez(handle, **payload)

        _atomic.write_atomically(self._path(index), write)


def _write_json(path: str, data: dict) -> None:
    with open(path, "w") as handle:
        json.dump(data, handle, indent=2, sort_keys=True)
