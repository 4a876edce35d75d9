"""Tests of the package ``keras_gradreg`` itself: its public names load on
first use, and saved models load after a bare ``import keras_gradreg``."""

import pathlib
import subprocess
import sys

import keras
import numpy as np
import pytest

import keras_gradreg
from keras_gradreg import AdversarialTrainingModel
from keras_gradreg import GradRegModel

REPO = pathlib.Path(__file__).resolve().parents[1]


def _python(code: str) -> str:
    done = subprocess.run([sys.executable, "-c", code], capture_output=True,
                          text=True, cwd=REPO, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout.strip().splitlines()[-1]


def test_every_public_name_resolves():
    for name in keras_gradreg.__all__:
        assert getattr(keras_gradreg, name) is not None, name
    assert set(keras_gradreg.__all__) <= set(dir(keras_gradreg))
    assert keras_gradreg.attacks.ATTACKS["fgsm"] is keras_gradreg.attacks.fgsm
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        keras_gradreg.nope  # noqa: B018


def test_import_does_not_import_tensorflow():
    assert _python(
        "import sys, keras_gradreg, keras_gradreg.cli\n"
        "print('tensorflow' in sys.modules, 'keras' in sys.modules)"
    ) == "False False"


@pytest.fixture(scope="module")
def saved_models(tmp_path_factory):
    folder = tmp_path_factory.mktemp("saved")
    base = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3)])
    paths = {}
    for model in (GradRegModel(base, c=0.25, norm="l1"),
                  AdversarialTrainingModel.n_fgsm(base, eps=0.1)):
        model.compile("adam", keras.losses.SparseCategoricalCrossentropy(
            from_logits=True))
        model.fit(np.zeros((4, 4), "float32"), np.zeros(4, "int32"),
                  verbose=0)
        paths[type(model).__name__] = folder / f"{type(model).__name__}.keras"
        model.save(paths[type(model).__name__])
    return paths


@pytest.mark.parametrize("imports", [
    "import keras_gradreg\nimport keras",
    "import keras\nimport keras_gradreg",
    # Keras imported by a lazily loaded submodule, and through TensorFlow.
    "import keras_gradreg\nkeras_gradreg.attacks\nimport keras",
    "import keras_gradreg\nimport tensorflow as tf\nkeras = tf.keras",
])
def test_saved_models_load_after_a_bare_import(saved_models, imports):
    """Keras finds keras-gradreg's registered classes however keras and
    keras_gradreg are imported: an import hook registers them once Keras is
    imported (at once if it already is)."""
    paths = [str(path) for path in saved_models.values()]
    found = _python(
        f"{imports}\n"
        f"models = [keras.models.load_model(p) for p in {paths!r}]\n"
        "print(*[type(m).__name__ for m in models], models[0].c,"
        " models[0].norm.__name__)")
    assert found == " ".join(saved_models) + " 0.25 l1"
