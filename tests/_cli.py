"""What the command line tests (test_cli*.py) share: a tiny saved model with
matching and broken data files (the ``files`` fixture), the argv of
``evaluate`` and ``finetune`` on them, the check that a command fails with one
clean error line, and a count of the model calls (the ``model_calls``
fixture). tests/conftest.py makes the two fixtures visible to the tests."""

import json
import os
import pathlib

import keras
import numpy as np
import pytest

from keras_gradreg import cli

SHAPE = (6, 6, 1)
CLASSES = 3
EPS = ("0.05", "0.10")
KEYS = ("0.05", "0.1")  # the results' keys of EPS
ATTACK_FLAGS = ["--eps", ",".join(EPS), "--step_size", "0.02", "--steps", "5",
                "--clip_min", "0", "--clip_max", "1"]
REPO = pathlib.Path(__file__).resolve().parents[1]


def _network() -> keras.Sequential:
    return keras.Sequential([
        keras.Input(SHAPE), keras.layers.Flatten(),
        keras.layers.Dense(CLASSES, name="head"),
    ])


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """A tiny saved model, matching npz data and a few broken inputs."""
    folder = tmp_path_factory.mktemp("cli")
    keras.utils.set_random_seed(0)
    _network().save(folder / "model.keras")
    rng = np.random.default_rng(0)
    x = rng.uniform(size=(24,) + SHAPE).astype("float32")
    np.savez(folder / "data.npz", x=x, y=rng.integers(0, CLASSES, 24))
    np.savez(folder / "wide.npz", x=rng.uniform(size=(4, 5, 5, 1)),
             y=np.zeros(4, "int64"))
    np.savez(folder / "no_y.npz", x=x)
    (folder / "garbage.keras").write_bytes(b"not a zip archive")
    (folder / "text.keras").write_text("a text file renamed .keras\n")
    (folder / "text.h5").write_text("a text file renamed .h5\n")
    (folder / "garbage.npz").write_bytes(b"not an npz archive")
    y = rng.integers(0, CLASSES, 24).astype("float32")
    y[3] = 0.6
    np.savez(folder / "float_labels.npz", x=x, y=y)
    soft = np.full((24, CLASSES), 1 / CLASSES, "float32")
    np.savez(folder / "soft_labels.npz", x=x, y=soft)
    np.savez(folder / "one_hot_wide.npz", x=x,
             y=np.eye(CLASSES + 1, dtype="float32")[np.arange(24) % CLASSES])
    np.savez(folder / "pixels.npz", x=255 * x, y=np.zeros(24, "int64"))
    broken = x.copy()
    broken[5, 0, 0, 0] = np.nan
    np.savez(folder / "nan_inputs.npz", x=broken, y=np.zeros(24, "int64"))
    np.save(folder / "plain.npy", x)
    os.replace(folder / "plain.npy", folder / "plain.npz")
    return folder


def _evaluate_argv(files, out, *extra):
    return ["evaluate", str(files / "model.keras"), "--dataset",
            f"npz:{files / 'data.npz'}", "--attacks", "fgsm,pgd",
            "--out", str(out), *ATTACK_FLAGS, *extra]


def _fails(argv, capsys, status=2) -> str:
    """Runs main, checks one clean error line and the status; returns it."""
    with pytest.raises(SystemExit) as raised:
        cli.main([str(a) for a in argv])
    assert raised.value.code == status
    lines = [line for line in capsys.readouterr().err.splitlines() if line]
    assert len(lines) == 1, lines
    assert lines[0].startswith("keras-gradreg: error: ")
    return lines[0]


def _table(out) -> dict:
    """The command's own table: the "evaluate" section of results.json."""
    results = json.loads((out / "results.json").read_text())
    return results["sections"][cli.EVALUATE_SECTION]["data"]


def _edit(argv, files, edits):
    """Replaces (or, for None, drops) flag values in ``argv``."""
    argv = list(argv)
    for flag, value in zip(edits[::2], edits[1::2]):
        if flag == "--model":
            argv[1] = str(files / value)
            continue
        if value is not None and value.startswith("npz:"):
            value = f"npz:{files / value[4:]}"
        index = argv.index(flag)
        if value is None:
            del argv[index:index + 2]
        else:
            argv[index + 1] = value
    return argv


@pytest.fixture
def model_calls(monkeypatch):
    """Counts calls of any Keras model (forward passes, fit, predict)."""
    calls = []
    for name in ("__call__", "fit", "predict", "evaluate"):
        original = getattr(keras.Model, name)

        def counted(self, *args, _original=original, _name=name, **kwargs):
            calls.append(_name)
            return _original(self, *args, **kwargs)

        monkeypatch.setattr(keras.Model, name, counted)
    return calls


def _set_flag(argv, flag, value):
    argv = list(argv)
    if flag in argv:
        argv[argv.index(flag) + 1] = value
    else:
        argv += [flag, value]
    return argv


def _finetune_argv(files, model, out, *extra):
    return ["finetune", str(model), "--dataset", f"npz:{files / 'data.npz'}",
            "--c", "0.5", "--epochs", "1", "--learning_rate", "0.01",
            "--out", str(out), *ATTACK_FLAGS, *extra]
