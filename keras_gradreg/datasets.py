"""The paper's datasets as unbatched ``tf.data.Dataset``s of (features, label).

:func:`load` reads MNIST, CIFAR-10 and Google Speech Commands (Section 4 of
Yu et al.) from tensorflow-datasets, or MNIST-like IDX files and the original
Speech Commands layout from a local directory. Labels are int64 class indices
(:func:`class_names` names them); splits take tfds slices on every path.

Reading (or downloading) MNIST, so skipped when the docstrings are tested:

>>> train = load("mnist", "train[:55000]")  # doctest: +SKIP
>>> x, y = to_arrays(train, limit=1000)  # doctest: +SKIP
"""

from __future__ import annotations

import gzip
import os
import types
import zlib

import numpy as np
import tensorflow as tf
import tensorflow_datasets as tfds

from keras_gradreg import _checks
from keras_gradreg import audio

__all__ = ["load", "to_arrays", "class_names", "SPEECH_COMMANDS_LABELS"]

SPEECH_COMMANDS_WORDS = (
    "down", "go", "left", "no", "off", "on", "right", "stop", "up", "yes"
)
SILENCE = "_silence_"
UNKNOWN = "_unknown_"
# Same order as tfds' `speech_commands`, so both sources share label indices.
SPEECH_COMMANDS_LABELS = SPEECH_COMMANDS_WORDS + (SILENCE, UNKNOWN)
_SILENCE_INDEX = SPEECH_COMMANDS_LABELS.index(SILENCE)
_UNKNOWN_INDEX = SPEECH_COMMANDS_LABELS.index(UNKNOWN)
_SAMPLES = audio.SAMPLE_RATE  # One second.

_CLASS_NAMES = {
    "mnist": tuple(str(digit) for digit in range(10)),
    "cifar10": ("airplane", "automobile", "bird", "cat", "deer", "dog",
                "frog", "horse", "ship", "truck"),
    "speech_commands": SPEECH_COMMANDS_LABELS,
}
_SPLITS = {
    "mnist": ("train", "test"),
    "cifar10": ("train", "test"),
    "speech_commands": ("train", "validation", "test"),
}
_DEFAULT_OPTIONS = {
    "mnist": {},
    "cifar10": {"scale": "0-255"},
    "speech_commands": {
        "features": "mfcc",
        "unknown_share": 0.1,
        "silence_share": 0.1,
        "seed": 0,
    },
}
_IDX_FILES = {
    "train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
    "test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"),
}


def class_names(name: str) -> tuple:
    """Returns the class names of dataset ``name``, indexed by label.

    Example:
        >>> class_names("speech_commands")[-2:]
        ('_silence_', '_unknown_')
    """
    _check_name(name)
    return _CLASS_NAMES[name]


def load(
    name: str, split: str, data_dir: str | None = None, **options
) -> tf.data.Dataset:
    """Loads a dataset as an unbatched ``tf.data.Dataset`` of (x, label).

    Speech Commands has the paper's 12 classes: all clips of the 10 command
    words plus a seeded sample of ``_unknown_`` (other words) and
    ``_silence_`` clips, padded with zeros or cropped to 1 s at 16 kHz. From
    tfds (which cuts its silence clips from the background noise every 0.5 s)
    one label-only pass picks the sample; from a local directory, silence
    clips are random 1 s windows of ``_background_noise_/*.wav`` and the
    examples are shuffled by ``seed``. WAVs are decoded in-graph.

    Args:
        name: ``"mnist"``, ``"cifar10"`` or ``"speech_commands"``.
        split: ``"train"``, ``"test"`` (speech also ``"validation"``),
            optionally sliced and joined the tfds way, e.g.
            ``"train[:4000]"``, ``"train[-5000:]"``, ``"train[:10%]+test"``.
        data_dir: For ``"mnist"``, a folder with the four IDX ``.gz`` files;
            for ``"speech_commands"``, a folder in the original layout (word
            folders, ``_background_noise_/``, ``validation_list.txt``,
            ``testing_list.txt``); for any dataset, a tfds data directory
            that already holds it (``DIR/<name>/``, e.g. made by
            ``tfds.load(name, data_dir=DIR)``). A given folder is never
            downloaded into. ``None``: tfds' default folder, downloading the
            data if it is missing.
        **options: Per dataset. ``"cifar10"``: ``scale="0-255"`` (default) or
            ``"0-1"``. ``"speech_commands"``: ``features="mfcc"`` (default;
            (49, 40, 1) from :func:`keras_gradreg.audio.mfcc`) or
            ``"waveform"`` ((16000,) in [-1, 1]); ``unknown_share=0.1`` and
            ``silence_share=0.1``, the number of ``_unknown_`` and
            ``_silence_`` clips as a fraction of the clips of the 10 command
            words (the TensorFlow speech tutorial's 10% each, i.e. about one
            class's worth); ``seed=0`` for that sampling and the local
            file order.

    Returns:
        An unbatched ``tf.data.Dataset`` of ``(float32 features, int64
        label)``: MNIST (28, 28, 1) in [0, 1]; CIFAR-10 (32, 32, 3) in
        [0, 255] (the scale of the paper's eps 3, 6, 9) or [0, 1]; Speech
        Commands (49, 40, 1) MFCCs or (16000,) waveforms.

    Raises:
        ValueError: For an unknown name, split or option value, or a local
            file that is truncated or not in the expected format (the
            message names the file).
        TypeError: For an option the dataset does not take, or of the
            wrong type.
        FileNotFoundError: For a ``data_dir`` that is missing or does not
            hold the dataset; the message names the folder and the files
            looked for.

    Example:
        A folder without the data is an error, never a download:

        >>> load("mnist", "test", data_dir="no/such/dir")  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        FileNotFoundError: data_dir no/such/dir does not exist: looked for ...

        With the four IDX files in ``mnist/`` (skipped when the docstrings
        are tested: it needs them):

        >>> ds = load("mnist", "test[:100]", data_dir="mnist/")  # doctest: +SKIP
        >>> ds.element_spec[0].shape  # doctest: +SKIP
        TensorShape([28, 28, 1])
    """
    _check_name(name)
    options = _check_options(name, options)
    if not isinstance(split, str):
        raise TypeError(f"`split` must be a string, got {split!r}.")
    # Checks names and syntax now; sizes are only known once data is found.
    _absolute_instructions(split, {s: 10**9 for s in _SPLITS[name]})
    if name == "mnist":
        return _load_mnist(split, data_dir)
    if name == "cifar10":
        return _load_cifar10(split, data_dir, **options)
    return _load_speech_commands(split, data_dir, **options)


