"""MNIST (tfds or the four IDX files) and CIFAR-10 (tfds)."""

from __future__ import annotations

import gzip
import os
import zlib

import numpy as np
import tensorflow as tf

from keras_gradreg.datasets._sources import concatenate_slices
from keras_gradreg.datasets._sources import from_tfds
from keras_gradreg.datasets._sources import holds_tfds
from keras_gradreg.datasets._sources import not_found
from keras_gradreg.datasets._sources import present_files
from keras_gradreg.datasets._sources import to_pixel_scale
from keras_gradreg.datasets._sources import to_unit_scale

_MNIST_CLASSES = 10
_IDX_FILES = {
    "train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
    "test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"),
}


def _read_idx(path: str, header_only: bool = False):
    """Reads a gzipped IDX file: a NumPy array, or its shape if header_only."""
    try:
        return _read_gzipped_idx(path, header_only)
    except (EOFError, OSError, zlib.error) as error:
        raise ValueError(
            f"{path} is truncated or not a gzip file ({error}); download it "
            "again."
        ) from error


def _read_gzipped_idx(path: str, header_only: bool):
    with tf.io.gfile.GFile(path, "rb") as raw, gzip.GzipFile(fileobj=raw) as file:
        magic = file.read(4)
        if len(magic) != 4 or magic[:2] != b"\0\0" or magic[2] != 0x08:
            raise ValueError(f"{path} is not an unsigned-byte IDX file.")
        shape = tuple(
            int.from_bytes(file.read(4), "big") for _ in range(magic[3])
        )
        if header_only:
            return shape
        data = np.frombuffer(file.read(), dtype=np.uint8)
    if data.size != np.prod(shape):
        raise ValueError(f"{path}: {data.size} bytes, expected {np.prod(shape)}.")
    return data.reshape(shape)


def _read_idx_split(data_dir: str, split: str) -> tuple:
    images_file, labels_file = (os.path.join(data_dir, f) for f in _IDX_FILES[split])
    images, labels = _read_idx(images_file), _read_idx(labels_file)
    if images.ndim != 3 or labels.shape != images.shape[:1]:
        raise ValueError(
            f"IDX files of split {split!r} in {data_dir} disagree: images "
            f"{images.shape}, labels {labels.shape}."
        )
    if labels.size and labels.max() >= _MNIST_CLASSES:
        index = int(np.flatnonzero(labels >= _MNIST_CLASSES)[0])
        raise ValueError(
            f"{labels_file} holds label {int(labels[index])} at index {index}, "
            f"but MNIST has {_MNIST_CLASSES} classes (labels 0-"
            f"{_MNIST_CLASSES - 1}): the file is damaged or not MNIST's; "
            "download it again."
        )
    return images[..., None], labels


def load_mnist(split: str, data_dir) -> tf.data.Dataset:
    if data_dir is None:
        return from_tfds("mnist", split, None, to_unit_scale)
    names = [name for pair in _IDX_FILES.values() for name in pair]
    present = present_files(data_dir, names)
    if not present and holds_tfds(data_dir, "mnist"):
        return from_tfds("mnist", split, data_dir, to_unit_scale)
    if len(present) < len(names):
        raise not_found("mnist", data_dir, names, present)
    sizes = {
        base: _read_idx(os.path.join(data_dir, files[1]), header_only=True)[0]
        for base, files in _IDX_FILES.items()
    }
    images, labels = concatenate_slices(
        split, sizes, lambda base: _read_idx_split(data_dir, base)
    )
    dataset = tf.data.Dataset.from_tensor_slices((images, labels))
    return dataset.map(to_unit_scale, num_parallel_calls=tf.data.AUTOTUNE)


def load_cifar10(split: str, data_dir, scale: str) -> tf.data.Dataset:
    to_float = to_pixel_scale if scale == "0-255" else to_unit_scale
    if data_dir is not None and not holds_tfds(data_dir, "cifar10"):
        raise not_found("cifar10", data_dir, [])
    return from_tfds("cifar10", split, data_dir, to_float)
