"""The paper's three networks, each returning logits (no softmax).

Layers are named ``conv1``, ``conv2``, ..., ``fc1``, ``fc2``, ... so that
callbacks can find them (Fig. 3 of Yu et al. plots the weights of CONV1 and
FC-2). Train them with ``from_logits=True`` losses, e.g.

>>> model = mnist_cnn()
>>> model.compile(
...     "adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
"""

from __future__ import annotations

from typing import Callable, Sequence, Union

import keras

from keras_gradreg import _checks

__all__ = ["mnist_cnn", "cifar10_cnn", "speech_cnn"]


def _check_arguments(input_shape, num_classes, dropout=0.0,
                     activation="relu") -> tuple:
    """``(shape, num_classes, dropout, activation)``, checked and resolved."""
    try:
        shape = tuple(int(size) for size in input_shape)
    except (TypeError, ValueError) as error:
        raise TypeError(
            f"`input_shape` must be a sequence of ints, got {input_shape!r}."
        ) from error
    if len(shape) != 3 or min(shape) <= 0:
        raise ValueError(
            "`input_shape` must be (height, width, channels) with positive "
            f"sizes, got {input_shape!r}."
        )
    num_classes = _checks.integer("num_classes", num_classes, 2)
    dropout = _checks.number("dropout", dropout, 0.0, maximum=1.0,
                             strict_maximum=True)
    return shape, num_classes, dropout, _check_activation(activation)


def _check_activation(activation):
    """Resolves an activation name or callable; raises ValueError if unknown."""
    try:
        return keras.activations.get(activation)
    except (ValueError, TypeError) as error:
        raise ValueError(
            f"Unknown activation {activation!r}: use a Keras activation name "
            "(e.g. 'relu', 'gelu', 'swish') or a callable."
        ) from error


def mnist_cnn(
    input_shape: Sequence[int] = (28, 28, 1),
    num_classes: int = 10,
    activation: Union[str, Callable] = "relu",
) -> keras.Sequential:
    """The 4-layer MNIST network of Madry et al. (2017) used in Section 4.1.

    conv1: 32 filters 5x5, same padding, ReLU; 2x2 max-pool; conv2: 64
    filters 5x5, same, ReLU; 2x2 max-pool; fc1: dense 1024, ReLU; fc2: dense
    ``num_classes`` logits. 3,274,634 parameters for MNIST. ``activation``
    replaces every ReLU.

    Why a smooth activation for a gradient penalty: the penalty's weight
    gradient (double backpropagation, ``GradRegModel``) goes through the
    activation's second derivative, and ReLU's is zero, so with ReLU the
    penalty reaches the weights only through which units are active. GELU
    (or swish) is smooth. Measured on MNIST (docs/RESULTS.md, the full
    robustness-per-cost grid: all training images, 3 epochs): GELU lifted
    the L1 Logit-reg penalty, most where ReLU could not fit it (c 0.1:
    88.9 -> 98.5% clean, 39.7 -> 53.4% at eps 0.2), and the penalty at
    N-FGSM's examples at every eps; but it cost N-FGSM alone 18.7 points at
    eps 0.2, and the squared L2 penalties 9.9-15.4. Softplus collapsed to
    one class at c 0.03.

    Args:
        input_shape: ``(height, width, channels)``, images in [0, 1].
        num_classes: Number of output logits.
        activation: The hidden layers' activation, a Keras name or
            callable; ``"relu"`` (the paper's) by default, ``"gelu"``
            recommended with the L1 gradient penalty (alone or at
            adversarial examples), not for adversarial training alone.

    Returns:
        An uncompiled ``keras.Sequential`` returning logits.

    Raises:
        ValueError: For a bad shape, ``num_classes < 2`` or an unknown
            activation.
        TypeError: For a ``num_classes`` that is not an integer (also a
            ``ValueError``).

    Example:
        >>> mnist_cnn().output_shape
        (None, 10)
        >>> mnist_cnn(activation="gelu").get_layer("fc1").activation.__name__
        'gelu'
    """
    shape, num_classes, _, act = _check_arguments(
        input_shape, num_classes, activation=activation)
    layers = keras.layers
    return keras.Sequential(
        [
            keras.Input(shape),
            layers.Conv2D(32, 5, padding="same", activation=act, name="conv1"),
            layers.MaxPooling2D(2, name="pool1"),
            layers.Conv2D(64, 5, padding="same", activation=act, name="conv2"),
            layers.MaxPooling2D(2, name="pool2"),
            layers.Flatten(name="flatten"),
            layers.Dense(1024, activation=act, name="fc1"),
            layers.Dense(num_classes, name="fc2"),
        ],
        name="mnist_cnn",
    )


