"""Tests for keras_gradreg.audio against a NumPy MFCC computation."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_gradreg import audio


def _numpy_mfcc(
    waveform, frame_length=640, frame_step=320, num_coefficients=40,
    lower=20.0, upper=4000.0, num_mel_bins=40, sample_rate=16000,
):
    """Independent float64 MFCC: NumPy frames, FFT and DCT-II; TF mel matrix."""
    num_frames = 1 + (waveform.shape[-1] - frame_length) // frame_step
    starts = frame_step * np.arange(num_frames)
    frames = waveform[..., starts[:, None] + np.arange(frame_length)]
    n = np.arange(frame_length)
    periodic_hann = 0.5 - 0.5 * np.cos(2 * np.pi * n / frame_length)
    fft_length = 1 << (frame_length - 1).bit_length()
    spectrum = np.fft.rfft(frames.astype("float64") * periodic_hann, fft_length)
    mel_matrix = tf.signal.linear_to_mel_weight_matrix(
        num_mel_bins, fft_length // 2 + 1, sample_rate, lower, upper
    ).numpy().astype("float64")
    log_mel = np.log(np.abs(spectrum) ** 2 @ mel_matrix + 1e-6)
    k = np.arange(num_mel_bins)[:, None]
    m = np.arange(num_mel_bins)[None, :]
    angles = np.pi * k * (2 * m + 1) / (2 * num_mel_bins)
    dct_ii = np.sqrt(2.0 / num_mel_bins) * np.cos(angles)  # orthonormal, k > 0
    return (log_mel @ dct_ii.T)[..., :num_coefficients]


@pytest.fixture
def waveforms():
    rng = np.random.default_rng(3)
    time = np.arange(16000) / 16000.0
    tone = 0.3 * np.sin(2 * np.pi * 440.0 * time)
    return (tone + 0.05 * rng.normal(size=(2, 16000))).astype("float32")


def test_matches_numpy_reference(waveforms):
    expected = _numpy_mfcc(waveforms.astype("float64"))
    actual = audio.MFCC()(waveforms).numpy()
    assert actual.shape == (2, 49, 40)
    np.testing.assert_allclose(actual, expected, rtol=1e-4, atol=1e-4)


def test_constructor_arguments_change_the_computation(waveforms):
    layer = audio.MFCC(frame_length=400, frame_step=160, num_coefficients=13,
                       upper_edge_hertz=7600.0)
    expected = _numpy_mfcc(waveforms.astype("float64"), 400, 160, 13, upper=7600.0)
    actual = layer(waveforms).numpy()
    assert actual.shape == (2, 98, 13) == layer.compute_output_shape((2, 16000))
    np.testing.assert_allclose(actual, expected, rtol=1e-4, atol=1e-4)


def test_add_channel_and_output_shape():
    layer = audio.MFCC(add_channel=True)
    assert layer.compute_output_shape((None, 16000)) == (None, 49, 40, 1)
    inputs = keras.Input((16000,))
    assert tuple(layer(inputs).shape) == (None, 49, 40, 1)


@pytest.mark.parametrize("scale", [0.0, 0.1])
def test_gradient_with_respect_to_waveform_is_finite(scale, waveforms):
    waveform = tf.constant(scale * waveforms)
    with tf.GradientTape() as tape:
        tape.watch(waveform)
        loss = tf.reduce_sum(audio.MFCC()(waveform) ** 2)
    gradient = tape.gradient(loss, waveform).numpy()
    assert np.all(np.isfinite(gradient))
    if scale:
        assert np.abs(gradient).max() > 0


def test_gradient_matches_finite_difference(waveforms):
    waveform = tf.constant(waveforms[:1])
    direction = np.random.default_rng(0).normal(size=waveform.shape).astype("float32")
    layer = audio.MFCC()
    with tf.GradientTape() as tape:
        tape.watch(waveform)
        loss = tf.reduce_sum(layer(waveform)[..., 1])
    directional = float(tf.reduce_sum(tape.gradient(loss, waveform) * direction))
    step = 1e-4

    def numpy_loss(sign):
        perturbed = waveforms[:1].astype("float64") + sign * step * direction
        return _numpy_mfcc(perturbed)[..., 1].sum()

    finite_difference = (numpy_loss(1) - numpy_loss(-1)) / (2 * step)
    np.testing.assert_allclose(directional, finite_difference, rtol=1e-2)


def test_config_round_trip_and_saving(tmp_path, waveforms):
    layer = audio.MFCC(num_coefficients=13, lower_edge_hertz=60.0, add_channel=True,
                       name="features")
    clone = audio.MFCC.from_config(layer.get_config())
    assert clone.get_config() == layer.get_config()
    model = keras.Sequential([keras.Input((16000,)), layer])
    path = tmp_path / "mfcc.keras"
    model.save(path)
    restored = keras.saving.load_model(path)
    np.testing.assert_allclose(restored(waveforms), model(waveforms), rtol=1e-6)
    assert restored.layers[0].num_coefficients == 13


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"frame_length": 0}, "frame_length"),
        ({"frame_step": 2.5}, "frame_step"),
        ({"num_coefficients": 41}, "num_coefficients"),
        ({"upper_edge_hertz": 9000.0}, "upper_edge_hertz"),
        ({"lower_edge_hertz": 5000.0}, "lower_edge_hertz"),
        ({"log_offset": 0.0}, "log_offset"),
    ],
)
def test_bad_arguments_raise(kwargs, match):
    with pytest.raises(ValueError, match=match):
        audio.MFCC(**kwargs)


def test_too_short_input_raises():
    with pytest.raises(ValueError, match="frame_length"):
        audio.MFCC().compute_output_shape((None, 100))
