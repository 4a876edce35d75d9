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

import numpy as np
import tensorflow as tf

from keras_gradreg import _checks
from keras_gradreg.datasets._images import load_cifar10
from keras_gradreg.datasets._images import load_mnist
from keras_gradreg.datasets._sources import absolute_instructions
from keras_gradreg.datasets._speech import SILENCE
from keras_gradreg.datasets._speech import SPEECH_COMMANDS_LABELS
from keras_gradreg.datasets._speech import SPEECH_COMMANDS_SPLITS
from keras_gradreg.datasets._speech import SPEECH_COMMANDS_WORDS
from keras_gradreg.datasets._speech import UNKNOWN
from keras_gradreg.datasets._speech import load_speech_commands

__all__ = [
    "load", "to_arrays", "class_names", "load_mnist", "load_cifar10",
    "load_speech_commands", "SPEECH_COMMANDS_LABELS", "SPEECH_COMMANDS_SPLITS",
    "SPEECH_COMMANDS_WORDS", "SILENCE", "UNKNOWN",
]

_CLASS_NAMES = {
    "mnist": tuple(str(digit) for digit in range(10)),
    "cifar10": ("airplane", "automobile", "bird", "cat", "deer", "dog",
                "frog", "horse", "ship", "truck"),
    "speech_commands": SPEECH_COMMANDS_LABELS,
}
_SPLITS = {
    "mnist": ("train", "test"),
    "cifar10": ("train", "test"),
    "speech_commands": SPEECH_COMMANDS_SPLITS,
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
            file that is truncated or not in the expected format, or an
            MNIST label file holding a label outside 0-9 (the message names
            the file).
        TypeError: For an option the dataset does not take, or of the
            wrong type.
        FileNotFoundError: For a ``data_dir`` that is missing, is a file
            rather than a folder, or does not hold the dataset; the message
            names the folder and the files looked for.

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
    absolute_instructions(split, {s: 10**9 for s in _SPLITS[name]})
    if name == "mnist":
        return load_mnist(split, data_dir)
    if name == "cifar10":
        return load_cifar10(split, data_dir, **options)
    return load_speech_commands(split, data_dir, **options)


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