def cifar10_cnn(
    input_shape: Sequence[int] = (32, 32, 3),
    num_classes: int = 10,
    dropout: float = 0.0,
    activation: Union[str, Callable] = "relu",
) -> keras.Sequential:
    """A five-layer CIFAR-10 network (3 conv + 2 dense) as in Section 4.2.

    The paper gives only the layer counts; we chose: ``rescaling``
    (x / 255: inputs are on the 0-255 pixel scale the paper's eps 3, 6, 9
    assume); conv1: 64 filters 3x3, same, ReLU; 2x2 max-pool; conv2: 128
    filters 3x3; 2x2 max-pool; conv3: 256 filters 3x3; 2x2 max-pool; fc1:
    dense 256, ReLU; optional dropout; fc2: dense ``num_classes`` logits.
    1,422,218 parameters for CIFAR-10. ``activation`` replaces every ReLU
    (see :func:`mnist_cnn` for why a smooth one suits a gradient penalty).

    Args:
        input_shape: ``(height, width, channels)``, pixels in [0, 255].
        num_classes: Number of output logits.
        dropout: Dropout rate before ``fc1`` and ``fc2`` (0 disables it).
        activation: The hidden layers' activation, a Keras name or
            callable; ``"relu"`` (the paper's) by default.

    Returns:
        An uncompiled ``keras.Sequential`` returning logits.

    Raises:
        ValueError: For a bad shape, ``num_classes < 2``, dropout rate or
            activation.
        TypeError: For a ``num_classes`` that is not an integer (also a
            ``ValueError``).

    Example:
        >>> cifar10_cnn().output_shape
        (None, 10)
    """
    shape, num_classes, dropout, act = _check_arguments(
        input_shape, num_classes, dropout, activation)
    layers = keras.layers
    conv_blocks = []
    for index, filters in enumerate((64, 128, 256), start=1):
        conv_blocks += [
            layers.Conv2D(filters, 3, padding="same", activation=act,
                          name=f"conv{index}"),
            layers.MaxPooling2D(2, name=f"pool{index}"),
        ]
    head = [layers.Flatten(name="flatten")]
    head += [layers.Dropout(dropout, name="dropout1")] if dropout else []
    head += [layers.Dense(256, activation=act, name="fc1")]
    head += [layers.Dropout(dropout, name="dropout2")] if dropout else []
    head += [layers.Dense(num_classes, name="fc2")]
    return keras.Sequential(
        [keras.Input(shape), layers.Rescaling(1.0 / 255, name="rescaling")]
        + conv_blocks
        + head,
        name="cifar10_cnn",
    )


def speech_cnn(
    input_shape: Sequence[int] = (49, 40, 1),
    num_classes: int = 12,
    dropout: float = 0.0,
    activation: Union[str, Callable] = "relu",
) -> keras.Sequential:
    """The 3-layer keyword-spotting network (2 conv + 1 dense) of Section 4.3.

    After cnn-trad-fpool3 of Sainath & Parada (2015), as in the TensorFlow
    speech commands tutorial: conv1: 64 filters 20x8 (time x frequency),
    same padding, ReLU; max-pool (1, 3) in frequency; conv2: 64 filters 10x4,
    same, ReLU; optional dropout; fc1: dense ``num_classes`` logits. The
    default input is the MFCC of a 1 s clip from
    :class:`keras_gradreg.audio.MFCC` (49 frames x 40 coefficients x 1);
    663,436 parameters for it. ``activation`` replaces every ReLU (see
    :func:`mnist_cnn` for why a smooth one suits a gradient penalty).

    Args:
        input_shape: ``(frames, coefficients, 1)``.
        num_classes: Number of output logits.
        dropout: Dropout rate after each convolution (0 disables it).
        activation: The hidden layers' activation, a Keras name or
            callable; ``"relu"`` (the paper's) by default.

    Returns:
        An uncompiled ``keras.Sequential`` returning logits.

    Raises:
        ValueError: For a bad shape, ``num_classes < 2``, dropout rate or
            activation.
        TypeError: For a ``num_classes`` that is not an integer (also a
            ``ValueError``).

    Example:
        >>> speech_cnn().output_shape
        (None, 12)
    """
    shape, num_classes, dropout, act = _check_arguments(
        input_shape, num_classes, dropout, activation)
    layers = keras.layers
    stack = [
        keras.Input(shape),
        layers.Conv2D(64, (20, 8), padding="same", activation=act, name="conv1"),
    ]
    stack += [layers.Dropout(dropout, name="dropout1")] if dropout else []
    stack += [
        layers.MaxPooling2D((1, 3), name="pool1"),
        layers.Conv2D(64, (10, 4), padding="same", activation=act, name="conv2"),
    ]
    stack += [layers.Dropout(dropout, name="dropout2")] if dropout else []
    stack += [layers.Flatten(name="flatten"), layers.Dense(num_classes, name="fc1")]
    return keras.Sequential(stack, name="speech_cnn")
