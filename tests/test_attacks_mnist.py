"""keras_gradreg.attacks on a dense classifier trained on real MNIST (large):
the attacks' strength in order, C&W's confidence cap, seeded random starts."""

import keras
import numpy as np
import pytest

from keras_gradreg import attacks

from _attacks import _margin  # tests/ is on sys.path
from _data import read_mnist

_TRAINED = {}


@pytest.fixture
def mnist_model(mnist_dir):
    """A dense MNIST classifier trained for 1 epoch, shared by the tests."""
    if "model" not in _TRAINED:
        _TRAINED["model"] = _train_mnist(mnist_dir)
    return _TRAINED["model"]


def _train_mnist(mnist_dir):
    x, y = read_mnist(mnist_dir, "train", 5000)
    x = x.reshape(-1, 784)
    keras.utils.set_random_seed(0)
    model = keras.Sequential([
        keras.Input((784,)),
        keras.layers.Dense(128, activation="relu"),
        keras.layers.Dense(10),
    ])
    model.compile("adam", keras.losses.SparseCategoricalCrossentropy(
        from_logits=True), metrics=["accuracy"])
    model.fit(x[:4500], y[:4500], epochs=1, batch_size=64, verbose=0)
    return model, x[4500:], y[4500:]


def _accuracy(model, x_adv, y):
    return float(np.mean(np.argmax(model(x_adv), 1) == y))


@pytest.mark.large
def test_mnist_attack_strength_ordering(mnist_model):
    model, x, y = mnist_model
    eps = 0.08
    clean = _accuracy(model, x, y)
    fgsm = _accuracy(model, attacks.fgsm(model, x, y, eps), y)
    bim = _accuracy(model, attacks.bim(model, x, y, eps, eps / 4, 10), y)
    pgd = _accuracy(model, attacks.pgd(model, x, y, eps, eps / 8, 20, seed=0), y)
    apgd_ce = _accuracy(model, attacks.apgd(model, x, y, eps, 20, seed=0), y)
    apgd_dlr = _accuracy(
        model, attacks.apgd(model, x, y, eps, 20, loss="dlr", seed=0), y
    )
    assert clean > 0.8
    assert bim <= fgsm < clean
    assert apgd_ce <= pgd and apgd_dlr <= pgd
    restarts = [
        _accuracy(model, attacks.pgd(model, x, y, eps, eps / 4, 5, restarts=r,
                                     seed=3), y)
        for r in (1, 3)
    ]
    assert restarts[1] <= restarts[0]


@pytest.mark.large
def test_mnist_cw_respects_the_confidence_cap(mnist_model):
    model, x, y = mnist_model
    x, y = x[:200], y[:200]
    short = attacks.cw_linf(model, x, y, 0.2, 0.02, 5, confidence=0.0).numpy()
    long = attacks.cw_linf(model, x, y, 0.2, 0.02, 15, confidence=0.0).numpy()
    past_cap = _margin(model(short), y) > 0
    assert past_cap.sum() > 20
    # Past the cap the loss is flat: those examples never move again.
    np.testing.assert_array_equal(long[past_cap], short[past_cap])
    uncapped = attacks.cw_linf(model, x, y, 0.2, 0.02, 15, confidence=50.0)
    assert np.mean(_margin(model(uncapped), y)) > np.mean(
        _margin(model(long), y)
    ) + 1.0


@pytest.mark.large
def test_mnist_seeded_random_starts_are_reproducible(mnist_model):
    model, x, y = mnist_model
    runs = [attacks.pgd(model, x[:100], y[:100], 0.1, 0.02, 3, seed=s).numpy()
            for s in (11, 11, 12)]
    np.testing.assert_array_equal(runs[0], runs[1])
    assert not np.array_equal(runs[0], runs[2])
