"""Tests for keras_gradreg.attacks._norms: each norm's ball, step and start,
checked against independent float64 computations in numpy."""

import numpy as np
import pytest
import tensorflow as tf

from keras_gradreg.attacks import _norms


def _bisection_l1_box(v, eps, lower, upper):
    """Independent float64 projection onto {||d||_1 <= eps, lower <= d <=
    upper}: clip(soft_threshold(v, lam)) with lam found by bisection."""
    v = np.asarray(v, "float64")

    def at(lam):
        return np.clip(np.sign(v) * np.maximum(np.abs(v) - lam, 0.0),
                       lower, upper)

    if np.abs(at(0.0)).sum() <= eps:
        return at(0.0)
    low, high = 0.0, np.abs(v).max()
    for _ in range(200):
        middle = (low + high) / 2
        low, high = (middle, high) if np.abs(at(middle)).sum() > eps else (
            low, middle)
    return at(high)


def _random_case(rng, features):
    """A center in [0, 1] (a third of it on the box's faces) and a step."""
    x = rng.uniform(0, 1, features)
    faces = rng.random(features) < 0.33
    x[faces] = rng.choice([0.0, 1.0], faces.sum())
    v = rng.normal(0, rng.choice([0.05, 0.5, 2.0]), features)
    return x, v, rng.uniform(0.0, 4.0)


@pytest.mark.parametrize("dtype, atol", [("float64", 1e-9), ("float32", 2e-5)])
def test_l1_box_projection_equals_a_float64_bisection(dtype, atol):
    rng = np.random.default_rng(0)
    for features in (1, 2, 7, 60, 300):
        cases = [_random_case(rng, features) for _ in range(12)]
        x = np.stack([c[0] for c in cases])
        v = np.stack([c[1] for c in cases])
        eps = cases[0][2]
        got = _norms.l1_box_projection(
            tf.constant(v, dtype), eps, tf.constant(-x, dtype),
            tf.constant(1 - x, dtype)).numpy()
        for row in range(len(cases)):
            expected = _bisection_l1_box(v[row], eps, -x[row], 1 - x[row])
            np.testing.assert_allclose(got[row], expected, atol=atol)
            assert np.abs(got[row]).sum() <= eps * (1 + 1e-6) + 1e-12
            assert np.all(x[row] + got[row] >= -1e-7)
            assert np.all(x[row] + got[row] <= 1 + 1e-7)


def test_l1_box_projection_has_active_box_constraints_and_is_optimal():
    """A case where the box binds: the projection is also the minimizer of
    ||d - v||_2 found by scipy's constrained solver."""
    optimize = pytest.importorskip("scipy.optimize")
    x = np.array([0.9, 0.1, 0.5, 1.0, 0.0])
    v = np.array([0.8, -0.6, 0.3, 0.4, -0.2])
    eps = 0.35
    got = _norms.l1_box_projection(tf.constant([v]), eps, tf.constant([-x]),
                                   tf.constant([1 - x])).numpy()[0]
    # Features 0 and 1 stop at the box, feature 2 is soft-thresholded by
    # 0.15 and features 3 and 4 cannot move.
    np.testing.assert_allclose(got, [0.1, -0.1, 0.15, 0.0, 0.0], atol=1e-12)
    # Split d = p - q with p, q >= 0: a smooth problem for SLSQP.
    n = len(v)

    def objective(z):
        return 0.5 * np.sum((z[:n] - z[n:] - v) ** 2)

    constraints = [
        {"type": "ineq", "fun": lambda z: eps - z.sum()},
        {"type": "ineq", "fun": lambda z: (1 - x) - (z[:n] - z[n:])},
        {"type": "ineq", "fun": lambda z: (z[:n] - z[n:]) + x},
    ]
    solved = optimize.minimize(
        objective, np.zeros(2 * n), bounds=[(0, None)] * (2 * n),
        constraints=constraints, method="SLSQP", options={"ftol": 1e-14},
    )
    np.testing.assert_allclose(got, solved.x[:n] - solved.x[n:], atol=1e-6)
    assert np.abs(got).sum() == pytest.approx(eps)


def test_l1_box_projection_inside_the_ball_only_clips():
    v = tf.constant([[0.2, -0.3, 0.1]])
    got = _norms.l1_box_projection(v, 1.0, lower=-0.25, upper=0.15).numpy()
    np.testing.assert_allclose(got, [[0.15, -0.25, 0.1]], rtol=1e-6)


