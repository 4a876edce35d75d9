"""Agreement with IBM ART 1.20 (large, ``pip install .[art]``): our Square,
PGD, APGD and AutoAttack against ART's on a small MNIST CNN, in L-inf, L2
and L1."""

import keras
import numpy as np
import pytest

from keras_gradreg import attacks

from _autoattack import _accuracy  # tests/ is on sys.path
from _data import read_mnist


def _small_mnist_cnn(mnist_dir):
    """A small CNN trained 1 epoch on 3000 MNIST images; 150 test images."""
    x, y = read_mnist(mnist_dir, "train", 3000)
    x_test, y_test = read_mnist(mnist_dir, "t10k", 150)
    keras.utils.set_random_seed(0)
    model = keras.Sequential([
        keras.Input((28, 28, 1)),
        keras.layers.Conv2D(8, 5, strides=2, activation="relu"),
        keras.layers.Conv2D(16, 5, strides=2, activation="relu"),
        keras.layers.Flatten(),
        keras.layers.Dense(10),
    ])
    model.compile("adam", keras.losses.SparseCategoricalCrossentropy(
        from_logits=True))
    model.fit(x, y, epochs=1, batch_size=64, verbose=0)
    return model, x_test, y_test


@pytest.mark.large
def test_square_and_autoattack_agree_with_ibm_art(mnist_dir):
    art_attacks = pytest.importorskip("art.attacks.evasion")
    art_estimators = pytest.importorskip("art.estimators.classification")
    model, x, y = _small_mnist_cnn(mnist_dir)
    eps, queries = 0.15, 300
    classifier = art_estimators.TensorFlowV2Classifier(
        model=model, nb_classes=10, input_shape=(28, 28, 1),
        loss_object=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        clip_values=(0.0, 1.0),
    )
    art_square = art_attacks.SquareAttack(
        classifier, norm=np.inf, eps=eps, max_iter=queries, p_init=0.8,
        nb_restarts=1, batch_size=150, verbose=False,
    ).generate(x, y=y)
    ours = attacks.square(model, x, y, eps, queries=queries, seed=0)
    art_square_acc, square_acc = _accuracy(model, art_square, y), _accuracy(
        model, ours, y)
    assert abs(square_acc - art_square_acc) <= 0.06, (square_acc, art_square_acc)

    def art_apgd(loss_type):
        return art_attacks.AutoProjectedGradientDescent(
            classifier, norm=np.inf, eps=eps, eps_step=2 * eps, max_iter=50,
            nb_random_init=1, batch_size=150, loss_type=loss_type,
            verbose=False,
        ).generate(x, y=y)

    best_art = min(
        art_square_acc,
        _accuracy(model, art_apgd("cross_entropy"), y),
        _accuracy(model, art_apgd("difference_logits_ratio"), y),
    )
    ensemble = attacks.autoattack(model, x, y, eps, seed=0, steps=50,
                                  queries=queries, verbose=0)
    print(f"clean {_accuracy(model, x, y):.3f} square {square_acc:.3f} "
          f"ART square {art_square_acc:.3f} best ART {best_art:.3f} "
          f"autoattack {_accuracy(model, ensemble, y):.3f}")
    assert _accuracy(model, ensemble, y) <= best_art + 1e-9
    assert _accuracy(model, x, y) > 0.6


@pytest.mark.large
@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # ART's L2 Square divides by 0
def test_l2_and_l1_attacks_agree_with_ibm_art(mnist_dir):
    """On a small MNIST CNN: our L2 PGD, APGD-CE and Square within a few
    points of ART's (``norm=2``), and our L2 and L1 AutoAttack at or below
    the best of ART's attacks in that norm at the same eps."""
    art_attacks = pytest.importorskip("art.attacks.evasion")
    art_estimators = pytest.importorskip("art.estimators.classification")
    model, x, y = _small_mnist_cnn(mnist_dir)
    classifier = art_estimators.TensorFlowV2Classifier(
        model=model, nb_classes=10, input_shape=(28, 28, 1),
        loss_object=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        clip_values=(0.0, 1.0),
    )

    def art_pgd(norm, eps, steps=20):
        return _accuracy(model, art_attacks.ProjectedGradientDescent(
            classifier, norm=norm, eps=eps, eps_step=2.5 * eps / steps,
            max_iter=steps, num_random_init=1, batch_size=150, verbose=False,
        ).generate(x, y=y), y)

    def art_apgd(norm, eps, loss_type="cross_entropy"):
        return _accuracy(model, art_attacks.AutoProjectedGradientDescent(
            classifier, norm=norm, eps=eps, eps_step=2 * eps, max_iter=50,
            nb_random_init=1, batch_size=150, loss_type=loss_type,
            verbose=False,
        ).generate(x, y=y), y)

    eps, queries = 1.0, 300
    ours = {
        "pgd": _accuracy(model, attacks.pgd(model, x, y, eps, steps=20,
                                            seed=0, norm="l2"), y),
        "apgd": _accuracy(model, attacks.apgd(model, x, y, eps, steps=50,
                                              seed=0, norm="l2"), y),
        "square": _accuracy(model, attacks.square(
            model, x, y, eps, queries=queries, seed=0, norm="l2"), y),
    }
    art = {
        "pgd": art_pgd(2, eps),
        "apgd": art_apgd(2, eps),
        "square": _accuracy(model, art_attacks.SquareAttack(
            classifier, norm=2, eps=eps, max_iter=queries, p_init=0.8,
            nb_restarts=1, batch_size=150, verbose=False,
        ).generate(x, y=y), y),
    }
    print(f"clean {_accuracy(model, x, y):.3f} L2 ours {ours} ART {art}")
    for name in ours:
        assert abs(ours[name] - art[name]) <= 0.06, (name, ours, art)
    best_art = min(min(art.values()),
                   art_apgd(2, eps, "difference_logits_ratio"))
    ensemble = attacks.autoattack(model, x, y, eps, seed=0, steps=50,
                                  queries=queries, verbose=0, norm="l2")
    assert _accuracy(model, ensemble, y) <= best_art + 1e-9

    eps = 8.0
    best_art_l1 = min(art_pgd(1, eps, steps=50), art_apgd(1, eps))
    ensemble = attacks.autoattack(model, x, y, eps, seed=0, steps=50,
                                  verbose=0, norm="l1")
    print(f"L1 autoattack {_accuracy(model, ensemble, y):.3f} best ART "
          f"{best_art_l1:.3f}")
    assert _accuracy(model, ensemble, y) <= best_art_l1 + 1e-9
    assert _accuracy(model, x, y) > 0.6
