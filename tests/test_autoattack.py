"""Tests for APGD-T, FAB-T, Square and the AutoAttack ensemble: the eps-balls
and clip ranges, the targeted DLR loss, their strength against analytic
results and each other, and gradient masking broken by Square."""


import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_gradreg import RobustnessReport
from keras_gradreg import attacks

from _autoattack import _accuracy  # tests/ is on sys.path
from _autoattack import _mlp

FAST = dict(steps=8, queries=60)
NEW_ATTACKS = {
    "apgd_t": lambda m, x, y, eps, **kw: attacks.apgd_t(
        m, x, y, eps, steps=8, seed=1, **kw),
    "fab_t": lambda m, x, y, eps, **kw: attacks.fab_t(m, x, y, eps, steps=8, **kw),
    "square": lambda m, x, y, eps, **kw: attacks.square(
        m, x, y, eps, queries=60, seed=1, **kw),
    "autoattack": lambda m, x, y, eps, **kw: attacks.autoattack(
        m, x, y, eps, seed=1, verbose=0, **FAST, **kw),
    "autoattack_rand": lambda m, x, y, eps, **kw: attacks.autoattack(
        m, x, y, eps, "rand", seed=1, verbose=0, eot_iter=2, steps=4, **kw),
}


def _linear(features, classes, seed=0):
    init = keras.initializers.GlorotNormal(seed=seed)
    return keras.Sequential([
        keras.Input((features,)),
        keras.layers.Dense(classes, kernel_initializer=init,
                           bias_initializer=init),
    ])


# Geometry ------------------------------------------------------------------


_MODELS = {}


def _shared_mlp(shape):
    """One model per shape for all parameters: its graphs compile once."""
    if shape not in _MODELS:
        _MODELS[shape] = _mlp(shape, 5, seed=3)
    return _MODELS[shape]


@pytest.mark.parametrize("name, clip, shape", [
    (name, clip, (6,))
    for name in ("apgd_t", "fab_t", "square", "autoattack")
    for clip in [(0.0, 1.0), (None, None), (0.2, 0.9)]
] + [
    ("autoattack_rand", (0.2, 0.9), (6,)),
    ("square", (0.2, 0.9), (5, 5, 2)),
    ("fab_t", (0.2, 0.9), (5, 5, 2)),
])
def test_new_attacks_stay_in_eps_ball_and_clip_range(name, clip, shape):
    model = _shared_mlp(shape)
    rng = np.random.default_rng(3)
    x = rng.uniform(0.2, 0.9, (10,) + shape).astype("float32")
    y = rng.integers(0, 5, 10)
    eps = 0.15
    x_adv = np.asarray(NEW_ATTACKS[name](
        model, x, y, eps, clip_min=clip[0], clip_max=clip[1]
    ))
    assert x_adv.shape == x.shape
    assert np.all(np.abs(x_adv - x) <= eps + 1e-6)
    if clip[0] is not None:
        assert x_adv.min() >= clip[0] - 1e-7
        assert x_adv.max() <= clip[1] + 1e-7


def test_targeted_dlr_loss_matches_its_definition():
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(6, 5)).astype("float32")
    labels, targets = rng.integers(0, 5, 6), rng.integers(0, 5, 6)
    ranked = np.sort(logits.astype("float64"), axis=1)[:, ::-1]
    rows = np.arange(6)
    expected = -(logits[rows, labels] - logits[rows, targets]) / (
        ranked[:, 0] - (ranked[:, 2] + ranked[:, 3]) / 2 + 1e-12
    )
    got = attacks.targeted_dlr_loss(logits, labels, targets).numpy()
    np.testing.assert_allclose(got, expected, rtol=1e-5)
    np.testing.assert_allclose(  # shift and scale invariant
        attacks.targeted_dlr_loss(3 * logits + 7, labels, targets).numpy(),
        expected, rtol=1e-4,
    )
    with pytest.raises(ValueError, match="4 classes"):
        attacks.targeted_dlr_loss(logits[:, :3], labels % 3, targets % 3)


# Strength --------------------------------------------------------------------


