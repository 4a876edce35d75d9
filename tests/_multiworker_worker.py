"""One worker of the MultiWorkerMirroredStrategy test (run as a subprocess).

Usage: python _multiworker_worker.py OUT_FILE; TF_CONFIG names the cluster.
"""

import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from keras_gradreg import GradRegModel  # noqa: E402


def main(out_file: str) -> None:
    strategy = tf.distribute.MultiWorkerMirroredStrategy()
    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(64, 3)).astype("float32")
    y = rng.integers(0, 4, size=64).astype("int32")
    dataset = tf.data.Dataset.from_tensor_slices((x, y)).batch(16)
    with strategy.scope():
        base = keras.Sequential(
            [keras.Input((3,)), keras.layers.Dense(8, activation="tanh"),
             keras.layers.Dense(4)]
        )
        model = GradRegModel(base, c=0.5)
        model.compile(
            keras.optimizers.SGD(0.1),
            keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        )
    history = model.fit(dataset, epochs=2, verbose=0)
    np.savez(
        out_file,
        *[w.numpy() for w in base.trainable_weights],
        grad_loss=np.array(history.history["grad_loss"]),
    )


if __name__ == "__main__":
    main(sys.argv[1])
