"""Tests for keras_gradreg.datasets: tfds (mocked), IDX and Speech Commands dirs."""

import gzip
import os
import wave

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_datasets as tfds

from keras_gradreg import audio
from keras_gradreg import datasets

from _data import write_idx  # tests/ is on sys.path

WORDS = 10
SILENCE, UNKNOWN = 10, 11


def _raw_tfds(name, num_examples):
    with tfds.testing.mock_data(num_examples=num_examples):
        raw = tfds.load(name, split="train", as_supervised=True)
        return [(x.numpy(), y.numpy()) for x, y in raw]


def _mock_load(name, num_examples, **options):
    with tfds.testing.mock_data(num_examples=num_examples):
        return datasets.to_arrays(datasets.load(name, "train", **options))


# --- tensorflow-datasets paths (mocked) -------------------------------------


def test_mnist_from_tfds_is_unit_scaled():
    raw = _raw_tfds("mnist", 8)
    x, y = _mock_load("mnist", 8)
    assert x.shape == (8, 28, 28, 1) and x.dtype == np.float32
    assert y.dtype == np.int64
    np.testing.assert_allclose(x, np.stack([r[0] for r in raw]) / 255.0, rtol=1e-6)
    np.testing.assert_array_equal(y, [r[1] for r in raw])


@pytest.mark.parametrize("scale, divisor", [("0-255", 1.0), ("0-1", 255.0)])
def test_cifar10_scales(scale, divisor):
    raw = _raw_tfds("cifar10", 6)
    x, y = _mock_load("cifar10", 6, scale=scale)
    assert x.shape == (6, 32, 32, 3) and x.dtype == np.float32
    expected = np.stack([r[0] for r in raw]).astype("float64") / divisor
    np.testing.assert_allclose(x, expected, rtol=1e-6)
    assert x.max() > (100 if scale == "0-255" else 0.5)
    np.testing.assert_array_equal(y, [r[1] for r in raw])


def test_speech_commands_from_tfds_waveforms_and_shares():
    raw = _raw_tfds("speech_commands", 80)
    raw_labels = np.array([r[1] for r in raw])
    num_words = int(np.sum(raw_labels < WORDS))
    x, y = _mock_load("speech_commands", 80, features="waveform", unknown_share=0.04)
    assert x.shape[1:] == (16000,) and x.dtype == np.float32
    counts = np.bincount(y, minlength=12)
    raw_counts = np.bincount(raw_labels, minlength=12)
    np.testing.assert_array_equal(counts[:WORDS], raw_counts[:WORDS])
    assert counts[UNKNOWN] == min(raw_counts[UNKNOWN], round(0.04 * num_words))
    assert counts[SILENCE] == min(raw_counts[SILENCE], round(0.1 * num_words))
    first_word = next(r for r in raw if r[1] < WORDS)  # words are all kept, in order
    index = int(np.flatnonzero(y < WORDS)[0])
    expected = np.zeros(16000)
    expected[: len(first_word[0])] = first_word[0][:16000] / 32768.0
    np.testing.assert_allclose(x[index], expected, atol=1e-7)


def test_speech_commands_from_tfds_seed():
    options = dict(features="waveform", unknown_share=0.04)
    first = _mock_load("speech_commands", 80, seed=0, **options)
    again = _mock_load("speech_commands", 80, seed=0, **options)
    other = _mock_load("speech_commands", 80, seed=5, **options)
    np.testing.assert_array_equal(first[0], again[0])
    assert not np.array_equal(first[0], other[0])


def test_speech_commands_from_tfds_mfcc():
    waves, _ = _mock_load("speech_commands", 12, features="waveform")
    x, _ = _mock_load("speech_commands", 12)
    assert x.shape[1:] == (49, 40, 1) and x.dtype == np.float32
    expected = audio.mfcc(waves).numpy()[..., None]
    np.testing.assert_allclose(x, expected, rtol=1e-4, atol=1e-4)


# --- arguments ----------------------------------------------------------------


@pytest.mark.parametrize(
    "name, split, options, error, match",
    [
        ("imagenet", "train", {}, ValueError, "Unknown dataset"),
        ("mnist", "validation", {}, ValueError, "Bad split"),
        ("mnist", "train[abc]", {}, ValueError, "Bad split"),
        ("cifar10", "train", {"scale": "0-256"}, ValueError, "scale"),
        ("speech_commands", "train", {"features": "stft"}, ValueError, "features"),
        ("speech_commands", "train", {"unknown_share": -1}, ValueError, "unknown"),
        ("speech_commands", "train", {"silence_share": "1"}, TypeError, "silence"),
        ("speech_commands", "train", {"silence_share": float("nan")}, ValueError,
         "silence"),
        ("speech_commands", "train", {"seed": 0.5}, TypeError, "seed"),
        ("mnist", "train", {"scale": "0-1"}, TypeError, "scale"),
        ("mnist", 3, {}, TypeError, "split"),
    ],
)
def test_bad_arguments_raise(name, split, options, error, match):
    with pytest.raises(error, match=match):
        datasets.load(name, split, **options)


