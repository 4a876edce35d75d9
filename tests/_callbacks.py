"""What the callback tests (test_callbacks*.py) share: the tiny network and
data, a callback that records reference values each epoch, the test's own
FGSM, and event files read back with TensorBoard's reader."""

import keras
import numpy as np
import pytest
import tensorflow as tf

EPOCHS = 3
NUM_CLASSES = 3


def _base(nested: bool = False) -> keras.Model:
    """The tiny network; with ``nested``, conv1 sits inside a sub-model."""
    conv1 = keras.layers.Conv2D(4, 3, name="conv1")
    if nested:
        features = keras.Sequential(
            [keras.Input((8, 8, 1)), conv1, keras.layers.Flatten()],
            name="features",
        )
        inputs = keras.Input((8, 8, 1))
        hidden = keras.layers.Dense(8, name="fc1")(features(inputs))
        return keras.Model(inputs, keras.layers.Dense(3, name="fc2")(hidden))
    return keras.Sequential(
        [
            keras.Input((8, 8, 1)),
            conv1,
            keras.layers.Flatten(),
            keras.layers.Dense(8, name="fc1"),
            keras.layers.Dense(NUM_CLASSES, name="fc2"),
        ]
    )


def _data(count: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    x = rng.uniform(size=(count, 8, 8, 1)).astype("float32")
    y = (x.reshape(count, -1).mean(axis=1) * 100 % NUM_CLASSES).astype("int32")
    return x, y


def _compile(model):
    model.compile(
        keras.optimizers.SGD(0.1),
        keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    return model


def _xent(logits, labels):
    return tf.nn.softmax_cross_entropy_with_logits(
        tf.one_hot(labels, NUM_CLASSES), logits
    )


class _Recorder(keras.callbacks.Callback):
    """Records reference values at each epoch end with its own computation."""

    def __init__(self, compute):
        super().__init__()
        self.compute = compute
        self.records = []

    def on_epoch_end(self, epoch, logs=None):
        self.records.append(self.compute())


# Reading event files back with TensorBoard's EventAccumulator -------------


def _accumulate(run_dir):
    event_accumulator = pytest.importorskip(
        "tensorboard.backend.event_processing.event_accumulator"
    )
    guidance = {kind: 0 for kind in event_accumulator.DEFAULT_SIZE_GUIDANCE}
    return event_accumulator.EventAccumulator(
        run_dir, size_guidance=guidance
    ).Reload()


def _scalar(run_dir, tag):
    tensor_util = pytest.importorskip("tensorboard.util.tensor_util")
    events = _accumulate(run_dir).Tensors(tag)
    return [e.step for e in events], np.array(
        [float(tensor_util.make_ndarray(e.tensor_proto)) for e in events]
    )


def _fgsm_xent(model, x, y, eps, clip_min=0.0, clip_max=1.0):
    """The test's own FGSM on the cross-entropy (Goodfellow et al.)."""
    x = tf.convert_to_tensor(x)
    with tf.GradientTape() as tape:
        tape.watch(x)
        loss = tf.reduce_sum(_xent(model(x, training=False), y))
    x_adv = x + eps * tf.sign(tape.gradient(loss, x))
    return tf.clip_by_value(x_adv, clip_min, clip_max)
