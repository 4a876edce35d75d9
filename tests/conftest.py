"""Shared pytest fixtures: quiet TensorFlow, seeds, the shared data folder,
and the command line tests' fixtures (from _cli.py)."""

import os
import pathlib

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import pytest  # noqa: E402
import tensorflow as tf  # noqa: E402

# Two logical CPU devices, so tf.distribute tests can mirror over them. This
# must happen before TensorFlow initializes its runtime.
_CPUS = tf.config.list_physical_devices("CPU")
tf.config.set_logical_device_configuration(
    _CPUS[0], [tf.config.LogicalDeviceConfiguration()] * 2
)

# The command line tests' fixtures (test_cli*.py), defined beside their helpers.
from _cli import files  # noqa: E402, F401  (tests/ is on sys.path)
from _cli import model_calls  # noqa: E402, F401

SHARED_DATA = pathlib.Path(__file__).resolve().parents[1].parent / "shared" / "data"
MNIST_DIR = SHARED_DATA / "mnist"
SPEECH_DIR = SHARED_DATA / "speech_commands_standin"


@pytest.fixture(autouse=True)
def _seed_and_clear():
    keras.utils.set_random_seed(0)
    # Scripts run in process (benchmarks) quiet TensorFlow's logger; a later
    # test that checks for a warning must still see it.
    level = tf.get_logger().level
    yield
    tf.get_logger().setLevel(level)
    # Without Python's full garbage collection after every test (Keras'
    # default): it took a third of the suite's time, and the automatic
    # collector still frees the cycles (1.3 GB peak for the tests then in
    # test_model.py and test_attacks.py, in one process).
    keras.backend.clear_session(free_memory=False)


@pytest.fixture
def mnist_dir():
    if not (MNIST_DIR / "train-images-idx3-ubyte.gz").exists():
        pytest.skip("real MNIST not found at ../shared/data/mnist")
    return MNIST_DIR


@pytest.fixture
def speech_dir():
    if not (SPEECH_DIR / "testing_list.txt").exists():
        pytest.skip("speech stand-in not found at ../shared/data")
    return SPEECH_DIR
