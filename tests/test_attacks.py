"""Tests for keras_gradreg.attacks: geometry, analytic FGSM, batching and
compilation, argument checks, the registry, losses, random starts."""


import keras
import numpy as np
import pytest
import tensorflow as tf
from hypothesis import HealthCheck
from hypothesis import given
from hypothesis import settings
from hypothesis import strategies as st

from keras_gradreg import GradRegModel
from keras_gradreg import attacks
from keras_gradreg.attacks import _core

from _attacks import _data  # tests/ is on sys.path
from _attacks import _margin
from _attacks import _mlp

ATTACKS = {
    "fgsm": lambda m, x, y, eps, **kw: attacks.fgsm(m, x, y, eps, **kw),
    "bim": lambda m, x, y, eps, **kw: attacks.bim(m, x, y, eps, eps / 4, 6, **kw),
    "cw": lambda m, x, y, eps, **kw: attacks.cw_linf(
        m, x, y, eps, eps / 4, 6, **kw
    ),
    "pgd": lambda m, x, y, eps, **kw: attacks.pgd(
        m, x, y, eps, eps / 4, 6, restarts=2, seed=1, **kw
    ),
    "apgd_ce": lambda m, x, y, eps, **kw: attacks.apgd(
        m, x, y, eps, steps=8, seed=1, **kw
    ),
    "apgd_dlr": lambda m, x, y, eps, **kw: attacks.apgd(
        m, x, y, eps, steps=8, loss="dlr", seed=1, **kw
    ),
}
TOL = 1e-6


# Geometry ----------------------------------------------------------------


@settings(max_examples=8, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    attack=st.sampled_from(sorted(ATTACKS)),
    batch=st.integers(1, 5),
    features=st.integers(1, 6),
    classes=st.integers(3, 5),
    eps=st.floats(0.0, 0.6),
    clip=st.sampled_from([(0.0, 1.0), (None, None), (-0.5, None), (0.2, 0.9)]),
    seed=st.integers(0, 100),
)
def test_examples_stay_in_eps_ball_and_clip_range(
    attack, batch, features, classes, eps, clip, seed
):
    rng = np.random.default_rng(seed)
    low = 0.2 if clip == (0.2, 0.9) else 0.0
    high = 0.9 if clip == (0.2, 0.9) else 1.0
    x = rng.uniform(low, high, (batch, features)).astype("float32")
    y = rng.integers(0, classes, batch)
    model = _mlp(features, classes, seed=seed)
    if attack in ("bim", "cw", "pgd"):
        eps = max(eps, 1e-3)  # step_size = eps / 4 must be > 0.
    x_adv = ATTACKS[attack](
        model, x, y, eps, clip_min=clip[0], clip_max=clip[1]
    ).numpy()
    assert x_adv.shape == x.shape
    assert np.all(np.abs(x_adv - x) <= eps + TOL)
    if clip[0] is not None:
        assert x_adv.min() >= clip[0]
    if clip[1] is not None:
        assert x_adv.max() <= clip[1]


# FGSM against the analytic step -----------------------------------------


@pytest.mark.parametrize("clip", [(0.0, 1.0), (None, None)])
@pytest.mark.parametrize("targeted", [False, True])
def test_fgsm_on_linear_model_is_the_analytic_step(clip, targeted):
    model = keras.Sequential([keras.Input((6,)), keras.layers.Dense(4)])
    kernel, bias = [w.astype("float64") for w in model.get_weights()]
    x, y = _data(20, 6, 4)
    labels = (y + 1) % 4 if targeted else y
    logits = x.astype("float64") @ kernel + bias
    probs = np.exp(logits - logits.max(1, keepdims=True))
    probs /= probs.sum(1, keepdims=True)
    grad = (probs - np.eye(4)[labels]) @ kernel.T  # dCE/dx
    step = -np.sign(grad) if targeted else np.sign(grad)
    expected = x + 0.1 * step
    if clip[0] is not None:
        expected = np.clip(expected, *clip)
    x_adv = attacks.fgsm(
        model, x, y, 0.1, clip_min=clip[0], clip_max=clip[1],
        target=labels if targeted else None,
    )
    np.testing.assert_allclose(x_adv.numpy(), expected, atol=1e-6)


