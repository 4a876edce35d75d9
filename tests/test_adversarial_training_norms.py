"""Tests for AdversarialTrainingModel's training attack in L2 and L1."""

import keras
import numpy as np
import pytest

from keras_gradreg import attacks
from keras_gradreg.adversarial_training import AdversarialTrainingModel


def _base(classes=3, features=6):
    init = keras.initializers.GlorotNormal(seed=0)
    return keras.Sequential([
        keras.Input((features,)),
        keras.layers.Dense(8, activation="tanh", kernel_initializer=init),
        keras.layers.Dense(classes, kernel_initializer=init),
    ])


def _data(n=32, features=6, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.uniform(size=(n, features)).astype("float32")
    x[:4, :2] = 1.0  # some features on the box's faces
    return x, rng.integers(0, 3, size=n).astype("int32")


def _ce():
    return keras.losses.SparseCategoricalCrossentropy(from_logits=True)


def _size(delta, norm):
    flat = np.asarray(delta, "float64").reshape(len(delta), -1)
    return {"l2": np.sqrt((flat ** 2).sum(1)), "l1": np.abs(flat).sum(1)}[norm]


@pytest.mark.parametrize("norm, eps", [("l2", 0.5), ("l1", 1.0)])
@pytest.mark.parametrize("recipe", ["pgd", "fgsm_rs"])
def test_projected_recipes_stay_in_the_norms_ball_and_clip_range(
        recipe, norm, eps):
    x, y = _data()
    model = getattr(AdversarialTrainingModel, recipe)(
        _base(), eps, attack_norm=norm, seed=2)
    x_adv = model.adversarial_examples(x, y).numpy()
    assert np.all(_size(x_adv - x, norm) <= eps * (1 + 1e-5))
    assert x_adv.min() >= 0.0 and x_adv.max() <= 1.0
    assert np.all(_size(x_adv - x, norm) > 0)


@pytest.mark.parametrize("norm", ["l2", "l1"])
def test_n_fgsm_reaches_at_most_noise_plus_step_in_the_norm(norm):
    x, y = _data()
    model = AdversarialTrainingModel.n_fgsm(_base(), 0.5, attack_norm=norm,
                                            seed=3)
    x_adv = model.adversarial_examples(x, y).numpy()
    sizes = _size(x_adv - x, norm)
    assert np.all(sizes <= (2 * 0.5 + 0.5) * (1 + 1e-5))  # triangle inequality
    assert sizes.max() > 0.5  # unprojected: beyond eps
    assert x_adv.min() >= 0.0 and x_adv.max() <= 1.0


@pytest.mark.parametrize("norm", ["l2", "l1"])
def test_one_step_without_random_start_is_the_attacks_fgm(norm):
    x, y = _data()
    base = _base()
    model = AdversarialTrainingModel(base, eps=0.4, step_size=0.4, steps=1,
                                     random_start=False, attack_norm=norm)
    expected = attacks.fgsm(base, x, y, 0.4, norm=norm).numpy()
    np.testing.assert_allclose(model.adversarial_examples(x, y).numpy(),
                               expected, atol=1e-6)


def test_l2_step_on_a_linear_model_is_the_analytic_fgm_step():
    rng = np.random.default_rng(1)
    weights = rng.normal(size=(6, 3)).astype("float32")
    base = keras.Sequential([keras.Input((6,)),
                             keras.layers.Dense(3, use_bias=False)])
    base.layers[0].set_weights([weights])
    x, y = _data()
    model = AdversarialTrainingModel(base, eps=0.3, step_size=0.3, steps=1,
                                     random_start=False, clip_min=None,
                                     clip_max=None, attack_norm="l2")
    logits = x @ weights
    probs = np.exp(logits - logits.max(1, keepdims=True))
    probs /= probs.sum(1, keepdims=True)
    gradient = (probs - np.eye(3)[y]) @ weights.T
    expected = x + 0.3 * gradient / np.linalg.norm(gradient, axis=1,
                                                   keepdims=True)
    np.testing.assert_allclose(model.adversarial_examples(x, y).numpy(),
                               expected, atol=1e-5)


def test_attack_norm_trains_saves_and_loads(tmp_path):
    x, y = _data()
    model = AdversarialTrainingModel.pgd(_base(), 1.0, steps=3,
                                         attack_norm="l1", c=0.01,
                                         norm="linf", seed=1)
    model.compile("adam", _ce())
    history = model.fit(x, y, epochs=1, verbose=0)
    assert history.history["loss"][0] > 0
    assert model.get_config()["attack_norm"] == "l1"
    model.save(tmp_path / "l1.keras")
    loaded = keras.models.load_model(tmp_path / "l1.keras")
    assert (loaded.attack_norm, loaded.norm.__name__) == ("l1", "linf")
    config = {k: v for k, v in loaded.get_config().items() if k != "base"}
    expected = {k: v for k, v in model.get_config().items() if k != "base"}
    assert config == expected
    default = AdversarialTrainingModel.n_fgsm(_base(), 0.1)
    assert default.get_config()["attack_norm"] == "linf"


def test_unknown_attack_norm_raises():
    with pytest.raises(ValueError, match="Unsupported norm 'l3'"):
        AdversarialTrainingModel(_base(), 0.1, 0.1, 1, attack_norm="l3")
