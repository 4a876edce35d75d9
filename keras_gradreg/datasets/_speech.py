"""Google Speech Commands: the paper's 12 classes, from tfds or a folder."""

from __future__ import annotations

import os

import numpy as np
import tensorflow as tf
import tensorflow_datasets as tfds

from keras_gradreg import audio
from keras_gradreg.datasets._sources import concatenate_slices
from keras_gradreg.datasets._sources import holds_tfds
from keras_gradreg.datasets._sources import not_found
from keras_gradreg.datasets._sources import present_files

SPEECH_COMMANDS_WORDS = (
    "down", "go", "left", "no", "off", "on", "right", "stop", "up", "yes"
)
SILENCE = "_silence_"
UNKNOWN = "_unknown_"
# Same order as tfds' `speech_commands`, so both sources share label indices.
SPEECH_COMMANDS_LABELS = SPEECH_COMMANDS_WORDS + (SILENCE, UNKNOWN)
SPEECH_COMMANDS_SPLITS = ("train", "validation", "test")
_SILENCE_INDEX = SPEECH_COMMANDS_LABELS.index(SILENCE)
_UNKNOWN_INDEX = SPEECH_COMMANDS_LABELS.index(UNKNOWN)
_SAMPLES = audio.SAMPLE_RATE  # One second.


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
    files = {split: [] for split in SPEECH_COMMANDS_SPLITS}
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
    split_index = SPEECH_COMMANDS_SPLITS.index(split)
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
    paths, labels, positions = concatenate_slices(split, sizes, columns.get)
    dataset = tf.data.Dataset.from_tensor_slices((paths, labels, positions))
    dataset = dataset.map(_read_clip, num_parallel_calls=tf.data.AUTOTUNE)
    return dataset.map(_speech_features(features), num_parallel_calls=tf.data.AUTOTUNE)


def load_speech_commands(split, data_dir, **options) -> tf.data.Dataset:
    if data_dir is None:
        return _speech_from_tfds(split, None, **options)
    names = ["validation_list.txt", "testing_list.txt"]
    present = present_files(data_dir, names)
    if len(present) == len(names):
        return _speech_from_directory(split, data_dir, **options)
    if not present and holds_tfds(data_dir, "speech_commands"):
        return _speech_from_tfds(split, data_dir, **options)
    raise not_found("speech_commands", data_dir, names, present)
