"""TrainingRecord: the seconds and history of a fit, kept across processes."""

from __future__ import annotations

import json
import os
import shutil
import time
from typing import Any, Dict, List, Optional, Tuple

import keras

from keras_gradreg._atomic import write_atomically

RECORD_FILE = "progress.json"


class TrainingRecord(keras.callbacks.Callback):
    """Records every epoch's wall and CPU seconds and logs, resumably.

    What an hours-long run needs to report its cost after an interruption:
    ``keras.callbacks.BackupAndRestore`` brings back the weights and the
    epoch, and this callback brings back what the earlier processes
    measured. With ``path``, the record so far is written there (JSON)
    after every epoch; a record found there when the callback is made,
    written with the same ``settings``, is taken up, and the fit's seconds
    and history go on from it. A record of other settings is ignored (and
    overwritten at the next epoch's end). :func:`resumable` pairs the two
    callbacks in one folder.

    The seconds of an epoch are wall-clock (``time.perf_counter``) and
    process CPU (``time.process_time``) seconds from its beginning to its
    end, so they include the validation and the callbacks before this one.
    CPU seconds are the steadier cost on a shared machine.

    Args:
        path: Optional JSON file for the record.
        settings: JSON-serializable settings of the run; a record is taken
            up only when they equal the ones it was written with.
        verbose: 0 is silent; 1 prints each epoch's seconds, loss and
            accuracy.

    Attributes:
        wall: Wall-clock seconds of every recorded epoch.
        cpu: CPU seconds of every recorded epoch.
        history: ``{metric: [value per epoch]}``, as ``History`` has it.
        epochs_done: Epochs finished, earlier processes included.
        resumed_at: The epoch at which the record was taken up (0: none).

    Example:
        >>> import keras, numpy as np
        >>> model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
        >>> model.compile("sgd", "mse")
        >>> record = TrainingRecord()
        >>> _ = model.fit(np.ones((4, 2)), np.ones(4), epochs=3, verbose=0,
        ...               callbacks=[record])
        >>> record.epochs_done, len(record.wall), len(record.history["loss"])
        (3, 3, 3)
    """

    def __init__(self, path: Optional[str] = None,
                 settings: Optional[Any] = None, verbose: int = 0):
        super().__init__()
        self.path, self.settings, self.verbose = path, settings, verbose
        self.wall: List[float] = []
        self.cpu: List[float] = []
        self.history: Dict[str, List[float]] = {}
        self.epochs_done = 0
        self._earlier_fit = {"wall": 0.0, "cpu": 0.0}
        earlier = self._read() if path else None
        if earlier is not None:
            self.wall, self.cpu = list(earlier["wall"]), list(earlier["cpu"])
            self.history = {k: list(v) for k, v in earlier["history"].items()}
            self.epochs_done = earlier["epochs_done"]
            self._earlier_fit = dict(earlier["fit"])
        self.resumed_at = self.epochs_done
        self._fit_start = (time.perf_counter(), time.process_time())
        self._aligned = False

    def _read(self) -> Optional[dict]:
        """The record at ``path`` if it was written with these settings."""
        if not os.path.exists(self.path):
            return None
        with open(self.path) as handle:
            record = json.load(handle)
        if record.get("settings") != self.settings:
            return None
        wall = record.get("wall", [])
        # Records of version 0.1's examples held only the fit's wall time:
        # its CPU time is unknown (None) from then on.
        return {"wall": wall, "cpu": record.get("cpu", []),
                "history": record.get("history", {}),
                "epochs_done": record.get("epochs_done", len(wall)),
                "fit": record.get("fit", {"wall": record.get("seconds", 0.0),
                                          "cpu": None})}

    def fit_seconds(self) -> Dict[str, Optional[float]]:
        """Wall and CPU seconds of the whole fit, earlier processes included
        (CPU: None when an earlier process did not record it)."""
        earlier_cpu = self._earlier_fit["cpu"]
        return {
            "wall": self._earlier_fit["wall"] + time.perf_counter()
            - self._fit_start[0],
            "cpu": None if earlier_cpu is None else earlier_cpu
            + time.process_time() - self._fit_start[1],
        }

    def on_train_begin(self, logs=None):
        self._fit_start = (time.perf_counter(), time.process_time())

    def on_epoch_begin(self, epoch, logs=None):
        if not self._aligned:  # a checkpoint older than the record wins
            self._aligned = True
            if epoch < self.epochs_done:
                del self.wall[epoch:], self.cpu[epoch:]
                for values in self.history.values():
                    del values[epoch:]
                self.epochs_done = self.resumed_at = epoch
        self._epoch_start = (time.perf_counter(), time.process_time())

    def on_epoch_end(self, epoch, logs=None):
        self.wall.append(time.perf_counter() - self._epoch_start[0])
        self.cpu.append(time.process_time() - self._epoch_start[1])
        logs = logs or {}
        for key, value in logs.items():
            self.history.setdefault(key, []).append(float(value))
        self.epochs_done = epoch + 1
        if self.verbose:
            epochs = (self.params or {}).get("epochs", "?")
            print(f"  epoch {epoch + 1}/{epochs}: {self.wall[-1]:.1f} s "
                  f"(CPU {self.cpu[-1]:.1f} s), loss {logs.get('loss', 0):.4f}"
                  f", accuracy {logs.get('accuracy', 0):.4f}", flush=True)
        if self.path:
            self.save(self.path)

    def as_dict(self) -> dict:
        """The record as written to ``path``."""
        return {"settings": self.settings, "epochs_done": self.epochs_done,
                "wall": self.wall, "cpu": self.cpu, "history": self.history,
                "fit": self.fit_seconds()}

    def save(self, path: str) -> None:
        """Writes the record (JSON) to ``path``, atomically."""
        record = self.as_dict()

        def dump(temporary: str) -> None:
            with open(temporary, "w") as handle:
                json.dump(record, handle)

        write_atomically(path, dump)


