"""Tests for APGD-T, FAB-T, Square and the AutoAttack ensemble."""


import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_gradreg import RobustnessReport
from keras_gradreg import attacks
from keras_gradreg import evaluation
from keras_gradreg.attacks.fab import project_l1
from keras_gradreg.attacks.fab import project_l2
from keras_gradreg.attacks.fab import project_linf
from keras_gradreg.cli import format_table

from _data import read_mnist  # tests/ is on sys.path

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


def _mlp(shape, classes, seed=0):
    init = keras.initializers.GlorotNormal(seed=seed)
    return keras.Sequential([
        keras.Input(shape),
        keras.layers.Flatten(),
        keras.layers.Dense(12, activation="tanh", kernel_initializer=init),
        keras.layers.Dense(classes, kernel_initializer=init),
    ])


def _linear(features, classes, seed=0):
    init = keras.initializers.GlorotNormal(seed=seed)
    return keras.Sequential([
        keras.Input((features,)),
        keras.layers.Dense(classes, kernel_initializer=init,
                           bias_initializer=init),
    ])


def _accuracy(model, x, y):
    return float(np.mean(np.argmax(np.asarray(model(x)), 1) == y))


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


def test_linf_box_projection_is_the_linear_program_optimum():
    optimize = pytest.importorskip("scipy.optimize")
    rng = np.random.default_rng(1)
    points = rng.uniform(0, 1, (6, 5))
    normal = rng.normal(size=(6, 5))
    offset = (normal * rng.uniform(0, 1, (6, 5))).sum(1)  # reachable planes
    steps = project_linf(tf.constant(points), tf.constant(normal),
                         tf.constant(offset), 0.0, 1.0).numpy()
    np.testing.assert_allclose((normal * (points + steps)).sum(1), offset,
                               atol=1e-9)
    assert np.all(points + steps >= -1e-12) and np.all(points + steps <= 1 + 1e-12)
    for row in range(6):  # variables (d, r): minimize r, |d_i| <= r.
        n = len(points[row])
        eye = np.eye(n)
        bound = np.vstack([np.hstack([eye, -np.ones((n, 1))]),
                           np.hstack([-eye, -np.ones((n, 1))])])
        result = optimize.linprog(
            np.r_[np.zeros(n), 1.0], A_ub=bound, b_ub=np.zeros(2 * n),
            A_eq=np.r_[normal[row], 0.0][None],
            b_eq=[offset[row] - normal[row] @ points[row]],
            bounds=[(-p, 1 - p) for p in points[row]] + [(0, None)],
        )
        assert np.abs(steps[row]).max() == pytest.approx(result.fun, abs=1e-7)


def test_l2_box_projection_is_the_quadratic_program_optimum():
    optimize = pytest.importorskip("scipy.optimize")
    rng = np.random.default_rng(2)
    points = rng.uniform(0, 1, (6, 5))
    points[:, 0] = 1.0  # on a face: the box binds where the normal pushes out
    normal = rng.normal(size=(6, 5))
    normal[:, 0] = np.abs(normal[:, 0]) + 1.0
    offset = (normal * rng.uniform(0, 1, (6, 5))).sum(1)
    steps = project_l2(tf.constant(points), tf.constant(normal),
                       tf.constant(offset), 0.0, 1.0).numpy()
    np.testing.assert_allclose((normal * (points + steps)).sum(1), offset,
                               atol=1e-9)
    for row in range(6):
        result = optimize.minimize(
            lambda d: 0.5 * d @ d, np.zeros(5), method="SLSQP",
            bounds=[(-p, 1 - p) for p in points[row]],
            constraints=[{"type": "eq", "fun": lambda d, row=row: normal[row]
                          @ (points[row] + d) - offset[row]}],
            options={"ftol": 1e-14},
        )
        np.testing.assert_allclose(steps[row], result.x, atol=1e-6)


def test_l1_box_projection_is_the_linear_program_optimum():
    optimize = pytest.importorskip("scipy.optimize")
    rng = np.random.default_rng(3)
    points = rng.uniform(0, 1, (6, 5))
    normal = rng.normal(size=(6, 5))
    offset = (normal * rng.uniform(0, 1, (6, 5))).sum(1)
    steps = project_l1(tf.constant(points), tf.constant(normal),
                       tf.constant(offset), 0.0, 1.0).numpy()
    np.testing.assert_allclose((normal * (points + steps)).sum(1), offset,
                               atol=1e-9)
    assert np.all(points + steps >= -1e-12) and np.all(points + steps <= 1 + 1e-12)
    for row in range(6):  # d = p - q with p, q >= 0: minimize sum(p + q).
        n = len(points[row])
        result = optimize.linprog(
            np.ones(2 * n), A_eq=np.r_[normal[row], -normal[row]][None],
            b_eq=[offset[row] - normal[row] @ points[row]],
            A_ub=np.vstack([np.hstack([np.eye(n), -np.eye(n)]),
                            np.hstack([-np.eye(n), np.eye(n)])]),
            b_ub=np.r_[1 - points[row], points[row]],
            bounds=[(0, None)] * (2 * n),
        )
        assert np.abs(steps[row]).sum() == pytest.approx(result.fun, abs=1e-7)