def test_class_names():
    assert datasets.class_names("speech_commands")[:2] == ("down", "go")
    assert len(datasets.class_names("cifar10")) == 10
    with pytest.raises(ValueError, match="Unknown dataset"):
        datasets.class_names("svhn")


def test_to_arrays_limit_and_errors():
    ds = tf.data.Dataset.from_tensor_slices((np.arange(3000.0), np.arange(3000)))
    x, y = datasets.to_arrays(ds, limit=2500)
    np.testing.assert_array_equal(y, np.arange(2500))
    with pytest.raises(ValueError, match="empty"):
        datasets.to_arrays(ds, limit=0)
    with pytest.raises(ValueError, match="limit"):
        datasets.to_arrays(ds, limit=-1)
    with pytest.raises(TypeError, match="features, label"):
        datasets.to_arrays(tf.data.Dataset.range(3))


# --- local IDX files ------------------------------------------------------------


@pytest.fixture
def idx_dir(tmp_path):
    rng = np.random.default_rng(0)
    arrays = {
        "train": (rng.integers(0, 256, (10, 28, 28)), rng.integers(0, 10, 10)),
        "t10k": (rng.integers(0, 256, (4, 28, 28)), rng.integers(0, 10, 4)),
    }
    for prefix, (images, labels) in arrays.items():
        write_idx(tmp_path / f"{prefix}-images-idx3-ubyte.gz", images)
        write_idx(tmp_path / f"{prefix}-labels-idx1-ubyte.gz", labels)
    return tmp_path, arrays


@pytest.mark.parametrize(
    "split, train_rows, test_rows",
    [("train", slice(None), None), ("test", None, slice(None)),
     ("train[:4]", slice(0, 4), None), ("train[-3:]", slice(7, 10), None),
     ("train[20%:40%]+test[:1]", slice(2, 4), slice(0, 1))],
)
def test_idx_files_and_slices(idx_dir, split, train_rows, test_rows):
    data_dir, arrays = idx_dir
    requested = (("train", train_rows), ("t10k", test_rows))
    chosen = [(arrays[prefix], rows) for prefix, rows in requested if rows]
    images = np.concatenate([array[0][rows] for array, rows in chosen])
    labels = np.concatenate([array[1][rows] for array, rows in chosen])
    ds = datasets.load("mnist", split, data_dir=str(data_dir))
    assert int(ds.cardinality()) == len(labels)
    x, y = datasets.to_arrays(ds)
    np.testing.assert_allclose(x[..., 0], images / 255.0, rtol=1e-6)
    np.testing.assert_array_equal(y, labels)


def test_idx_errors(idx_dir):
    data_dir, _ = idx_dir
    with pytest.raises(ValueError, match="Bad split"):
        datasets.load("mnist", "train[:11]", data_dir=str(data_dir))
    with gzip.open(data_dir / "t10k-images-idx3-ubyte.gz", "wb") as file:
        file.write(b"\x00\x00\x0d\x03" + b"\x00" * 12)
    with pytest.raises(ValueError, match="unsigned-byte IDX"):
        datasets.load("mnist", "test", data_dir=str(data_dir))


def test_a_truncated_gz_is_named(idx_dir):
    data_dir, _ = idx_dir
    path = data_dir / "t10k-images-idx3-ubyte.gz"
    path.write_bytes(path.read_bytes()[:-40])
    with pytest.raises(ValueError, match=f"{path} is truncated or not a gzip"):
        datasets.to_arrays(datasets.load("mnist", "test", data_dir=str(data_dir)))
    path.write_bytes(b"not gzip at all")
    with pytest.raises(ValueError, match=f"{path} is truncated or not a gzip"):
        datasets.load("mnist", "test", data_dir=str(data_dir))


@pytest.fixture
def no_download(monkeypatch):
    """Fails the test if tfds.load is called at all (no fallback)."""
    def refuse(*args, **kwargs):
        raise AssertionError("tfds.load was called")
    monkeypatch.setattr(tfds, "load", refuse)


