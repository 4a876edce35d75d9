"""Where a dataset comes from: tfds, or a local folder, and its split slices."""

from __future__ import annotations

import os
import types

import numpy as np
import tensorflow as tf
import tensorflow_datasets as tfds


def absolute_instructions(split: str, sizes: dict) -> list:
    """Resolves a tfds split spec into ``(split, start, stop)`` triples."""
    infos = {
        name: types.SimpleNamespace(num_examples=size, shard_lengths=[size])
        for name, size in sizes.items()
    }
    try:
        instruction = tfds.core.ReadInstruction.from_spec(split)
        instructions = instruction.to_absolute(infos)
    except ValueError as error:
        raise ValueError(
            f"Bad split {split!r} ({error}). Splits: {sorted(sizes)}, "
            "optionally sliced like 'train[:4000]' or 'train[-5000:]'."
        ) from error
    return [(i.splitname, i.from_ or 0, i.to) for i in instructions]


def concatenate_slices(split: str, sizes: dict, read_split) -> tuple:
    """Reads each base split once and concatenates the requested slices."""
    cache = {}
    parts = []
    for base, start, stop in absolute_instructions(split, sizes):
        if base not in cache:
            cache[base] = read_split(base)
        parts.append(tuple(column[start:stop] for column in cache[base]))
    return tuple(np.concatenate(column) for column in zip(*parts))


def to_unit_scale(image, label):
    return tf.cast(image, tf.float32) / 255.0, tf.cast(label, tf.int64)


def to_pixel_scale(image, label):
    return tf.cast(image, tf.float32), tf.cast(label, tf.int64)


def from_tfds(name: str, split: str, data_dir, to_float) -> tf.data.Dataset:
    # A folder the user names is read, never downloaded into.
    dataset = tfds.load(name, split=split, data_dir=data_dir,
                        as_supervised=True, download=data_dir is None)
    return dataset.map(to_float, num_parallel_calls=tf.data.AUTOTUNE)


def present_files(data_dir: str, names) -> list:
    return [n for n in names if tf.io.gfile.exists(os.path.join(data_dir, n))]


def holds_tfds(data_dir: str, name: str) -> bool:
    """Whether ``data_dir`` is a tfds data directory holding ``name``."""
    return tf.io.gfile.isdir(os.path.join(data_dir, name))


def not_found(name: str, data_dir: str, files, present=()) -> FileNotFoundError:
    """The error for a ``data_dir`` without ``name``: names the folder, the
    files looked for, and which of them are missing."""
    tfds_folder = os.path.join(data_dir, name)
    if tf.io.gfile.exists(data_dir) and not tf.io.gfile.isdir(data_dir):
        where = f"data_dir {data_dir} is not a folder (it is a file)"
    elif not tf.io.gfile.isdir(data_dir):
        where = f"data_dir {data_dir} does not exist"
    else:
        where = f"no {name} data in data_dir {data_dir}"
    looked = f"a tensorflow-datasets folder {tfds_folder}/"
    if files:
        missing = [f for f in files if f not in present]
        looked = (f"{', '.join(files)} (missing: {', '.join(missing)}) or "
                  + looked)
    return FileNotFoundError(
        f"{where}: looked for {looked}. Put the files there, or pass "
        f"data_dir=None to use (and if needed download to) tfds' default "
        "folder; a given data_dir is never downloaded into."
    )