@pytest.mark.parametrize("norm", _norms.NORMS)
def test_project_lands_in_the_ball_and_the_box(norm):
    rng = np.random.default_rng(1)
    x = rng.uniform(0, 1, (20, 3, 4)).astype("float32")
    x_adv = x + rng.normal(0, 1.0, x.shape).astype("float32")
    eps = {"linf": 0.1, "l2": 0.8, "l1": 2.0}[norm]
    got = _norms.project(tf.constant(x_adv), tf.constant(x), eps, norm,
                         0.0, 1.0, True, True).numpy()
    sizes = _norms.size(got - x, norm).numpy()
    assert np.all(sizes <= eps * (1 + 1e-5))
    assert got.min() >= 0.0 and got.max() <= 1.0
    # A point already inside both stays where it is.
    inside = _norms.project(tf.constant(got), tf.constant(x), eps, norm,
                            0.0, 1.0, True, True).numpy()
    np.testing.assert_allclose(inside, got, atol=2e-6)


def test_l2_projection_rescales_then_clips():
    x = tf.constant([[0.5, 0.5, 0.5]])
    got = _norms.project(x + [[3.0, 4.0, 0.0]], x, 1.0, "l2", 0.0, 1.0,
                         True, True).numpy()
    np.testing.assert_allclose(got, [[1.0, 1.0, 0.5]], rtol=1e-6)
    unbounded = _norms.project(x + [[3.0, 4.0, 0.0]], x, 1.0, "l2", 0.0, 0.0,
                               False, False).numpy()
    np.testing.assert_allclose(unbounded, [[1.1, 1.3, 0.5]], rtol=1e-6)


@pytest.mark.parametrize("norm, dual", [("linf", 1), ("l2", 2)])
def test_direction_is_the_steepest_ascent_of_unit_norm(norm, dual):
    """<g, d> = ||g||_dual at the direction d, which has unit norm."""
    grads = np.random.default_rng(2).normal(size=(5, 9))
    d = _norms.direction(tf.constant(grads), norm).numpy()
    ord_ = np.inf if norm == "linf" else 2
    np.testing.assert_allclose(np.linalg.norm(d, ord=ord_, axis=1), 1.0)
    np.testing.assert_allclose((grads * d).sum(1),
                               np.linalg.norm(grads, ord=dual, axis=1))


def test_l1_direction_moves_the_largest_movable_coordinates():
    grads = np.array([[0.1, -5.0, 3.0, 0.2, -0.4, 1.0, 0.0, 0.0]])
    d = _norms.direction(tf.constant(grads), "l1", 0.25).numpy()
    np.testing.assert_allclose(d, [[0, -0.5, 0.5, 0, 0, 0, 0, 0]])
    assert np.abs(d).sum() == pytest.approx(1.0)
    blocked = np.array([[True, False, True, True, True, True, True, True]])
    d = _norms.direction(tf.constant(grads), "l1", 0.25,
                         tf.constant(blocked)).numpy()
    np.testing.assert_allclose(d, [[0, 0, 0.5, 0, 0, 0.5, 0, 0]])
    # Per-example shares, and a zero gradient gives a zero step.
    both = np.array([[3.0, 2.0, 1.0, 0.5], [0.0, 0.0, 0.0, 0.0]])
    d = _norms.direction(tf.constant(both), "l1", tf.constant([0.5, 1.0]))
    np.testing.assert_allclose(d.numpy(), [[0.5, 0.5, 0, 0], [0, 0, 0, 0]])


def test_movable_excludes_features_pushed_against_the_box():
    x = tf.constant([[0.0, 1.0, 0.5, 1.0]])
    grads = tf.constant([[-1.0, 1.0, 1.0, -1.0]])
    got = _norms.movable(x, grads, 0.0, 1.0, True, True).numpy()
    np.testing.assert_array_equal(got, [[False, False, True, True]])


@pytest.mark.parametrize("norm", _norms.NORMS)
def test_random_start_is_reproducible_and_in_the_ball(norm):
    x = tf.zeros([6, 10])
    seed = tf.constant([4, 2], tf.int64)
    start = _norms.random_start(x, 0.5, seed, norm)
    again = _norms.random_start(x, 0.5, seed, norm)
    np.testing.assert_array_equal(start.numpy(), again.numpy())
    sizes = _norms.size(start, norm).numpy()
    assert np.all(sizes <= 0.5 * (1 + 1e-5))
    if norm == "l2":  # on the sphere, as AutoAttack's start
        np.testing.assert_allclose(sizes, 0.5, rtol=1e-5)


def test_check_names_the_supported_norms():
    assert _norms.check("l1") == "l1"
    with pytest.raises(ValueError, match=r"fab_t supports \['linf', 'l2'\]"):
        _norms.check("l1", ("linf", "l2"), "fab_t")
    with pytest.raises(ValueError, match="the norms are"):
        _norms.check("l3")