@pytest.mark.parametrize("name", ["apgd_t", "fab_t", "square"])
def test_attacks_break_a_linear_model_at_large_eps(name):
    model = _linear(6, 5, seed=2)
    x = np.random.default_rng(2).uniform(0, 1, (16, 6)).astype("float32")
    y = np.argmax(model(x), 1)
    attack = {
        "apgd_t": lambda: attacks.apgd_t(model, x, y, 3.0, steps=20, seed=0,
                                         clip_min=None, clip_max=None),
        "fab_t": lambda: attacks.fab_t(model, x, y, 3.0, steps=20,
                                       clip_min=None, clip_max=None),
        "square": lambda: attacks.square(model, x, y, 3.0, queries=200, seed=0,
                                         clip_min=None, clip_max=None),
    }[name]
    assert _accuracy(model, attack(), y) == 0.0
    # ... but not at eps 0, where every attack returns x.
    assert _accuracy(model, {
        "apgd_t": attacks.apgd_t, "fab_t": attacks.fab_t,
        "square": attacks.square}[name](model, x, y, 0.0), y) == 1.0


@pytest.mark.parametrize("norm, dual, features", [
    ("linf", 1, 2), ("l2", 2, 3), ("l1", np.inf, 3)])
def test_fab_finds_the_analytic_minimal_perturbation_of_a_linear_model(
        norm, dual, features):
    """|margin| / ||w_y - w_t||_q, q the dual norm of the threat model."""
    model = _linear(features, 2, seed=4)
    x = np.random.default_rng(4).uniform(0, 1, (24, features)).astype("float32")
    y = np.argmax(model(x), 1)
    weights, bias = (np.asarray(v, "float64") for v in model.weights)
    logits = x.astype("float64") @ weights + bias
    rows = np.arange(len(x))
    distance = np.abs(logits[rows, y] - logits[rows, 1 - y]) / np.linalg.norm(
        weights[:, 1] - weights[:, 0], ord=dual)
    x_adv = attacks.fab_t(model, x, y, 100.0, steps=100, clip_min=None,
                          clip_max=None, norm=norm).numpy()
    found = _size(x_adv - x, norm)
    assert _accuracy(model, x_adv, y) == 0.0
    np.testing.assert_array_less(distance * (1 - 1e-4), found)
    np.testing.assert_array_less(found, distance * 1.01)
    # Counted at eps: broken just above the distance, untouched below it.
    x_below = attacks.fab_t(model, x, y, float(distance.min()) * 0.99,
                            steps=100, clip_min=None, clip_max=None,
                            norm=norm).numpy()
    np.testing.assert_array_equal(x_below, x)


def test_autoattack_is_never_weaker_than_its_parts_and_records_breakers():
    model = _mlp((8,), 5, seed=5)
    x = np.random.default_rng(5).uniform(0, 1, (40, 8)).astype("float32")
    y = np.argmax(model(x), 1)
    y[:4] = (y[:4] + 1) % 5  # four examples misclassified from the start
    eps = 0.08
    x_adv, broken_by = attacks.autoattack(
        model, x, y, eps, seed=7, verbose=0, return_breakers=True, **FAST
    )
    ensemble = _accuracy(model, x_adv, y)
    parts = {
        "apgd_ce": attacks.apgd(model, x, y, eps, steps=8, seed=7),
        "apgd_t": attacks.apgd_t(model, x, y, eps, steps=8, seed=7),
        "fab_t": attacks.fab_t(model, x, y, eps, steps=8),
        "square": attacks.square(model, x, y, eps, queries=60, seed=7),
    }
    for name, part in parts.items():
        assert ensemble <= _accuracy(model, part, y), name
    assert ensemble < _accuracy(model, x, y)
    still = np.argmax(model(x_adv), 1) == y
    np.testing.assert_array_equal(still, broken_by == "")
    assert set(broken_by[:4]) == {"clean"}
    assert set(broken_by) <= {"", "clean", "apgd_ce", "apgd_t", "fab_t", "square"}


