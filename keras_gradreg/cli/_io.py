"""Files of the ``keras-gradreg`` command: the saved model, data, outputs.

Every failure to read one is a one-line :class:`CommandLineError`.
"""

from __future__ import annotations

import os
import zipfile
from typing import Sequence

import keras
import numpy as np

from keras_gradreg import _checks
from keras_gradreg import datasets
from keras_gradreg._atomic import Output
from keras_gradreg.cli._parser import one_line
from keras_gradreg.cli._settings import NPZ_PREFIX
from keras_gradreg.cli._settings import CommandLineError
from keras_gradreg.cli._settings import check_dataset
from keras_gradreg.model import GradRegModel


def check_fresh(paths: Sequence[str], overwrite: bool) -> None:
    """Raises CommandLineError for an existing path unless ``overwrite``."""
    for path in paths:
        if os.path.exists(path) and not overwrite:
            raise CommandLineError(
                f"{path} exists; pass --overwrite to replace it."
            )


def prepare_output(path: str, flag: str, folder: bool = True,
                   keep=None, needed_bytes: int = 0) -> Output:
    """An :class:`~keras_gradreg._atomic.Output` for ``path``, prepared:
    stale scratch removed and a locked scratch folder made beside it.

    Run before any attack or training step, so that a read-only or full
    place fails at once.

    Raises:
        CommandLineError: Naming ``flag`` if ``path`` cannot be written.
    """
    output = Output(path, folder=folder, keep=keep)
    here = os.path.realpath(os.getcwd())
    if folder and (here + os.sep).startswith(output.path + os.sep):
        raise CommandLineError(
            f"{flag} {path} holds the current folder, which the command "
            "would replace; give a folder of its own, e.g. report.")
    try:
        output.prepare(needed_bytes)
    except OSError as error:
        raise CommandLineError(
            f"cannot write {flag} {path}: {error.strerror or error}."
        ) from None
    return output


_HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"


def _check_model_file(path: str) -> None:
    """Raises CommandLineError if ``path`` is not a Keras archive / HDF5."""
    extension = os.path.splitext(path)[1].lower()
    if extension == ".keras":
        fine = zipfile.is_zipfile(path)
        if fine:
            with zipfile.ZipFile(path) as archive:
                fine = "config.json" in archive.namelist()
        kind = "a zip archive holding config.json"
    elif extension in (".h5", ".hdf5"):
        with open(path, "rb") as handle:
            fine = handle.read(len(_HDF5_SIGNATURE)) == _HDF5_SIGNATURE
        kind = "an HDF5 file"
    else:
        return
    if not fine:
        raise CommandLineError(
            f"{path} is not a Keras model file (a {extension} model is "
            f"{kind}); save the model with model.save(path)."
        )


def load_model(path: str) -> keras.Model:
    """Loads a saved Keras model, or raises a one-line CommandLineError."""
    if not os.path.isfile(path):
        raise CommandLineError(f"model file {path} not found.")
    _check_model_file(path)
    try:
        return keras.models.load_model(path, compile=False)
    except Exception as error:  # Keras raises many types for bad files.
        raise CommandLineError(
            f"cannot load model {path}: {one_line(error)}"
        ) from error


def _load_npz(path: str) -> tuple:
    if not os.path.isfile(path):
        raise CommandLineError(f"data file {path} not found.")
    if not zipfile.is_zipfile(path):
        raise CommandLineError(
            f"{path} is not a NumPy .npz archive; write one with "
            "np.savez(path, x=x, y=y)."
        )
    try:
        with np.load(path, allow_pickle=False) as arrays:
            missing = {"x", "y"} - set(arrays.files)
            if missing:
                raise CommandLineError(
                    f"{path} must hold arrays 'x' and 'y'; it holds "
                    f"{sorted(arrays.files)}."
                )
            return arrays["x"], arrays["y"]
    except (OSError, ValueError) as error:
        raise CommandLineError(
            f"cannot read {path} as .npz: {one_line(error)}"
        ) from error


def load_data(spec: str, split: str, data_dir, limit) -> tuple:
    """Returns ``(x, y)``: floating-point inputs and the labels as stored
    (:func:`check_compatible` checks both against the model).

    Raises:
        CommandLineError: For an unknown dataset, an unreadable file or
            data that cannot be loaded.
    """
    check_dataset(spec)
    if spec.startswith(NPZ_PREFIX):
        x, y = _load_npz(spec[len(NPZ_PREFIX):])
        x, y = x[:limit], y[:limit]
    else:
        try:
            dataset = datasets.load(spec, split, data_dir=data_dir)
            x, y = datasets.to_arrays(dataset, limit=limit)
        except Exception as error:  # tfds and file errors come in many types.
            raise CommandLineError(
                f"cannot load {spec} {split}: {one_line(error)}"
            ) from error
    if len(x) == 0 or len(x) != len(y):
        raise CommandLineError(
            f"{spec} needs as many labels as inputs (> 0), got {len(x)} "
            f"inputs and {len(y)} labels."
        )
    if not np.issubdtype(x.dtype, np.floating):
        x = x.astype("float32")
    return x, np.asarray(y)


def check_compatible(model: keras.Model, x: np.ndarray, y: np.ndarray,
                     source: str, clip_min=None, clip_max=None) -> np.ndarray:
    """Checks data against the model before any attack or training step.

    The inputs must fit the model's input shape, be finite and lie in
    ``[clip_min, clip_max]``; the labels must be class indices below the
    model's number of classes, or one-hot rows exactly that wide (as the
    Python API requires).

    Returns:
        The labels as int64 class indices.

    Raises:
        CommandLineError: Naming ``source`` and what is wrong.
    """
    network = model.base if isinstance(model, GradRegModel) else model
    inputs = getattr(network, "inputs", None) or []
    if len(inputs) > 1:
        raise CommandLineError("models with several inputs are not supported.")
    if inputs:
        expected = tuple(inputs[0].shape[1:])
        fits = len(expected) == x.ndim - 1 and all(
            want in (None, got) for want, got in zip(expected, x.shape[1:])
        )
        if not fits:
            raise CommandLineError(
                f"the model takes inputs of shape {expected} but {source} has "
                f"examples of shape {tuple(x.shape[1:])}."
            )
    classes = getattr(network, "output_shape", (None,))[-1]
    try:
        labels = _checks.labels(y, num_classes=classes, batch=len(x))
        _checks.inputs(x, clip_min, clip_max)
    except (TypeError, ValueError) as error:
        raise CommandLineError(f"{source}: {one_line(error)}") from None
    return labels.astype("int64")
