"""The attacks' L2 and L1 threat models: every attack stays in its norm's
ball and the clip range, the analytic L2 step and distances to a linear
boundary, the norms each attack supports, and sparse L1 steps."""

import keras
import numpy as np
import pytest

from keras_gradreg import attacks

from _attacks import _data  # tests/ is on sys.path
from _attacks import _mlp

NORM_ATTACKS = {
    "fgsm": lambda m, x, y, eps, **kw: attacks.fgsm(m, x, y, eps, **kw),
    "bim": lambda m, x, y, eps, **kw: attacks.bim(m, x, y, eps, eps / 3, 6, **kw),
    "pgd": lambda m, x, y, eps, **kw: attacks.pgd(
        m, x, y, eps, eps / 3, 6, restarts=2, seed=1, **kw),
    "apgd_ce": lambda m, x, y, eps, **kw: attacks.apgd(
        m, x, y, eps, steps=10, seed=1, **kw),
    "apgd_dlr": lambda m, x, y, eps, **kw: attacks.apgd(
        m, x, y, eps, steps=10, loss="dlr", seed=1, **kw),
    "apgd_t": lambda m, x, y, eps, **kw: attacks.apgd_t(
        m, x, y, eps, steps=10, targets=2, seed=1, **kw),
}
NORM_EPS = {"l2": 0.6, "l1": 1.5}
_NORM_MODELS = {}


def _norm_model(shape):
    if shape not in _NORM_MODELS:
        init = keras.initializers.GlorotNormal(seed=4)
        _NORM_MODELS[shape] = keras.Sequential([
            keras.Input(shape), keras.layers.Flatten(),
            keras.layers.Dense(10, activation="tanh", kernel_initializer=init),
            keras.layers.Dense(4, kernel_initializer=init),
        ])
    return _NORM_MODELS[shape]


def _size(delta, norm):
    flat = np.asarray(delta, "float64").reshape(len(delta), -1)
    return {"linf": np.abs(flat).max(1), "l2": np.sqrt((flat ** 2).sum(1)),
            "l1": np.abs(flat).sum(1)}[norm]


@pytest.mark.parametrize("norm", ["l2", "l1"])
@pytest.mark.parametrize("name", sorted(NORM_ATTACKS))
@pytest.mark.parametrize("clip, shape", [
    ((0.0, 1.0), (8,)), ((None, None), (8,)), ((0.2, 0.9), (4, 4, 2)),
])
def test_every_norm_keeps_examples_in_its_ball_and_the_clip_range(
        norm, name, clip, shape):
    rng = np.random.default_rng(5)
    x = rng.uniform(0.2, 0.9, (12,) + shape).astype("float32")
    x[:3].reshape(3, -1)[:, :2] = 0.2 if clip[0] == 0.2 else 0.9  # on a face
    y = rng.integers(0, 4, 12)
    eps = NORM_EPS[norm]
    x_adv = np.asarray(NORM_ATTACKS[name](
        _norm_model(shape), x, y, eps, clip_min=clip[0], clip_max=clip[1],
        norm=norm))
    assert x_adv.shape == x.shape
    assert np.all(_size(x_adv - x, norm) <= eps * (1 + 1e-5))
    if clip[0] is not None:
        assert x_adv.min() >= clip[0] and x_adv.max() <= clip[1]


def _linear_two_class(features=6, seed=0):
    rng = np.random.default_rng(seed)
    weights = rng.normal(size=(features, 2)).astype("float32")
    model = keras.Sequential([keras.Input((features,)),
                              keras.layers.Dense(2, use_bias=False)])
    model.layers[0].set_weights([weights])
    x = rng.uniform(0.3, 0.7, (10, features)).astype("float32")
    logits = x @ weights
    y = np.argmax(logits, 1)
    return model, x, y, weights, logits