@pytest.mark.parametrize(
    "name, files",
    [("mnist", ["train-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"]),
     ("speech_commands", ["validation_list.txt", "testing_list.txt"]),
     ("cifar10", [])],
)
@pytest.mark.parametrize("exists", [False, True])
def test_a_data_dir_without_the_data_is_an_error_not_a_download(
    tmp_path, no_download, name, files, exists
):
    data_dir = tmp_path / "data"
    if exists:
        data_dir.mkdir()
    with pytest.raises(FileNotFoundError) as info:
        datasets.load(name, "test", data_dir=str(data_dir))
    message = str(info.value)
    assert str(data_dir) in message
    assert ("does not exist" in message) != exists
    assert os.path.join(str(data_dir), name) in message  # the tfds folder
    for file in files:
        assert file in message


@pytest.mark.parametrize("removed", ["t10k-labels-idx1-ubyte.gz",
                                     "train-images-idx3-ubyte.gz"])
def test_an_incomplete_idx_dir_names_the_missing_file(idx_dir, no_download,
                                                       removed):
    data_dir, _ = idx_dir
    (data_dir / removed).unlink()
    with pytest.raises(FileNotFoundError, match=f"missing: {removed}"):
        datasets.load("mnist", "test", data_dir=str(data_dir))


def test_an_incomplete_speech_dir_names_the_missing_list(tiny_speech_dir,
                                                         no_download):
    (tiny_speech_dir / "testing_list.txt").unlink()
    with pytest.raises(FileNotFoundError, match="missing: testing_list.txt"):
        datasets.load("speech_commands", "train", data_dir=str(tiny_speech_dir))


@pytest.mark.parametrize("name", ["mnist", "cifar10"])
def test_a_tfds_data_dir_is_read_without_download(tmp_path, monkeypatch, name):
    (tmp_path / name / "3.0.1").mkdir(parents=True)
    calls = []

    def fake_load(*args, **kwargs):
        calls.append(kwargs)
        return tf.data.Dataset.from_tensor_slices(
            (np.zeros((2, 4, 4, 1), "uint8"), np.zeros(2, "int64")))

    monkeypatch.setattr(tfds, "load", fake_load)
    datasets.load(name, "test", data_dir=str(tmp_path))
    assert calls == [{"split": "test", "data_dir": str(tmp_path),
                      "as_supervised": True, "download": False}]


def test_real_mnist(mnist_dir):
    with gzip.open(mnist_dir / "t10k-labels-idx1-ubyte.gz") as file:
        file.read(8)
        test_labels = np.frombuffer(file.read(), np.uint8)
    train = datasets.load("mnist", "train", data_dir=str(mnist_dir))
    test = datasets.load("mnist", "test", data_dir=str(mnist_dir))
    assert int(train.cardinality()) == 60000 and int(test.cardinality()) == 10000
    x, y = datasets.to_arrays(test)
    assert x.shape == (10000, 28, 28, 1) and x.dtype == np.float32
    assert x.min() == 0.0 and x.max() == 1.0 and 0.1 < x.mean() < 0.15
    np.testing.assert_array_equal(y, test_labels)
    shares = np.bincount(y, minlength=10) / len(y)
    assert np.all((shares > 0.08) & (shares < 0.12))
    tail = datasets.load("mnist", "test[-50:]", data_dir=str(mnist_dir))
    _, tail_labels = datasets.to_arrays(tail)
    np.testing.assert_array_equal(tail_labels, test_labels[-50:])


# --- local Speech Commands layout --------------------------------------------


def _write_wav(path, samples):
    path.parent.mkdir(parents=True, exist_ok=True)
    with wave.open(str(path), "wb") as file:
        file.setnchannels(1)
        file.setsampwidth(2)
        file.setframerate(16000)
        file.writeframes(np.asarray(samples, "<i2").tobytes())


def _read_wav(path):
    with wave.open(str(path)) as file:
        return np.frombuffer(file.readframes(file.getnframes()), "<i2") / 32768.0


@pytest.fixture
def tiny_speech_dir(tmp_path):
    """yes/no (words), bed (unknown); clip i of each word has 4000*(i+1) samples."""
    rng = np.random.default_rng(0)
    for word in ("yes", "no", "bed"):
        for i in range(6):
            _write_wav(tmp_path / word / f"s{i}_nohash_0.wav",
                       rng.integers(-3000, 3000, 4000 * (i + 1)))
    (tmp_path / "validation_list.txt").write_text("yes/s0_nohash_0.wav\n")
    testing = "no/s0_nohash_0.wav\nbed/s0_nohash_0.wav\n"
    (tmp_path / "testing_list.txt").write_text(testing)
    return tmp_path