def test_softmax_ending_and_gradreg_models_are_attacked_through_logits():
    logits_model = _mlp(5, 3, seed=3)
    softmax_model = _mlp(5, 3, seed=3, softmax=True)
    softmax_model.set_weights(logits_model.get_weights())
    wrapped = GradRegModel(softmax_model, c=0.1)
    x, y = _data(10, 5, 3)
    # cw with confidence 50 follows the logit margin, whose gradient differs
    # from the gradient of a margin between probabilities.
    reference = attacks.cw_linf(logits_model, x, y, 0.2, 0.05, 4).numpy()
    for model in (softmax_model, wrapped):
        x_adv = attacks.cw_linf(model, x, y, 0.2, 0.05, 4).numpy()
        np.testing.assert_allclose(x_adv, reference, atol=1e-6)


# Inputs, batching, compilation -------------------------------------------


def test_labels_inputs_and_batching_variants_agree():
    model = _mlp(5, 3)
    x, y = _data(11, 5, 3)
    reference = attacks.bim(model, x, y, 0.1, 0.03, 5, batch_size=None)
    assert isinstance(reference, tf.Tensor) and reference.shape == x.shape
    variants = [
        attacks.bim(model, tf.constant(x), np.eye(3)[y], 0.1, 0.03, 5),
        attacks.bim(model, x, y.reshape(-1, 1), 0.1, 0.03, 5, batch_size=3),
    ]
    for x_adv in variants:
        np.testing.assert_array_equal(x_adv.numpy(), reference.numpy())


def test_y_none_attacks_the_models_own_predictions():
    model = _mlp(5, 3)
    x, _ = _data(8, 5, 3)
    predicted = np.argmax(model(x), axis=1)
    np.testing.assert_array_equal(
        attacks.fgsm(model, x, None, 0.1).numpy(),
        attacks.fgsm(model, x, predicted, 0.1).numpy(),
    )


def test_one_compiled_graph_per_settings_without_retracing():
    model = _mlp(5, 3)
    x, y = _data(10, 5, 3)
    for eps, steps, batch_size in [(0.1, 3, 4), (0.2, 5, 7), (0.05, 2, None)]:
        attacks.bim(model, x, y, eps, eps / 3, steps, batch_size=batch_size)
        attacks.apgd(model, x, y, eps, steps=steps, seed=0,
                     batch_size=batch_size)
    functions = _core.cached_functions(model)
    predict = {k: f for k, f in functions.items() if k[0] == "predict"}
    # The attacks' loops, and the forward pass that checks for probabilities.
    assert len(functions) == 3 and len(predict) == 1
    assert next(iter(predict.values())).experimental_get_tracing_count() == 1
    for function in (f for k, f in functions.items() if k[0] != "predict"):
        assert function.experimental_get_tracing_count() == 1
        graph = function.get_concrete_function().graph
        op_types = {op.type for op in graph.get_operations()}
        assert op_types & {"While", "StatelessWhile"}


def test_attacking_many_models_logs_no_retracing_warning(caplog):
    # Each model gets its own compiled function built from one closure;
    # TensorFlow must not count them as retraces of one function.
    x, y = _data(6, 5, 3)
    with caplog.at_level("WARNING"):
        for seed in range(7):
            model = _mlp(5, 3, seed=seed)
            attacks.bim(model, x, y, 0.1, 0.05, 2)
            attacks.apgd(model, x, y, 0.1, steps=2, seed=0)
            _core.predict_logits(model, x)
    assert "retracing" not in caplog.text


# Argument validation ------------------------------------------------------