def to_arrays(dataset: tf.data.Dataset, limit: int | None = None):
    """Returns a dataset of (x, y) as NumPy arrays ``(x, y)``.

    Args:
        dataset: An unbatched dataset of ``(features, label)`` pairs.
        limit: Read at most this many examples (``None``: all).

    Returns:
        A tuple ``(x, y)`` of NumPy arrays stacked along a new first axis.

    Raises:
        TypeError: If elements are not (features, label) pairs.
        ValueError: If ``limit`` is negative or nothing was read.

    Example:
        >>> ds = tf.data.Dataset.from_tensor_slices(([[1.0], [2.0]], [0, 1]))
        >>> x, y = to_arrays(ds)
        >>> x.shape, y.tolist()
        ((2, 1), [0, 1])
    """
    spec = dataset.element_spec
    if not isinstance(spec, tuple) or len(spec) != 2:
        raise TypeError(f"Expected (features, label) elements, got {spec}.")
    if limit is not None:
        dataset = dataset.take(_checks.integer("limit", limit, 0))
    batches = list(dataset.batch(1024).as_numpy_iterator())
    if not batches:
        raise ValueError("The dataset is empty: nothing to convert.")
    return tuple(np.concatenate([batch[i] for batch in batches]) for i in (0, 1))


# --- Arguments -------------------------------------------------------------


def _check_name(name) -> None:
    _checks.choice("dataset", name, sorted(_SPLITS))


def _check_options(name: str, options: dict) -> dict:
    defaults = _DEFAULT_OPTIONS[name]
    unknown = sorted(set(options) - set(defaults))
    if unknown:
        raise TypeError(
            f"Dataset {name!r} takes no option(s) {unknown}; its options are "
            f"{sorted(defaults) or 'none'}."
        )
    options = {**defaults, **options}
    if name == "cifar10":
        _checks.choice("scale", options["scale"], ("0-255", "0-1"))
    if name == "speech_commands":
        _checks.choice("features", options["features"], ("mfcc", "waveform"))
        for share in ("unknown_share", "silence_share"):
            options[share] = _checks.number(
                share, options[share], minimum=0.0, maximum=1e9
            )
        options["seed"] = _checks.integer("seed", options["seed"], minimum=0)
    return options


def _absolute_instructions(split: str, sizes: dict) -> list:
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


def _concatenate_slices(split: str, sizes: dict, read_split) -> tuple:
    """Reads each base split once and concatenates the requested slices."""
    cache = {}
    parts = []
    for base, start, stop in _absolute_instructions(split, sizes):
        if base not in cache:
            cache[base] = read_split(base)
        parts.append(tuple(column[start:stop] for column in cache[base]))
    return tuple(np.concatenate(column) for column in zip(*parts))


# --- MNIST and CIFAR-10 ------------------------------------------------------


def _to_unit_scale(image, label):
    return tf.cast(image, tf.float32) / 255.0, tf.cast(label, tf.int64)