@pytest.mark.parametrize("norm, eps", [("l2", 0.4), ("l1", 1.2)])
def test_autoattack_in_each_norm_is_never_weaker_than_its_parts(norm, eps):
    model = _mlp((8,), 5, seed=5)
    x = np.random.default_rng(6).uniform(0, 1, (40, 8)).astype("float32")
    y = np.argmax(model(x), 1)
    x_adv, broken_by = attacks.autoattack(
        model, x, y, eps, seed=7, verbose=0, return_breakers=True,
        norm=norm, **FAST)
    sizes = _size(x_adv - x, norm)
    assert np.all(sizes <= eps * (1 + 1e-5))
    ensemble = _accuracy(model, x_adv, y)
    restarts, targets = (5, 5) if norm == "l1" else (1, 9)
    runs = {
        "apgd_ce": lambda: attacks.apgd(model, x, y, eps, steps=8, seed=7,
                                        restarts=restarts, norm=norm),
        "apgd_t": lambda: attacks.apgd_t(model, x, y, eps, steps=8, seed=7,
                                         targets=targets, norm=norm),
        "fab_t": lambda: attacks.fab_t(model, x, y, eps, steps=8, norm=norm),
        "square": lambda: attacks.square(model, x, y, eps, queries=60,
                                         seed=7, norm=norm),
    }
    names = attacks.autoattack.parts(norm=norm)
    assert names[:2] == ("apgd_ce", "apgd_t")
    for name in names:
        assert ensemble <= _accuracy(model, runs[name](), y), name
    assert ensemble < _accuracy(model, x, y)
    assert set(broken_by) <= set(names) | {"", "clean"}


def _size(delta, norm):
    flat = np.asarray(delta, "float64").reshape(len(delta), -1)
    return {"linf": np.abs(flat).max(1), "l2": np.sqrt((flat ** 2).sum(1)),
            "l1": np.abs(flat).sum(1)}[norm]


def test_autoattack_progress_bar_is_silenced_by_verbose(capsys):
    model = _shared_mlp((6,))  # graphs already compiled by the tests above
    x = np.random.default_rng(0).uniform(0, 1, (6, 6)).astype("float32")
    attacks.autoattack(model, x, None, 0.1, "fast", seed=0, steps=2, verbose=0)
    assert capsys.readouterr().out == ""
    attacks.autoattack(model, x, None, 0.1, "fast", seed=0, steps=2, verbose=1)
    assert "robust_accuracy" in capsys.readouterr().out


class QuantizedLinear(keras.Model):
    """A linear model on inputs rounded to 1/4: its input gradient is 0."""

    def __init__(self, weights):
        super().__init__()
        self.kernel = tf.constant(weights)

    def call(self, x, training=False):
        return tf.matmul(tf.stop_gradient(tf.round(x * 4) / 4), self.kernel)


def test_masked_gradients_are_broken_by_square_and_flagged():
    rng = np.random.default_rng(6)
    masked = QuantizedLinear(rng.normal(size=(12, 4)).astype("float32"))
    plain = _linear(12, 4, seed=6)
    x = rng.uniform(0, 1, (48, 12)).astype("float32")
    y = np.argmax(masked(x), 1)
    with tf.GradientTape() as tape:
        inputs = tf.constant(x)
        tape.watch(inputs)
        total = tf.reduce_sum(masked(inputs))
    gradient = tape.gradient(total, inputs)
    assert gradient is None or not np.any(gradient.numpy())
    eps, options = 0.2, dict(seed=0, steps=8, queries=200)
    x_square = attacks.square(masked, x, y, eps, queries=200, seed=0)
    x_auto = attacks.autoattack(masked, x, y, eps, verbose=0, **options)
    assert _accuracy(masked, x_auto, y) <= _accuracy(masked, x_square, y)
    assert _accuracy(masked, x_square, y) < 0.5
    report = RobustnessReport(
        {"masked": masked, "plain": plain},
        {"apgd": ("apgd", {"steps": 8, "seed": 0}),
         "square": ("square", {"queries": 200, "seed": 0}),
         "autoattack": ("autoattack", options)},
        [eps], verbose=0,
    )
    results = report.run((x, y))
    checks = [c for c in results.masking_checks
              if c["check"] == "black_box_beats_white_box"]
    flagged = {c["model"] for c in checks if not c["passed"]}
    assert "masked" in flagged
    assert results.model_entry("masked")["black_box_only"]["0.2"] > 0.01
    assert any("Square (black-box" in w for w in results.warnings)
    shares = results.broken_by("masked", "autoattack", 0.2)
    assert shares["square"] > 0
    assert sum(shares.values()) == pytest.approx(
        1 - results.accuracy("masked", "autoattack", 0.2))
    breakers = results.breakers("masked", "autoattack", 0.2)
    assert np.mean(breakers == "square") == pytest.approx(shares["square"])
    # results.md: the share each part broke, every part of the version.
    lines = results.to_markdown().splitlines()
    header = next(line for line in lines if line.startswith("| Model | attack |"))
    row = next(line for line in lines
               if line.startswith("| masked | autoattack | 0.2 |"))
    cells = dict(zip([c.strip() for c in header.strip("|").split("|")][3:],
                     [float(c) for c in row.strip("|").split("|")[3:]]))
    assert list(cells) == ["clean", "apgd_ce", "apgd_t", "fab_t", "square",
                           "robust"]
    assert cells["square"] == pytest.approx(100 * shares["square"], abs=0.05)
    assert cells["robust"] == pytest.approx(
        100 * results.accuracy("masked", "autoattack", 0.2), abs=0.05)
    assert sum(cells.values()) == pytest.approx(100, abs=0.3)
    assert "black-box Square)" in lines[2]
    assert "`autoattack`: steps 8, queries 200; `apgd`: steps 8;" in "\n".join(lines)
    assert "No AutoAttack in this report" not in "\n".join(lines)