def test_fgm_on_a_linear_model_is_the_analytic_l2_step():
    model, x, y, weights, _ = _linear_two_class()
    sign = np.where(y == 0, 1.0, -1.0)[:, None]  # d CE / dx ~ w_other - w_true
    direction = sign * (weights[:, 1] - weights[:, 0])[None, :]
    expected = x + 0.2 * direction / np.linalg.norm(direction, axis=1,
                                                    keepdims=True)
    got = attacks.fgsm(model, x, y, 0.2, clip_min=None, clip_max=None,
                       norm="l2").numpy()
    np.testing.assert_allclose(got, expected, atol=1e-5)


@pytest.mark.parametrize("name", ["pgd", "apgd_ce"])
@pytest.mark.parametrize("norm, dual", [("l2", 2), ("l1", np.inf)])
def test_attacks_reach_the_analytic_distance_to_a_linear_boundary(
        name, norm, dual):
    """The smallest perturbation in norm p that flips a linear two-class
    model is |margin| / ||w_1 - w_0||_q (q the dual norm): just beyond it
    the attack breaks every example, just inside it none can break.

    In L1 that perturbation moves one feature. L1-APGD's steps spread over
    two thirds of its best point's non-zero features, rounded up: from two
    features on it keeps two, so it gets 1.5 times the distance."""
    beyond = 1.5 if (name, norm) == ("apgd_ce", "l1") else 1.05
    model, x, y, weights, logits = _linear_two_class()
    gap = np.abs(logits[:, 1] - logits[:, 0])
    distance = gap / np.linalg.norm(weights[:, 1] - weights[:, 0], ord=dual)
    attack = {
        "pgd": lambda eps: attacks.pgd(model, x, y, eps, eps / 4, 20,
                                       seed=0, clip_min=None, clip_max=None,
                                       norm=norm),
        "apgd_ce": lambda eps: attacks.apgd(model, x, y, eps, steps=40,
                                            seed=0, clip_min=None,
                                            clip_max=None, norm=norm),
    }[name]
    for example in range(3):
        eps = float(distance[example])
        inside = attack(beyond * eps).numpy()[example:example + 1]
        assert np.argmax(model(inside), 1)[0] != y[example], example
        within = attack(0.95 * eps).numpy()[example:example + 1]
        assert np.argmax(model(within), 1)[0] == y[example], example


def test_norms_of_the_registry_and_unsupported_norms_raise():
    assert attacks.NORMS == ("linf", "l2", "l1")
    for name in ("fgsm", "bim", "pgd", "apgd", "apgd_t"):
        assert attacks.supported_norms(name) == attacks.NORMS
    assert attacks.supported_norms("cw") == ("linf",)
    assert attacks.supported_norms(lambda m, x, y, eps: x) == ("linf",)
    x, y = _data(4, 5, 3)
    model = _mlp(5, 3)
    with pytest.raises(ValueError, match=r"pgd supports \['linf', 'l2', 'l1'\]"):
        attacks.pgd(model, x, y, 0.1, norm="l0")
    with pytest.raises(ValueError, match="decreasing_eps"):
        attacks.apgd(model, x, y, 0.1, norm="l2", decreasing_eps=True)
    with pytest.raises(ValueError, match="sparsity"):
        attacks.bim(model, x, y, 0.1, norm="l1", sparsity=0.0)


def test_l1_steps_are_sparse_and_skip_features_at_the_box():
    model, x, y, weights, _ = _linear_two_class(features=40)
    # d CE / dx has the sign of w_other - w_true: put half of the features
    # on the face it pushes against.
    ascent = np.where(y == 0, 1.0, -1.0)[:, None] * (
        weights[:, 1] - weights[:, 0])[None, :]
    x[:, :20] = (ascent[:, :20] > 0).astype("float32")
    x_adv = attacks.fgsm(model, x, y, 2.0, norm="l1").numpy()
    moved = np.abs(x_adv - x) > 0
    assert np.all(moved.sum(1) == 2)  # ceil(5% of 40 features)
    assert not moved[:, :20].any()
    assert np.all(np.abs(x_adv - x).sum(1) <= 2.0 + 1e-5)
    assert x_adv.min() >= 0.0 and x_adv.max() <= 1.0
