"""Tests for AdversarialTrainingModel (PGD / FGSM-RS min-max training)."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_gradreg.adversarial_training import AdversarialTrainingModel


def _base(classes=3):
    return keras.Sequential(
        [keras.Input((4,)), keras.layers.Dense(8, activation="tanh"),
         keras.layers.Dense(classes)]
    )


def _data(n=32, seed=0):
    rng = np.random.default_rng(seed)
    return (rng.uniform(size=(n, 4)).astype("float32"),
            rng.integers(0, 3, size=n).astype("int32"))


def _ce():
    return keras.losses.SparseCategoricalCrossentropy(from_logits=True)


@pytest.mark.parametrize("random_start,steps", [(True, 1), (False, 3), (True, 5)])
def test_examples_stay_in_eps_ball_and_clip_range(random_start, steps):
    x, y = _data()
    model = AdversarialTrainingModel(
        _base(), eps=0.3, step_size=0.1, steps=steps, random_start=random_start
    )
    x_adv = model.adversarial_examples(x, y).numpy()
    assert np.abs(x_adv - x).max() <= 0.3 + 1e-6
    assert x_adv.min() >= 0.0 and x_adv.max() <= 1.0


def test_one_step_without_random_start_is_fgsm_on_a_linear_model():
    rng = np.random.default_rng(1)
    weights = rng.normal(size=(4, 3)).astype("float32")
    base = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3, use_bias=False)])
    base.layers[0].set_weights([weights])
    x, y = _data()
    model = AdversarialTrainingModel(
        base, eps=0.1, step_size=0.1, steps=1, random_start=False,
        clip_min=None, clip_max=None,
    )
    logits = x @ weights
    probs = np.exp(logits - logits.max(1, keepdims=True))
    probs /= probs.sum(1, keepdims=True)
    expected = x + 0.1 * np.sign((probs - np.eye(3)[y]) @ weights.T)
    np.testing.assert_allclose(model.adversarial_examples(x, y).numpy(), expected, atol=1e-6)


def test_train_step_equals_a_step_on_the_adversarial_batch():
    x, y = _data()
    keras.utils.set_random_seed(3)
    model = AdversarialTrainingModel(_base(), eps=0.2, step_size=0.05, steps=3,
                                     random_start=False)
    model.compile(keras.optimizers.SGD(0.5), _ce())
    before = [w.numpy() for w in model.base.trainable_weights]
    x_adv = model.adversarial_examples(x, y)
    with tf.GradientTape() as tape:
        loss = _ce()(y, model.base(x_adv))
    grads = tape.gradient(loss, model.base.trainable_weights)
    history = model.fit(x, y, batch_size=32, epochs=1, verbose=0)
    for old, grad, new in zip(before, grads, model.base.trainable_weights):
        np.testing.assert_allclose(new.numpy(), old - 0.5 * grad.numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(history.history["loss"][0], loss.numpy(), rtol=1e-5)


def test_adversarial_loss_exceeds_clean_loss():
    x, y = _data(n=64)
    model = AdversarialTrainingModel(_base(), eps=0.3, step_size=0.1, steps=5)
    model.compile("adam", _ce())
    clean = model.evaluate(x, y, verbose=0, return_dict=True)["loss"]
    adversarial = _ce()(y, model.base(model.adversarial_examples(x, y))).numpy()
    assert adversarial > clean


def test_save_load_and_resume(tmp_path):
    x, y = _data()
    model = AdversarialTrainingModel(_base(), eps=0.1, step_size=0.125, steps=1,
                                     loss="cw", seed=4)
    model.compile("adam", _ce(), metrics=["accuracy"])
    model.fit(x, y, epochs=1, verbose=0)
    model.save(tmp_path / "adv.keras")
    loaded = keras.models.load_model(tmp_path / "adv.keras")
    assert isinstance(loaded, AdversarialTrainingModel)
    assert (loaded.eps, loaded.steps, loaded.loss_name, loaded.seed) == (0.1, 1, "cw", 4)
    np.testing.assert_allclose(loaded.predict(x, verbose=0), model.predict(x, verbose=0))
    loaded.fit(x, y, epochs=1, verbose=0)


def test_backup_and_restore_resumes_to_same_weights(tmp_path):
    x, y = _data(n=32)
    args = dict(batch_size=8, epochs=3, shuffle=False, verbose=0)

    def make():
        m = AdversarialTrainingModel(_base(), eps=0.1, step_size=0.05, steps=2,
                                     random_start=False)
        m.compile("adam", _ce())
        return m

    keras.utils.set_random_seed(0)
    reference = make()
    reference.fit(x, y, **args)

    class Stop(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            if epoch == 0:
                raise RuntimeError("stop")

    keras.utils.set_random_seed(0)
    backup = keras.callbacks.BackupAndRestore(str(tmp_path / "b"))
    with pytest.raises(RuntimeError):
        make().fit(x, y, callbacks=[backup, Stop()], **args)
    resumed = make()
    resumed.fit(x, y, callbacks=[backup], **args)
    for a, b in zip(reference.weights, resumed.weights):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize(
    "kwargs,match",
    [(dict(eps=-0.1), "eps"), (dict(step_size=0.0), "step_size"),
     (dict(steps=0), "steps"), (dict(loss="dlr"), "Unknown loss"),
     (dict(clip_min=1.0, clip_max=0.0), "clip_min")],
)
def test_bad_arguments_raise(kwargs, match):
    settings = dict(eps=0.1, step_size=0.1, steps=1)
    settings.update(kwargs)
    with pytest.raises(ValueError, match=match):
        AdversarialTrainingModel(_base(), **settings)


# N-FGSM, the named recipes and the penalty at adversarial examples ----------


@pytest.mark.parametrize("steps", [1, 3])
def test_unprojected_examples_stay_in_clip_range_and_reach_beyond_eps(steps):
    x, y = _data(n=256)
    eps, step_size, radius = 0.1, 0.1, 0.2
    model = AdversarialTrainingModel(
        _base(), eps=eps, step_size=step_size, steps=steps, start_radius=radius,
        project=False, seed=0,
    )
    x_adv = model.adversarial_examples(x, y).numpy()
    distance = np.abs(x_adv - x)
    assert x_adv.min() >= 0.0 and x_adv.max() <= 1.0
    assert distance.max() <= radius + steps * step_size + 1e-6
    assert distance.max() > eps + 0.05  # not projected back to the eps-ball
    projected = AdversarialTrainingModel(
        _base(), eps=eps, step_size=step_size, steps=steps, start_radius=radius,
        seed=0,
    ).adversarial_examples(x, y).numpy()
    assert np.abs(projected - x).max() <= eps + 1e-6


def test_named_recipes_use_their_papers_settings():
    base = _base()
    fgsm_rs = AdversarialTrainingModel.fgsm_rs(base, 0.1)
    assert (fgsm_rs.step_size, fgsm_rs.steps, fgsm_rs.start_radius, fgsm_rs.project) == (
        pytest.approx(0.125), 1, 0.1, True)
    n_fgsm = AdversarialTrainingModel.n_fgsm(_base(), np.float32(0.1), c=0.03, norm="l1")
    assert (n_fgsm.step_size, n_fgsm.steps, n_fgsm.start_radius, n_fgsm.project) == (
        pytest.approx(0.1), 1, pytest.approx(0.2), False)
    assert n_fgsm.c == pytest.approx(0.03) and n_fgsm.norm.__name__ == "l1"
    pgd = AdversarialTrainingModel.pgd(_base(), 0.3, steps=np.int64(40))
    assert (pgd.step_size, pgd.steps, pgd.start_radius, pgd.project) == (
        pytest.approx(2.5 * 0.3 / 40), 40, 0.3, True)
    assert AdversarialTrainingModel.pgd(_base(), 0.3).steps == 7


def _l1_margin_penalty(base, x, y):
    """Independent nested tapes: per-example ||d margin / dx||_1."""
    with tf.GradientTape() as inner:
        inner.watch(x)
        logits = base(x)
        true = tf.gather(logits, y, batch_dims=1)
        wrong = tf.reduce_max(logits - 1e6 * tf.one_hot(y, 3), axis=1)
        margin = tf.reduce_sum(wrong - true)
    return tf.reduce_sum(tf.abs(inner.gradient(margin, x)), axis=1), logits


def test_penalty_at_adversarial_examples_matches_nested_tapes():
    x, y = _data()
    c, lr, step = 0.5, 0.1, 0.1
    base = _base()
    # Independent one-step FGSM (no random start, no eps projection).
    xt = tf.constant(x)
    with tf.GradientTape() as tape:
        tape.watch(xt)
        ce = tf.reduce_sum(tf.nn.sparse_softmax_cross_entropy_with_logits(y, base(xt)))
    x_adv = tf.clip_by_value(xt + step * tf.sign(tape.gradient(ce, xt)), 0.0, 1.0)
    weights = [w.numpy() for w in base.trainable_weights]
    with tf.GradientTape() as outer:
        penalties, logits = _l1_margin_penalty(base, x_adv, y)
        task = tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(y, logits))
        total = task + c * tf.reduce_mean(penalties)
    expected = outer.gradient(total, base.trainable_weights)
    model = AdversarialTrainingModel(
        base, eps=0.05, step_size=step, steps=1, random_start=False,
        project=False, c=c, norm="l1",
    )
    np.testing.assert_allclose(model.adversarial_examples(x, y).numpy(), x_adv.numpy(), atol=1e-6)
    model.compile(keras.optimizers.SGD(lr), _ce())
    history = model.fit(x, y, batch_size=len(x), epochs=1, verbose=0).history
    np.testing.assert_allclose(history["grad_loss"][0],
                               tf.reduce_mean(penalties).numpy(), rtol=1e-5)
    np.testing.assert_allclose(history["loss"][0], total.numpy(), rtol=1e-5)
    for old, new, grad in zip(weights, base.trainable_weights, expected):
        np.testing.assert_allclose(new.numpy(), old - lr * grad.numpy(), rtol=1e-4, atol=1e-6)


def test_cw_loss_is_capped_at_confidence_as_in_the_attacks():
    # A linear model; with confidence 0 an example already misclassified has
    # a capped (flat) loss and does not move, a correct one moves by step_size.
    base = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3)])
    x, y = _data(n=64)
    logits = base(x).numpy()
    model = AdversarialTrainingModel(
        base, eps=0.1, step_size=0.05, steps=1, random_start=False, loss="cw",
        confidence=0.0, clip_min=None, clip_max=None,
    )
    moved = np.abs(model.adversarial_examples(x, y).numpy() - x).max(axis=1)
    wrong = logits.argmax(1) != y
    assert wrong.any() and (~wrong).any()
    np.testing.assert_allclose(moved[wrong], 0.0)
    np.testing.assert_allclose(moved[~wrong], 0.05, rtol=1e-5)


def test_inputs_outside_the_clip_range_raise():
    x, y = _data()
    model = AdversarialTrainingModel(_base(), eps=0.1, step_size=0.1, steps=1)
    model.compile("sgd", _ce())
    with pytest.raises(Exception, match="above clip_max=1.0"):
        model.fit(x * 255.0, y, verbose=0)
    with pytest.raises(Exception, match="below clip_min=0.0"):
        model.fit(x - 2.0, y, verbose=0)


def test_numpy_scalars_are_valid_settings():
    model = AdversarialTrainingModel(
        _base(), eps=np.float32(0.1), step_size=np.float64(0.1), steps=np.int64(1),
        c=np.float32(0.1), fd_step=np.float32(0.01),
    )
    assert (model.steps, type(model.steps)) == (1, int)
    x, y = _data()
    model.compile("sgd", _ce())
    model.fit(x, y, verbose=0)


@pytest.mark.parametrize(
    "kwargs,match",
    [(dict(start_radius=-0.1), "start_radius"), (dict(confidence=float("nan")), "confidence"),
     (dict(eps=float("inf")), "eps"), (dict(steps=1.5), "steps"),
     (dict(c=-1.0), "c must be")],
)
def test_bad_new_arguments_raise(kwargs, match):
    settings = dict(eps=0.1, step_size=0.1, steps=1)
    settings.update(kwargs)
    with pytest.raises(ValueError, match=match):
        AdversarialTrainingModel(_base(), **settings)


def test_composed_recipe_saves_and_loads(tmp_path):
    x, y = _data()
    model = AdversarialTrainingModel(
        _base(), eps=0.1, step_size=0.1, steps=1, start_radius=0.2, project=False,
        c=0.03, norm="l1", regularizer="cross_entropy", confidence=20.0,
        penalty_fraction=0.5, seed=1,
    )
    model.compile("adam", _ce())
    model.fit(x, y, epochs=1, verbose=0)
    model.save(tmp_path / "composed.keras")
    loaded = keras.models.load_model(tmp_path / "composed.keras")
    assert isinstance(loaded, AdversarialTrainingModel)
    config = {key: value for key, value in loaded.get_config().items() if key != "base"}
    expected = {key: value for key, value in model.get_config().items() if key != "base"}
    assert config == expected
    assert (loaded.start_radius, loaded.project, loaded.c, loaded.norm.__name__,
            loaded.confidence, loaded.penalty_fraction) == (
        0.2, False, pytest.approx(0.03), "l1", 20.0, 0.5)
    np.testing.assert_allclose(loaded.predict(x, verbose=0), model.predict(x, verbose=0), rtol=1e-6)
    loaded.fit(x, y, epochs=1, verbose=0)


@pytest.mark.parametrize("recipe", ["n_fgsm", "fgsm_rs", "pgd"])
def test_recipes_at_eps_zero_train_on_the_batch_itself(recipe):
    x, y = _data()
    model = getattr(AdversarialTrainingModel, recipe)(_base(), eps=0)
    assert model.step_size == 0.0
    np.testing.assert_array_equal(model.adversarial_examples(x, y).numpy(), x)
    model.compile("adam", _ce())
    assert np.isfinite(model.fit(x, y, verbose=0).history["loss"][0])


@pytest.mark.parametrize("recipe", ["n_fgsm", "fgsm_rs", "pgd"])
def test_recipes_reject_an_eps_float32_cannot_hold(recipe):
    with pytest.raises(ValueError, match="eps=1e\\+39 is not finite in float32"):
        getattr(AdversarialTrainingModel, recipe)(_base(), eps=1e39)


def test_step_size_zero_needs_eps_zero():
    with pytest.raises(ValueError, match="step_size must be > 0.0"):
        AdversarialTrainingModel(_base(), eps=0.1, step_size=0.0, steps=1)