@pytest.mark.parametrize(
    "call, error, match",
    [
        (lambda m, x, y: attacks.fgsm(m, x, y, -0.1), ValueError, "eps"),
        (lambda m, x, y: attacks.bim(m, x, y, 0.1, 0.0, 5), ValueError,
         "step_size"),
        (lambda m, x, y: attacks.bim(m, x, y, 0.1, 0.1, 0), ValueError, "steps"),
        (lambda m, x, y: attacks.bim(m, x, y, 0.1, 0.1, 2.5), TypeError, "steps"),
        (lambda m, x, y: attacks.pgd(m, x, y, 0.1, 0.1, 2, restarts=0),
         ValueError, "restarts"),
        (lambda m, x, y: attacks.fgsm(m, x, y, 0.1, clip_min=1.0, clip_max=0.0),
         ValueError, "clip_min must be < clip_max"),
        (lambda m, x, y: attacks.fgsm(m, x, y, 0.1, clip_max=0.5), ValueError,
         "above clip_max"),
        (lambda m, x, y: attacks.fgsm(m, (x * 255).astype("uint8"), y, 0.1),
         TypeError, "floating-point"),
        (lambda m, x, y: attacks.fgsm(m, x, y[:3], 0.1), ValueError, "entries"),
        (lambda m, x, y: attacks.pgd(m, x, y, 0.1, 0.1, 2, loss="dlr"),
         ValueError, "loss must be"),
        (lambda m, x, y: attacks.apgd(m, x, y, 0.1, loss="dlr", target=y),
         ValueError, "untargeted"),
        (lambda m, x, y: attacks.fgsm(m, x, y, float("nan")), ValueError, "eps"),
        (lambda m, x, y: attacks.fgsm(m, x, y, 0.1, batch_size=0), ValueError,
         "batch_size"),
    ],
)
def test_invalid_arguments_raise_clear_errors(call, error, match):
    model = _mlp(5, 3)
    x, y = _data(6, 5, 3)
    with pytest.raises(error, match=match):
        call(model, x, y)


# Registry and defaults ----------------------------------------------------


def test_registry_names_every_attack_once():
    assert attacks.ATTACKS == {
        "fgsm": attacks.fgsm, "bim": attacks.bim, "cw": attacks.cw_linf,
        "pgd": attacks.pgd, "apgd": attacks.apgd, "apgd_t": attacks.apgd_t,
        "fab_t": attacks.fab_t, "square": attacks.square,
        "autoattack": attacks.autoattack,
    }
    assert [n for n in attacks.ATTACKS
            if getattr(attacks.ATTACKS[n], "headline", False)] == ["autoattack"]
    assert set(attacks.PAPER_ATTACKS) <= set(attacks.ATTACKS)
    assert attacks.get("cw") is attacks.cw_linf
    assert [n for n in attacks.ATTACKS if attacks.is_single_step(n)] == ["fgsm"]
    with pytest.raises(ValueError, match="Unknown attack 'deepfool'"):
        attacks.get("deepfool")
    with pytest.raises(TypeError, match="callable"):
        attacks.get(3)


@pytest.mark.parametrize("name", ["bim", "cw", "pgd"])
def test_fixed_step_attacks_default_to_10_steps_of_2_5_eps(name):
    model = _mlp(5, 3)
    x, y = _data(6, 5, 3)
    attack = attacks.ATTACKS[name]
    seed = {"seed": 3} if name == "pgd" else {}
    by_default = attack(model, x, y, eps=0.1, **seed)
    explicit = attack(model, x, y, 0.1, 0.025, 10, **seed)  # positional
    np.testing.assert_array_equal(by_default, explicit)
    fewer = attack(model, x, y, eps=0.1, steps=4, **seed)  # step 0.0625
    np.testing.assert_array_equal(
        fewer, attack(model, x, y, 0.1, step_size=0.0625, steps=4, **seed))