def _to_pixel_scale(image, label):
    return tf.cast(image, tf.float32), tf.cast(label, tf.int64)


def _from_tfds(name: str, split: str, data_dir, to_float) -> tf.data.Dataset:
    # A folder the user names is read, never downloaded into.
    dataset = tfds.load(name, split=split, data_dir=data_dir,
                        as_supervised=True, download=data_dir is None)
    return dataset.map(to_float, num_parallel_calls=tf.data.AUTOTUNE)


def _present(data_dir: str, names) -> list:
    return [n for n in names if tf.io.gfile.exists(os.path.join(data_dir, n))]


def _holds_tfds(data_dir: str, name: str) -> bool:
    """Whether ``data_dir`` is a tfds data directory holding ``name``."""
    return tf.io.gfile.isdir(os.path.join(data_dir, name))


def _not_found(name: str, data_dir: str, files, present=()) -> FileNotFoundError:
    """The error for a ``data_dir`` without ``name``: names the folder, the
    files looked for, and which of them are missing."""
    tfds_folder = os.path.join(data_dir, name)
    if not tf.io.gfile.isdir(data_dir):
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
    return images[..., None], labels


def _load_mnist(split: str, data_dir) -> tf.data.Dataset:
    if data_dir is None:
        return _from_tfds("mnist", split, None, _to_unit_scale)
    names = [name for pair in _IDX_FILES.values() for name in pair]
    present = _present(data_dir, names)
    if not present and _holds_tfds(data_dir, "mnist"):
        return _from_tfds("mnist", split, data_dir, _to_unit_scale)
    if len(present) < len(names):
        raise _not_found("mnist", data_dir, names, present)
    sizes = {
        base: _read_idx(os.path.join(data_dir, files[1]), header_only=True)[0]
        for base, files in _IDX_FILES.items()
    }
    images, labels = _concatenate_slices(
        split, sizes, lambda base: _read_idx_split(data_dir, base)
    )
    dataset = tf.data.Dataset.from_tensor_slices((images, labels))
    return dataset.map(_to_unit_scale, num_parallel_calls=tf.data.AUTOTUNE)


def _load_cifar10(split: str, data_dir, scale: str) -> tf.data.Dataset:
    to_float = _to_pixel_scale if scale == "0-255" else _to_unit_scale
    if data_dir is not None and not _holds_tfds(data_dir, "cifar10"):
        raise _not_found("cifar10", data_dir, [])
    return _from_tfds("cifar10", split, data_dir, to_float)


# --- Speech Commands ---------------------------------------------------------


def _fix_length(waveform):
    """Pads with zeros or crops a 1-D waveform to one second."""
    waveform = waveform[:_SAMPLES]
    padding = _SAMPLES - tf.shape(waveform)[0]
    return tf.ensure_shape(tf.pad(waveform, [[0, padding]]), [_SAMPLES])


def _speech_features(features: str):
    def to_features(waveform, label):
        waveform = _fix_length(waveform)
        if features == "mfcc":
            waveform = audio.mfcc(waveform)[..., None]
        return waveform, tf.cast(label, tf.int64)

    return to_features


def _balanced_selection(labels: np.ndarray, unknown_share, silence_share, rng):
    """Keeps all command words and ``share * #words`` unknown/silence clips."""
    keep = labels < len(SPEECH_COMMANDS_WORDS)
    num_words = int(keep.sum())
    for index, share in (
        (_UNKNOWN_INDEX, unknown_share),
        (_SILENCE_INDEX, silence_share),
    ):
        candidates = np.flatnonzero(labels == index)
        count = min(len(candidates), int(round(share * num_words)))
        keep[rng.choice(candidates, count, replace=False)] = True
    return keep


def _speech_from_tfds(split, data_dir, features, unknown_share, silence_share, seed):
    """tfds' clips; its silence clips are background noise cut every 0.5 s.

    A first pass reads the labels, then the sample is kept by index: both
    passes read in the same order (tfds does not shuffle files by default).
    """
    read = dict(split=split, data_dir=data_dir, as_supervised=True,
                download=data_dir is None)
    labels_only = tfds.load("speech_commands", **read)
    labels_only = labels_only.map(lambda _, label: label).batch(8192)
    labels = np.concatenate(
        [np.zeros(0, np.int64), *labels_only.as_numpy_iterator()]
    )
    rng = np.random.default_rng(seed)
    keep = _balanced_selection(labels, unknown_share, silence_share, rng)
    keep_table = tf.constant(keep)
    dataset = tfds.load("speech_commands", **read).enumerate()
    dataset = dataset.filter(lambda index, example: keep_table[index])
    dataset = dataset.map(
        lambda _, example: (tf.cast(example[0], tf.float32) / 32768.0, example[1])
    )
    cardinality = tf.data.experimental.assert_cardinality(int(keep.sum()))
    return dataset.apply(cardinality).map(
        _speech_features(features), num_parallel_calls=tf.data.AUTOTUNE
    )


