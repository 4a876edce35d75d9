"""What the tests of the example experiments (test_examples*.py) share:
examples/_experiment.py and sweep_c.py imported as modules, and their runs on
tiny networks."""

import dataclasses
import pathlib
import sys

import keras

import keras_gradreg
from keras_gradreg import paper

EXAMPLES = pathlib.Path(__file__).resolve().parents[1] / "examples"
sys.path.insert(0, str(EXAMPLES))  # the scripts' own modules (_experiment)
import _experiment as experiment  # noqa: E402
from _scripts import load_script  # noqa: E402  (tests/ is on sys.path)

PAPER_MODELS = ("natural", "xent_reg", "logit_reg")


def _load_example(name: str):
    return load_script(EXAMPLES / f"{name}.py")


sweep_c = _load_example("sweep_c")


def _tiny_network(input_shape, num_classes, scale=1.0):
    """A network small enough for end-to-end runs in seconds."""
    def build():
        return keras.Sequential([
            keras.Input(input_shape),
            keras.layers.Rescaling(scale),
            keras.layers.Conv2D(4, 3, strides=2, activation="relu", name="conv1"),
            keras.layers.Flatten(),
            keras.layers.Dense(num_classes, name="fc2"),
        ])
    return build


TINY = {
    "mnist": _tiny_network((28, 28, 1), 10),
    "cifar10": _tiny_network((32, 32, 3), 10, scale=1 / 255),
    "speech_commands": _tiny_network((49, 40, 1), 12),
}


def _run(dataset: str, **values) -> keras_gradreg.Results:
    """Runs ``_experiment.run`` with a tiny network and the given Config
    values.

    The paper's networks are checked in test_models.py and in
    test_examples.py (test_examples_use_the_paper_networks); here they
    would cost minutes.
    """
    tiny = dataclasses.replace(paper.SETTINGS[dataset],
                               build_model=TINY[dataset])
    config = experiment.Config(dataset, **values)
    return experiment.run(config, tiny)


def _run_sweep(**values) -> dict:
    """Runs ``sweep_c.run`` with a tiny network and the given values."""
    tiny = dataclasses.replace(paper.SETTINGS[values["dataset"]],
                               build_model=TINY[values["dataset"]])
    return sweep_c.run(sweep_c.SweepConfig(**values), tiny)