def test_speech_directory_pads_crops_and_needs_noise(tiny_speech_dir):
    with pytest.raises(ValueError, match="_background_noise_"):
        datasets.load("speech_commands", "train", data_dir=str(tiny_speech_dir))
    ds = datasets.load("speech_commands", "train", data_dir=str(tiny_speech_dir),
                       features="waveform", silence_share=0.0, unknown_share=0.2)
    x, y = datasets.to_arrays(ds)
    assert np.bincount(y, minlength=12).tolist() == [0, 0, 0, 5, 0, 0, 0, 0, 0, 5, 0, 2]
    originals = [_read_wav(p) for p in sorted(tiny_speech_dir.glob("*/*.wav"))]
    for clip in x:
        source = next(o for o in originals if np.array_equal(o[:100], clip[:100]))
        expected = np.pad(source[:16000], (0, max(0, 16000 - len(source))))
        np.testing.assert_array_equal(clip, expected)


def test_speech_directory_checks_sample_rate(tiny_speech_dir):
    with wave.open(str(tiny_speech_dir / "yes" / "s1_nohash_0.wav"), "wb") as file:
        file.setnchannels(1)
        file.setsampwidth(2)
        file.setframerate(8000)
        file.writeframes(np.zeros(8000, "<i2").tobytes())
    ds = datasets.load("speech_commands", "train", data_dir=str(tiny_speech_dir),
                       silence_share=0.0, features="waveform")
    with pytest.raises(tf.errors.InvalidArgumentError, match="16 kHz"):
        datasets.to_arrays(ds)


def test_speech_standin_classes_and_silence(speech_dir):
    ds = datasets.load("speech_commands", "train", data_dir=str(speech_dir),
                       features="waveform")
    x, y = datasets.to_arrays(ds)
    assert x.shape[1:] == (16000,) and x.dtype == np.float32
    counts = np.bincount(y, minlength=12)
    assert np.all(counts > 0) and len(counts) == 12
    assert counts[SILENCE] == counts[UNKNOWN] == round(0.1 * counts[:WORDS].sum())
    noise_files = sorted((speech_dir / "_background_noise_").glob("*.wav"))
    noises = [_read_wav(path) for path in noise_files]
    for clip in x[y == SILENCE][:5]:
        starts = [(n, np.flatnonzero(n == clip[0])) for n in noises]
        assert any(
            np.array_equal(n[s:s + 16000], clip) for n, found in starts for s in found
        ), "silence clip is not a window of a background noise file"


def test_speech_standin_splits_follow_lists(speech_dir):
    listed = (speech_dir / "validation_list.txt").read_text().split()
    words = set(datasets.SPEECH_COMMANDS_LABELS[:WORDS])
    expected = sum(line.split("/")[0] in words for line in listed)
    ds = datasets.load("speech_commands", "validation", data_dir=str(speech_dir),
                       features="waveform", seed=3)
    _, y = datasets.to_arrays(ds)
    assert np.sum(y < WORDS) == expected
    options = dict(data_dir=str(speech_dir), features="waveform")
    _, again = datasets.to_arrays(
        datasets.load("speech_commands", "validation", seed=3, **options))
    _, other = datasets.to_arrays(
        datasets.load("speech_commands", "validation", seed=4, **options))
    np.testing.assert_array_equal(y, again)
    assert not np.array_equal(y, other)


def test_speech_standin_mfcc_features(speech_dir):
    kwargs = dict(data_dir=str(speech_dir), seed=1)
    x, y = datasets.to_arrays(datasets.load("speech_commands", "test[:6]", **kwargs))
    waves, y_wave = datasets.to_arrays(
        datasets.load("speech_commands", "test[:6]", features="waveform", **kwargs))
    assert x.shape == (6, 49, 40, 1)
    np.testing.assert_array_equal(y, y_wave)
    expected = audio.MFCC()(waves).numpy()
    np.testing.assert_allclose(x[..., 0], expected, rtol=1e-4, atol=1e-4)


def test_an_idx_label_outside_mnist_classes_is_an_error(idx_dir):
    data_dir, arrays = idx_dir
    labels = arrays["t10k"][1].copy()
    labels[2] = 200
    path = data_dir / "t10k-labels-idx1-ubyte.gz"
    write_idx(path, labels)
    with pytest.raises(ValueError, match=f"{path} holds label 200 at index 2, "
                       "but MNIST has 10 classes"):
        datasets.load("mnist", "test", data_dir=str(data_dir))


@pytest.mark.parametrize("name", ["mnist", "speech_commands", "cifar10"])
def test_a_data_dir_that_is_a_file_is_called_so(tmp_path, no_download, name):
    path = tmp_path / "a_file"
    path.write_text("not a folder")
    with pytest.raises(FileNotFoundError,
                       match=f"data_dir {path} is not a folder \\(it is a file\\)"):
        datasets.load(name, "test", data_dir=str(path))