def resumable(backup_dir: str, settings: Optional[Any] = None,
              verbose: int = 0) -> Tuple[List[keras.callbacks.Callback],
                                         TrainingRecord]:
    """Callbacks that let a fit go on from its last epoch, seconds included.

    Returns Keras' ``BackupAndRestore`` (every epoch's weights, optimizer
    state and epoch in ``backup_dir``) followed by a :class:`TrainingRecord`
    kept in ``backup_dir/progress.json``. Pass both to ``fit``; run the
    same code again after an interruption and the fit goes on from the last
    finished epoch, with the earlier epochs' seconds and history in the
    record. A checkpoint without a record of the same ``settings`` is
    removed first, so a changed run starts afresh instead of resuming the
    wrong weights. The folder stays after the fit (remove it once the model
    is saved).

    Args:
        backup_dir: Folder for the checkpoint and the record.
        settings: JSON-serializable settings of the run (see
            :class:`TrainingRecord`).
        verbose: Passed to :class:`TrainingRecord`.

    Returns:
        ``(callbacks, record)``; ``record.resumed_at`` is the epoch the fit
        will go on from (0 for a fresh start).

    Example:
        >>> import keras, numpy as np, tempfile
        >>> model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
        >>> model.compile("sgd", "mse")
        >>> folder = tempfile.mkdtemp()
        >>> callbacks, record = resumable(folder, {"epochs": 2})
        >>> _ = model.fit(np.ones((4, 2)), np.ones(4), epochs=2, verbose=0,
        ...               callbacks=callbacks)
        >>> resumable(folder, {"epochs": 2})[1].epochs_done  # next process
        2
    """
    record = TrainingRecord(os.path.join(backup_dir, RECORD_FILE), settings,
                            verbose)
    if not record.resumed_at and os.path.isdir(backup_dir):
        shutil.rmtree(backup_dir)
    os.makedirs(backup_dir, exist_ok=True)
    backup = keras.callbacks.BackupAndRestore(backup_dir,
                                              delete_checkpoint=False)
    return [backup, record], record
