"""Files of the ``keras-gradreg`` command: the saved model, data, outputs.

Every failure to read one is a one-line :class:`CommandLineError`.
"""

from __future__ import annotations

import os
from typing import Sequence

import keras
import numpy as np

from keras_gradreg import datasets
from keras_gradreg._cli_settings import NPZ_PREFIX
from keras_gradreg._cli_settings import CommandLineError
from keras_gradreg._cli_settings import check_dataset
from keras_gradreg.model import GradRegModel


def check_fresh(paths: Sequence[str], overwrite: bool) -> None:
    """Raises CommandLineError for an existing path unless ``overwrite``."""
    for path in paths:
        if os.path.exists(path) and not overwrite:
            raise CommandLineError(
                f"{path} exists; pass --overwrite to replace it."
            )


def one_line(error: BaseException) -> str:
    """``error``'s message on one line of at most 400 characters."""
    text = " ".join(str(error).split())
    return text if len(text) <= 400 else text[:397] + "..."


def load_model(path: str) -> keras.Model:
    """Loads a saved Keras model, or raises a one-line CommandLineError."""
    if not os.path.isfile(path):
        raise CommandLineError(f"model file {path} not found.")
    try:
        return keras.models.load_model(path, compile=False)
    except Exception as error:  # Keras raises many types for bad files.
        raise CommandLineError(
            f"cannot load model {path}: {one_line(error)}"
        ) from error


def _load_npz(path: str) -> tuple:
    if not os.path.isfile(path):
        raise CommandLineError(f"data file {path} not found.")
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


def _as_sparse_labels(y: np.ndarray, source: str) -> np.ndarray:
    """Integer class labels from sparse, ``(n, 1)`` or one-hot labels."""
    if y.ndim == 2:
        y = y[:, 0] if y.shape[1] == 1 else np.argmax(y, axis=-1)
    numeric = np.issubdtype(y.dtype, np.number)
    if y.ndim != 1 or not numeric or np.any(np.mod(y, 1) != 0) or y.min() < 0:
        raise CommandLineError(
            f"the labels of {source} must be class indices >= 0 (or one-hot "
            "rows)."
        )
    return y.astype("int64")


def load_data(spec: str, split: str, data_dir, limit) -> tuple:
    """Returns ``(x, y)``: float32 inputs and int64 class labels.

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
    return x, _as_sparse_labels(np.asarray(y), spec)


def check_compatible(model: keras.Model, x: np.ndarray, y: np.ndarray,
                     source: str) -> None:
    """Raises CommandLineError if ``model`` cannot take ``x`` or ``y``."""
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
    if classes is not None and y.max() >= classes:
        raise CommandLineError(
            f"{source} has label {int(y.max())} but the model has {classes} "
            "classes."
        )
