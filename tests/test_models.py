"""Tests for keras_gradreg.models: shapes, names, parameter counts, training."""

import keras
import numpy as np
import pytest

from keras_gradreg import models

BUILDERS = {
    "mnist": (models.mnist_cnn, (28, 28, 1), 10),
    "cifar10": (models.cifar10_cnn, (32, 32, 3), 10),
    "speech": (models.speech_cnn, (49, 40, 1), 12),
}


def _conv_params(kernel, in_channels, filters):
    return kernel[0] * kernel[1] * in_channels * filters + filters


def _dense_params(inputs, units):
    return inputs * units + units


@pytest.mark.parametrize("name", sorted(BUILDERS))
def test_output_shape_and_logits(name):
    builder, shape, num_classes = BUILDERS[name]
    model = builder()
    x = np.random.default_rng(0).uniform(0, 1, size=(3, *shape)).astype("float32")
    logits = model(x).numpy()
    assert logits.shape == (3, num_classes)
    assert model.layers[-1].activation is keras.activations.linear
    assert not np.allclose(logits.sum(axis=1), 1.0, atol=1e-3)
    assert logits.min() < 0 or logits.max() > 1


@pytest.mark.parametrize(
    "name, expected",
    [
        ("mnist", ["conv1", "pool1", "conv2", "pool2", "flatten", "fc1", "fc2"]),
        ("cifar10", ["rescaling", "conv1", "pool1", "conv2", "pool2", "conv3",
                     "pool3", "flatten", "fc1", "fc2"]),
        ("speech", ["conv1", "pool1", "conv2", "flatten", "fc1"]),
    ],
)
def test_layer_names(name, expected):
    assert [layer.name for layer in BUILDERS[name][0]().layers] == expected


def test_mnist_parameter_count_by_hand():
    conv1 = 5 * 5 * 1 * 32 + 32
    conv2 = 5 * 5 * 32 * 64 + 64
    fc1 = (7 * 7 * 64) * 1024 + 1024
    fc2 = 1024 * 10 + 10
    model = models.mnist_cnn()
    names = ("conv1", "conv2", "fc1", "fc2")
    counts = [model.get_layer(name).count_params() for name in names]
    assert counts == [conv1, conv2, fc1, fc2]
    assert model.count_params() == conv1 + conv2 + fc1 + fc2 == 3_274_634


def test_cifar10_parameter_count_and_rescaling():
    model = models.cifar10_cnn()
    expected = (
        _conv_params((3, 3), 3, 64) + _conv_params((3, 3), 64, 128)
        + _conv_params((3, 3), 128, 256) + _dense_params(4 * 4 * 256, 256)
        + _dense_params(256, 10)
    )
    assert model.count_params() == expected
    assert model.get_layer("rescaling").scale == pytest.approx(1 / 255)
    convs = [layer for layer in model.layers if isinstance(layer, keras.layers.Conv2D)]
    assert len(convs) == 3


def test_speech_parameter_count_and_pooling():
    model = models.speech_cnn()
    assert model.get_layer("conv1").kernel_size == (20, 8)
    assert model.get_layer("conv2").kernel_size == (10, 4)
    assert model.get_layer("pool1").pool_size == (1, 3)
    expected = (
        _conv_params((20, 8), 1, 64) + _conv_params((10, 4), 64, 64)
        + _dense_params(49 * (40 // 3) * 64, 12)
    )
    assert model.count_params() == expected


@pytest.mark.parametrize("builder", [models.cifar10_cnn, models.speech_cnn])
def test_dropout_only_in_training(builder):
    model = builder(dropout=0.5)
    assert any(isinstance(layer, keras.layers.Dropout) for layer in model.layers)
    shape = model.input_shape[1:]
    x = np.random.default_rng(0).uniform(0, 255, size=(2, *shape)).astype("float32")
    np.testing.assert_allclose(model(x, training=False), model(x, training=False))
    assert not np.allclose(model(x, training=True), model(x, training=False))


def test_custom_shapes():
    model = models.mnist_cnn(input_shape=(32, 32, 3), num_classes=5)
    assert model.output_shape == (None, 5)
    assert models.speech_cnn(input_shape=(98, 13, 1)).output_shape == (None, 12)


def test_training_step_reduces_loss():
    rng = np.random.default_rng(0)
    x = rng.uniform(0, 1, size=(32, 28, 28, 1)).astype("float32")
    y = rng.integers(0, 10, size=32)
    model = models.mnist_cnn()
    loss_fn = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    model.compile(keras.optimizers.Adam(1e-3), loss_fn)
    before = float(loss_fn(y, model(x)))
    model.fit(x, y, batch_size=32, epochs=3, verbose=0)
    after = float(loss_fn(y, model(x)))
    assert after < before


@pytest.mark.parametrize(
    "kwargs, error",
    [
        ({"input_shape": (28, 28)}, ValueError),
        ({"input_shape": "28x28"}, TypeError),
        ({"num_classes": 1}, ValueError),
        ({"num_classes": 2.0}, TypeError),
    ],
)
def test_bad_arguments_raise(kwargs, error):
    with pytest.raises(error):
        models.mnist_cnn(**kwargs)


def test_bad_dropout_raises():
    with pytest.raises(ValueError, match="dropout"):
        models.speech_cnn(dropout=1.0)


@pytest.mark.parametrize("name", sorted(BUILDERS))
@pytest.mark.parametrize("activation", ["gelu", "swish", keras.activations.tanh])
def test_activation_replaces_every_relu(name, activation):
    builder = BUILDERS[name][0]
    kwargs = {"dropout": 0.3} if name != "mnist" else {}  # dropout layers too
    default = {layer.name: getattr(layer, "activation", None)
               for layer in builder(**kwargs).layers}
    relu_layers = {n for n, act in default.items() if act is keras.activations.relu}
    assert relu_layers, "the paper's network uses ReLU"
    model = builder(activation=activation, **kwargs)
    expected = keras.activations.get(activation)
    for layer in model.layers:
        act = getattr(layer, "activation", None)
        if layer.name in relu_layers:
            assert act is expected, layer.name
        else:
            assert act is default[layer.name], layer.name
    assert not any(getattr(layer, "activation", None) is keras.activations.relu
                   for layer in model.layers)


def test_unknown_activation_raises():
    with pytest.raises(ValueError, match="Unknown activation"):
        models.mnist_cnn(activation="no_such_activation")
