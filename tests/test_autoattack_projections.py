"""FAB's projections onto a hyperplane within the box (keras_gradreg.attacks
.fab) against scipy.optimize solving the same linear and quadratic
programs."""

import numpy as np
import pytest
import tensorflow as tf

from keras_gradreg.attacks.fab import project_l1
from keras_gradreg.attacks.fab import project_l2
from keras_gradreg.attacks.fab import project_linf


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
