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
