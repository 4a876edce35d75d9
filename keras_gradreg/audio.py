"""MFCC features computed in-graph with ``tf.signal``.

The paper's speech experiments (Section 4.3) feed 40-dimensional MFCC features
of one-second Google Speech Commands clips to the network and attack those
features. :class:`MFCC` is a differentiable Keras layer, so the same network
can also be attacked end to end on the waveform:

>>> import numpy as np
>>> features = MFCC()(np.zeros((2, 16000), "float32"))
>>> tuple(features.shape)
(2, 49, 40)
"""

from __future__ import annotations

import keras
import tensorflow as tf

from keras_gradreg import _checks

__all__ = ["MFCC", "mfcc"]

SAMPLE_RATE = 16000


def _checked_options(
    sample_rate,
    frame_length,
    frame_step,
    num_mel_bins,
    num_coefficients,
    lower_edge_hertz,
    upper_edge_hertz,
    log_offset,
) -> dict:
    """The signal options, checked: Python ints and floats."""
    options = {
        name: _checks.integer(name, value, 1)
        for name, value in (
            ("sample_rate", sample_rate),
            ("frame_length", frame_length),
            ("frame_step", frame_step),
            ("num_mel_bins", num_mel_bins),
            ("num_coefficients", num_coefficients),
        )
    }
    if options["num_coefficients"] > options["num_mel_bins"]:
        raise ValueError(
            f"num_coefficients ({num_coefficients}) cannot exceed "
            f"num_mel_bins ({num_mel_bins})."
        )
    lower = _checks.number("lower_edge_hertz", lower_edge_hertz, 0.0)
    upper = _checks.number("upper_edge_hertz", upper_edge_hertz, 0.0)
    if not lower < upper <= options["sample_rate"] / 2:
        raise ValueError(
            "Need 0 <= lower_edge_hertz < upper_edge_hertz <= sample_rate / 2, "
            f"got lower_edge_hertz={lower}, upper_edge_hertz={upper} at "
            f"sample_rate={sample_rate} Hz."
        )
    options.update(
        lower_edge_hertz=lower,
        upper_edge_hertz=upper,
        log_offset=_checks.number("log_offset", log_offset, 0.0, strict=True),
    )
    return options


def mfcc(
    waveform,
    sample_rate: int = SAMPLE_RATE,
    frame_length: int = 640,
    frame_step: int = 320,
    num_mel_bins: int = 40,
    num_coefficients: int = 40,
    lower_edge_hertz: float = 20.0,
    upper_edge_hertz: float = 4000.0,
    log_offset: float = 1e-6,
) -> tf.Tensor:
    """Computes MFCCs of waveforms shaped ``(..., samples)``.

    Periodic Hann-windowed STFT (FFT length: the next power of two of
    ``frame_length``), power spectrum, triangular mel filterbank
    (``tf.signal.linear_to_mel_weight_matrix``), ``log(mel + log_offset)``,
    then ``tf.signal.mfccs_from_log_mel_spectrograms`` (an orthonormal
    DCT-II). The power spectrum is computed as ``re^2 + im^2`` so that the
    gradient stays finite on silent (all-zero) frames.

    Args:
        waveform: Float tensor shaped ``(..., samples)``, values in [-1, 1].
        sample_rate: Sampling rate in Hz.
        frame_length: Window length in samples (640 = 40 ms at 16 kHz).
        frame_step: Hop in samples (320 = 20 ms at 16 kHz).
        num_mel_bins: Number of mel filters.
        num_coefficients: Number of cepstral coefficients kept.
        lower_edge_hertz: Lowest frequency of the filterbank.
        upper_edge_hertz: Highest frequency of the filterbank.
        log_offset: Added before the log to avoid ``log(0)``.

    Returns:
        A float32 tensor shaped ``(..., frames, num_coefficients)`` with
        ``frames = 1 + (samples - frame_length) // frame_step``.

    Raises:
        TypeError: For a frame setting that is not an integer, or an edge or
            offset that is not a number (also a ``ValueError``).
        ValueError: For a setting out of range, NaN or infinite, more
            coefficients than mel bins, or edges outside
            ``0 <= lower_edge_hertz < upper_edge_hertz <= sample_rate / 2``.

    Example:
        >>> tuple(mfcc(tf.zeros((16000,))).shape)
        (49, 40)
    """
    options = _checked_options(
        sample_rate,
        frame_length,
        frame_step,
        num_mel_bins,
        num_coefficients,
        lower_edge_hertz,
        upper_edge_hertz,
        log_offset,
    )
    waveform = tf.cast(waveform, tf.float32)
    stft = tf.signal.stft(
        waveform,
        frame_length=options["frame_length"],
        frame_step=options["frame_step"],
        window_fn=tf.signal.hann_window,
    )
    power = tf.square(tf.math.real(stft)) + tf.square(tf.math.imag(stft))
    mel_matrix = tf.signal.linear_to_mel_weight_matrix(
        num_mel_bins=options["num_mel_bins"],
        num_spectrogram_bins=stft.shape[-1],
        sample_rate=options["sample_rate"],
        lower_edge_hertz=options["lower_edge_hertz"],
        upper_edge_hertz=options["upper_edge_hertz"],
    )
    mel = tf.tensordot(power, mel_matrix, axes=1)
    log_mel = tf.math.log(mel + options["log_offset"])
    coefficients = tf.signal.mfccs_from_log_mel_spectrograms(log_mel)
    return coefficients[..., :options["num_coefficients"]]