@pytest.mark.parametrize("norm, eps", [("l2", 0.5), ("l1", 1.5)])
@pytest.mark.parametrize("name, clip, shape", [
    ("fab_t", (0.0, 1.0), (6,)), ("fab_t", (None, None), (6,)),
    ("fab_t", (0.2, 0.9), (5, 5, 2)), ("autoattack", (0.2, 0.9), (6,)),
    ("square", (0.0, 1.0), (6,)), ("square", (None, None), (6,)),
    ("square", (0.2, 0.9), (5, 5, 2)), ("autoattack", (0.2, 0.9), (5, 5, 2)),
])
def test_new_attacks_stay_in_each_norms_ball_and_clip_range(
        name, clip, shape, norm, eps):
    if norm not in attacks.supported_norms(name):
        pytest.skip(f"{name} has no {norm} version")
    model = _shared_mlp(shape)
    rng = np.random.default_rng(4)
    x = rng.uniform(0.2, 0.9, (10,) + shape).astype("float32")
    y = rng.integers(0, 5, 10)
    x_adv = np.asarray(NEW_ATTACKS[name](
        model, x, y, eps, clip_min=clip[0], clip_max=clip[1], norm=norm))
    assert np.all(_size(x_adv - x, norm) <= eps * (1 + 1e-5))
    if clip[0] is not None:
        assert x_adv.min() >= clip[0] and x_adv.max() <= clip[1]


def test_square_in_l2_breaks_a_linear_model_beyond_its_distance():
    """Square's L2 search uses no gradient, yet breaks every example of a
    linear model at twice the analytic L2 distance to its boundary."""
    model = _linear(6, 2, seed=1)
    x = np.random.default_rng(1).uniform(0.3, 0.7, (16, 6)).astype("float32")
    y = np.argmax(model(x), 1)
    weights, bias = (np.asarray(v, "float64") for v in model.weights)
    logits = x.astype("float64") @ weights + bias
    rows = np.arange(len(x))
    distance = np.abs(logits[rows, 0] - logits[rows, 1]) / np.linalg.norm(
        weights[:, 1] - weights[:, 0])
    eps = 2 * float(distance.max())
    x_adv = attacks.square(model, x, y, eps, queries=300, seed=0,
                           clip_min=None, clip_max=None, norm="l2").numpy()
    assert _accuracy(model, x_adv, y) == 0.0
    assert np.all(_size(x_adv - x, "l2") <= eps * (1 + 1e-5))
    with pytest.raises(ValueError, match=r"square supports \['linf', 'l2'\]"):
        attacks.square(model, x, y, 1.0, norm="l1")