def test_default_step_at_eps_zero_returns_the_inputs():
    model = _mlp(5, 3)
    x, y = _data(6, 5, 3)
    np.testing.assert_array_equal(attacks.bim(model, x, y, eps=0.0), x)


def test_dlr_needs_three_classes():
    model = _mlp(5, 2)
    x, y = _data(4, 5, 2)
    with pytest.raises(ValueError, match="at least 3 classes"):
        attacks.apgd(model, x, y, 0.1, steps=2, loss="dlr")


# Losses -------------------------------------------------------------------


def test_cw_loss_is_the_capped_margin():
    rng = np.random.default_rng(1)
    logits = rng.normal(0, 5, (50, 4)).astype("float32")
    labels = rng.integers(0, 4, 50)
    for confidence in (0.0, 2.0, 50.0):
        expected = np.minimum(_margin(logits, labels), confidence)
        got = attacks.cw_loss(logits, labels, confidence).numpy()
        np.testing.assert_allclose(got, expected, rtol=1e-6, atol=1e-6)
        assert got.max() <= confidence


def test_dlr_loss_matches_definition_and_is_scale_invariant():
    rng = np.random.default_rng(2)
    logits = rng.normal(0, 3, (40, 5)).astype("float32")
    labels = rng.integers(0, 5, 40)
    ordered = -np.sort(-logits.astype("float64"), axis=1)
    expected = _margin(logits, labels) / (ordered[:, 0] - ordered[:, 2] + 1e-12)
    got = attacks.dlr_loss(logits, labels).numpy()
    np.testing.assert_allclose(got, expected, rtol=1e-5)
    shifted = attacks.dlr_loss(3.0 * logits + 7.0, labels).numpy()
    np.testing.assert_allclose(shifted, got, rtol=1e-4, atol=1e-6)


# Randomness and restarts (synthetic) --------------------------------------


@pytest.mark.parametrize(
    "attack",
    [
        lambda m, x, y, seed: attacks.pgd(m, x, y, 0.2, 0.05, 3, seed=seed),
        lambda m, x, y, seed: attacks.apgd(m, x, y, 0.2, steps=3, seed=seed),
    ],
)
def test_seed_makes_random_starts_reproducible(attack):
    model = _mlp(5, 3)
    kernel, *rest = model.get_weights()
    kernel[-1] = 0.0  # The last feature has no gradient: it keeps its start.
    model.set_weights([kernel, *rest])
    x, y = _data(10, 5, 3)
    first, again = attack(model, x, y, 7), attack(model, x, y, 7)
    np.testing.assert_array_equal(first.numpy(), again.numpy())
    assert not np.array_equal(first.numpy(), attack(model, x, y, 8).numpy())


def test_pgd_keeps_the_strongest_restart_per_example():
    model = _mlp(5, 3, seed=4)
    x, y = _data(40, 5, 3, seed=4)
    singles = [attacks.pgd(model, x, y, 0.15, 0.04, 4, seed=5, restarts=r)
               for r in (1, 4)]
    fooled = [np.argmax(model(s), 1) != y for s in singles]
    ce = [tf.nn.sparse_softmax_cross_entropy_with_logits(y, model(s)).numpy()
          for s in singles]
    # Restart 0 is shared, so 4 restarts are never weaker, per example.
    assert np.all(fooled[1] >= fooled[0])
    both = fooled[0] == fooled[1]
    assert np.all(ce[1][both & ~fooled[0]] >= ce[0][both & ~fooled[0]] - 1e-5)


def test_apgd_returns_already_misclassified_examples_unchanged():
    model = _mlp(5, 3, seed=6)
    x, y = _data(30, 5, 3, seed=6)
    wrong = np.argmax(model(x), 1) != y
    assert wrong.any()
    x_adv = attacks.apgd(model, x, y, 0.2, steps=5, seed=0).numpy()
    np.testing.assert_array_equal(x_adv[wrong], x[wrong])