@keras.saving.register_keras_serializable(package="keras_gradreg")
class MFCC(keras.layers.Layer):
    """Keras layer: waveform ``(batch, samples)`` -> MFCC features.

    Wraps :func:`mfcc`. It has no weights and is differentiable with respect
    to the waveform, so attacks can perturb either the MFCC features (as in
    Section 4.3 of Yu et al.) or, through this layer, the raw audio. The
    defaults give 49 frames of 40 coefficients for a 1 s clip at 16 kHz.

    Args:
        sample_rate: Sampling rate in Hz.
        frame_length: Window length in samples (640 = 40 ms at 16 kHz).
        frame_step: Hop in samples (320 = 20 ms at 16 kHz).
        num_mel_bins: Number of mel filters.
        num_coefficients: Number of cepstral coefficients kept.
        lower_edge_hertz: Lowest frequency of the filterbank (20 Hz, as in
            the TensorFlow speech commands tutorial).
        upper_edge_hertz: Highest frequency of the filterbank (4 kHz, ditto).
        log_offset: Added to the mel energies before the log.
        add_channel: If True, append a channel axis: ``(batch, frames,
            num_coefficients, 1)``, the input of a Conv2D network.
        **kwargs: Forwarded to ``keras.layers.Layer`` (e.g. ``name``).

    Raises:
        TypeError: For a frame setting that is not an integer, or an edge or
            offset that is not a number (also a ``ValueError``).
        ValueError: For a setting out of range, NaN or infinite, more
            coefficients than mel bins, or edges outside
            ``0 <= lower_edge_hertz < upper_edge_hertz <= sample_rate / 2``.

    Example:
        >>> import numpy as np
        >>> layer = MFCC(add_channel=True)
        >>> tuple(layer(np.zeros((3, 16000), "float32")).shape)
        (3, 49, 40, 1)
    """

    def __init__(
        self,
        sample_rate: int = SAMPLE_RATE,
        frame_length: int = 640,
        frame_step: int = 320,
        num_mel_bins: int = 40,
        num_coefficients: int = 40,
        lower_edge_hertz: float = 20.0,
        upper_edge_hertz: float = 4000.0,
        log_offset: float = 1e-6,
        add_channel: bool = False,
        **kwargs,
    ):
        super().__init__(**kwargs)
        options = _checked_options(
            sample_rate,
            frame_length,
            frame_step,
            num_mel_bins,
            num_coefficients,
            lower_edge_hertz,
            upper_edge_hertz,
            log_offset,
        )
        for name, value in options.items():
            setattr(self, name, value)
        self.add_channel = bool(add_channel)

    def _signal_options(self) -> dict:
        return {
            "sample_rate": self.sample_rate,
            "frame_length": self.frame_length,
            "frame_step": self.frame_step,
            "num_mel_bins": self.num_mel_bins,
            "num_coefficients": self.num_coefficients,
            "lower_edge_hertz": self.lower_edge_hertz,
            "upper_edge_hertz": self.upper_edge_hertz,
            "log_offset": self.log_offset,
        }

    def call(self, inputs):
        features = mfcc(inputs, **self._signal_options())
        return features[..., None] if self.add_channel else features

    def num_frames(self, num_samples: int) -> int:
        """Returns the number of frames for ``num_samples`` samples."""
        if num_samples < self.frame_length:
            raise ValueError(
                f"Need at least frame_length={self.frame_length} samples, "
                f"got {num_samples}."
            )
        return 1 + (num_samples - self.frame_length) // self.frame_step

    def compute_output_shape(self, input_shape):
        samples = input_shape[-1]
        frames = None if samples is None else self.num_frames(samples)
        shape = (*input_shape[:-1], frames, self.num_coefficients)
        return (*shape, 1) if self.add_channel else shape

    def get_config(self):
        config = super().get_config()
        config.update(self._signal_options())
        config["add_channel"] = self.add_channel
        return config