def _read_list(path: str) -> set:
    with tf.io.gfile.GFile(path) as file:
        return {line.strip() for line in file if line.strip()}


def _local_speech_files(data_dir: str) -> dict:
    """Lists ``{split: [(path, label), ...]}`` of the word clips."""
    validation = _read_list(os.path.join(data_dir, "validation_list.txt"))
    testing = _read_list(os.path.join(data_dir, "testing_list.txt"))
    files = {split: [] for split in _SPLITS["speech_commands"]}
    for word in sorted(tf.io.gfile.listdir(data_dir)):
        word = word.rstrip("/")
        folder = os.path.join(data_dir, word)
        if word.startswith("_") or not tf.io.gfile.isdir(folder):
            continue
        label = (
            SPEECH_COMMANDS_LABELS.index(word)
            if word in SPEECH_COMMANDS_WORDS
            else _UNKNOWN_INDEX
        )
        for path in sorted(tf.io.gfile.glob(os.path.join(folder, "*.wav"))):
            relative = f"{word}/{os.path.basename(path)}"
            split = "train"
            split = "validation" if relative in validation else split
            split = "test" if relative in testing else split
            files[split].append((path, label))
    return files


def _local_speech_split(files, noise_files, split, options) -> tuple:
    """Columns (path, label, noise position) of one split, shuffled by seed.

    A silence clip is the 1 s window of a background noise file starting at
    ``position * (length - 16000)``; word clips have position -1.
    """
    split_index = _SPLITS["speech_commands"].index(split)
    rng = np.random.default_rng([options["seed"], split_index])
    paths = np.array([path for path, _ in files], dtype=str)
    labels = np.array([label for _, label in files], dtype=np.int64)
    keep = _balanced_selection(labels, options["unknown_share"], 0.0, rng)
    num_words = np.sum(labels < len(SPEECH_COMMANDS_WORDS))
    num_silence = int(round(options["silence_share"] * num_words))
    if num_silence and not noise_files:
        raise ValueError(
            "No _background_noise_/*.wav to cut silence clips from; pass "
            "silence_share=0 to load without silence."
        )
    noise_choice = rng.integers(0, max(len(noise_files), 1), num_silence)
    paths = np.concatenate([paths[keep], np.array(noise_files, str)[noise_choice]])
    labels = np.concatenate([labels[keep], np.full(num_silence, _SILENCE_INDEX)])
    positions = np.concatenate([np.full(keep.sum(), -1.0), rng.random(num_silence)])
    order = rng.permutation(len(paths))
    return paths[order], labels[order], positions[order].astype(np.float32)


def _read_clip(path, label, position):
    """Decodes a WAV file in-graph; cuts a window from it if position >= 0."""
    contents = tf.io.read_file(path)
    waveform, sample_rate = tf.audio.decode_wav(contents, desired_channels=1)
    tf.debugging.assert_equal(
        sample_rate, _SAMPLES, message="Expected 16 kHz WAV files."
    )
    room = tf.maximum(tf.shape(waveform)[0] - _SAMPLES, 0)
    start = tf.cast(tf.maximum(position, 0.0) * tf.cast(room, tf.float32), tf.int32)
    return waveform[start:, 0], label


def _speech_from_directory(split, data_dir, features, **options):
    files = _local_speech_files(data_dir)
    noise_dir = os.path.join(data_dir, "_background_noise_")
    noise_files = sorted(tf.io.gfile.glob(os.path.join(noise_dir, "*.wav")))
    columns = {
        base: _local_speech_split(files[base], noise_files, base, options)
        for base in files
    }
    sizes = {base: len(column[0]) for base, column in columns.items()}
    paths, labels, positions = _concatenate_slices(split, sizes, columns.get)
    dataset = tf.data.Dataset.from_tensor_slices((paths, labels, positions))
    dataset = dataset.map(_read_clip, num_parallel_calls=tf.data.AUTOTUNE)
    return dataset.map(_speech_features(features), num_parallel_calls=tf.data.AUTOTUNE)


def _load_speech_commands(split, data_dir, **options) -> tf.data.Dataset:
    if data_dir is None:
        return _speech_from_tfds(split, None, **options)
    names = ["validation_list.txt", "testing_list.txt"]
    present = _present(data_dir, names)
    if len(present) == len(names):
        return _speech_from_directory(split, data_dir, **options)
    if not present and _holds_tfds(data_dir, "speech_commands"):
        return _speech_from_tfds(split, data_dir, **options)
    raise _not_found("speech_commands", data_dir, names, present)