def test_projections_go_to_the_nearest_corner_of_a_box_that_misses_the_plane():
    points = tf.constant([[0.5, 0.5]], tf.float64)
    normal = tf.constant([[1.0, 1.0]], tf.float64)
    for project in (project_linf, project_l2, project_l1):
        steps = project(points, normal, tf.constant([5.0], tf.float64),
                        0.0, 1.0).numpy()
        np.testing.assert_allclose(steps, [[0.5, 0.5]])


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


# Registry, report and CLI ------------------------------------------------------


def test_registry_names_and_autoattack_headline_column(tmp_path):
    for name in ("apgd_t", "fab_t", "square", "autoattack"):
        assert attacks.ATTACKS[name] is getattr(attacks, name)
    assert evaluation.ATTACKS is attacks.ATTACKS
    model = _mlp((4,), 4)
    x = np.random.default_rng(0).uniform(0, 1, (8, 4)).astype("float32")
    y = np.argmax(model(x), 1)
    report = RobustnessReport(
        {"m": model},
        {"fgsm": "fgsm", "autoattack": ("autoattack", {"version": "fast",
                                                       "steps": 4})},
        [0.1], verbose=0,
    )
    assert list(report.attacks) == ["autoattack", "fgsm"]
    results = report.run((x, y))
    markdown = open(report.save(str(tmp_path))["md"]).read()
    header = next(line for line in markdown.splitlines() if "Natural" in line)
    assert header.index("autoattack") < header.index("fgsm")
    table = format_table({"clean": 1.0, "autoattack": {"0.1": 0.5},
                          "fgsm": {"0.1": 0.75}}, ("0.1",))
    assert [len(line) for line in table.splitlines()[1:]] == [18, 18, 18]
    assert 0 <= results.accuracy("m", "autoattack", 0.1) <= results.accuracy(
        "m", "fgsm", 0.1)


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


def test_report_in_l2_passes_its_norm_and_records_it(tmp_path):
    model = _mlp((6,), 5, seed=2)
    x = np.random.default_rng(1).uniform(0, 1, (16, 6)).astype("float32")
    y = np.argmax(model(x), 1)
    report = RobustnessReport(
        {"m": model},
        {"fgsm": "fgsm", "pgd": ("pgd", {"seed": 3}),
         "autoattack": ("autoattack", {"version": "fast", "steps": 4,
                                       "seed": 3})},
        [0.3], verbose=0, norm="l2",
    )
    results = report.run((x, y))
    assert results.norm == "l2" and results.settings["norm"] == "l2"
    assert results.settings["attacks"]["pgd"]["kwargs"]["norm"] == "l2"
    direct = attacks.pgd(model, x, y, 0.3, seed=3, norm="l2")
    assert results.accuracy("m", "pgd", 0.3) == _accuracy(model, direct, y)
    markdown = open(report.save(str(tmp_path))["md"]).read()
    assert "L2 attacks" in markdown and "L-inf" not in markdown
    assert evaluation.Results.load(str(tmp_path)).norm == "l2"
    with pytest.raises(ValueError, match=r"'cw' supports the norms \['linf'\]"):
        RobustnessReport({"m": model}, ["fgsm", "cw"], [0.3], norm="l2")
    with pytest.raises(ValueError, match="one threat model"):
        RobustnessReport({"m": model}, {"pgd": ("pgd", {"norm": "l1"})},
                         [0.3], norm="l2")
    linf = RobustnessReport({"m": model}, ["fgsm"], [0.1], verbose=0)
    assert linf.attacks["fgsm"][1] == {}  # L-inf passes no norm


def test_masking_checks_run_in_every_norm():
    """The checks read the report's attacks in its norm: Square's black-box
    check in L2 (inside AutoAttack), none in L1, where AutoAttack runs no
    Square."""
    model = _mlp((6,), 5, seed=2)
    x = np.random.default_rng(1).uniform(0, 1, (16, 6)).astype("float32")
    y = np.argmax(model(x), 1)
    spec = {"fgsm": "fgsm", "autoattack": ("autoattack", {
        "version": "standard", "steps": 4, "queries": 20, "seed": 0})}
    kinds = {}
    for norm, eps in (("l2", 0.3), ("l1", 1.0)):
        results = RobustnessReport({"m": model}, spec, [eps], verbose=0,
                                   norm=norm).run((x, y))
        kinds[norm] = {check["check"] for check in results.masking_checks}
        assert "iterative_at_least_fgsm" in kinds[norm]
        assert results.accuracy("m", "autoattack", eps) <= results.accuracy(
            "m", "fgsm", eps)
    assert "black_box_beats_white_box" in kinds["l2"]
    assert "black_box_beats_white_box" not in kinds["l1"]


# Agreement with IBM ART (large) ---------------------------------------------


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
