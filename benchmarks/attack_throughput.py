"""Throughput of each attack on the paper's MNIST CNN, in examples per second.

The network of Madry et al. (2018) used by Yu et al. for MNIST: conv 32 5x5
same + ReLU, max-pool 2, conv 64 5x5 same + ReLU, max-pool 2, dense 1024 +
ReLU, dense 10 (logits). Random weights: throughput does not depend on them.
Each attack is traced once (warm-up), then timed over ``--repeats`` calls on
one batch; iterative attacks take ``--steps`` steps.

Usage:
    python benchmarks/attack_throughput.py --batch_size 256 --steps 10
"""

import time

from absl import app, flags
import keras
import numpy as np

from keras_gradreg import attacks

flags.DEFINE_integer("batch_size", 256, "Examples per batch.")
flags.DEFINE_integer("steps", 10, "Steps of the iterative attacks.")
flags.DEFINE_integer("repeats", 3, "Timed calls per attack.")
flags.DEFINE_float("eps", 0.3, "L-inf radius.")


def mnist_cnn() -> keras.Model:
    """The paper's MNIST network, returning logits."""
    return keras.Sequential([
        keras.Input((28, 28, 1)),
        keras.layers.Conv2D(32, 5, padding="same", activation="relu"),
        keras.layers.MaxPooling2D(2),
        keras.layers.Conv2D(64, 5, padding="same", activation="relu"),
        keras.layers.MaxPooling2D(2),
        keras.layers.Flatten(),
        keras.layers.Dense(1024, activation="relu"),
        keras.layers.Dense(10),
    ])


def main(argv):
    del argv
    f = flags.FLAGS
    keras.utils.set_random_seed(0)
    model = mnist_cnn()
    rng = np.random.default_rng(0)
    x = rng.uniform(0, 1, (f.batch_size, 28, 28, 1)).astype("float32")
    y = rng.integers(0, 10, f.batch_size)
    eps, steps, size = f.eps, f.steps, f.eps / 4
    runs = {
        "fgsm": lambda: attacks.fgsm(model, x, y, eps),
        "bim": lambda: attacks.bim(model, x, y, eps, size, steps),
        "cw_linf": lambda: attacks.cw_linf(model, x, y, eps, size, steps),
        "pgd": lambda: attacks.pgd(model, x, y, eps, size, steps, seed=0),
        "apgd_ce": lambda: attacks.apgd(model, x, y, eps, steps, seed=0),
        "apgd_dlr": lambda: attacks.apgd(model, x, y, eps, steps, "dlr", seed=0),
    }
    print(f"batch {f.batch_size}, {steps} steps, {f.repeats} timed calls")
    print("| attack | examples/s | time vs FGSM |")
    print("|---|---|---|")
    base = None
    for name, run in runs.items():
        run().numpy()  # trace and warm up
        start = time.perf_counter()
        for _ in range(f.repeats):
            run().numpy()
        seconds = (time.perf_counter() - start) / f.repeats
        base = base or seconds
        print(f"| {name} | {f.batch_size / seconds:.0f} | "
              f"{seconds / base:.1f}x |", flush=True)


if __name__ == "__main__":
    app.run(main)
