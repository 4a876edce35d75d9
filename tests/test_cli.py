"""Tests for the ``keras-gradreg`` command line (keras_gradreg.cli).

Most cases call ``cli.main(argv)`` in-process; two run ``python -m
keras_gradreg`` as a user would (each subprocess pays TensorFlow's import).
"""

import json
import os
import pathlib
import subprocess
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_gradreg import GradRegModel
from keras_gradreg import attacks
from keras_gradreg import cli

SHAPE = (6, 6, 1)
CLASSES = 3
EPS = ("0.05", "0.10")
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


# Independent references ------------------------------------------------------


def _fgsm_accuracy(model, x, y, eps):
    """FGSM by hand: one signed cross-entropy gradient step, clipped."""
    x = tf.constant(x)
    with tf.GradientTape() as tape:
        tape.watch(x)
        loss = tf.nn.sparse_softmax_cross_entropy_with_logits(y, model(x))
    x_adv = tf.clip_by_value(x + eps * tf.sign(tape.gradient(loss, x)), 0, 1)
    return float(np.mean(np.argmax(model(x_adv), -1) == y))


# evaluate --------------------------------------------------------------------


def test_evaluate_writes_results_matching_a_hand_computation(
    files, tmp_path, capsys
):
    out = tmp_path / "report"
    cli.main(_evaluate_argv(files, out))
    results = json.loads((out / "results.json").read_text())
    assert list(results) == ["clean", "fgsm", "pgd"]
    assert list(results["fgsm"]) == list(EPS)  # eps keys as given
    model = keras.models.load_model(files / "model.keras")
    with np.load(files / "data.npz") as data:
        x, y = data["x"], data["y"]
    clean = float(np.mean(np.argmax(model(x), -1) == y))
    assert results["clean"] == pytest.approx(clean)
    for eps in EPS:
        want = _fgsm_accuracy(model, x, y, float(eps))
        assert results["fgsm"][eps] == pytest.approx(want)
        assert results["pgd"][eps] <= results["clean"]
    for name in ("results.md", "accuracy_vs_eps.png", "report.json"):
        assert (out / name).stat().st_size > 0
    printed = capsys.readouterr().out
    assert f"clean accuracy: {100 * clean:.2f}%" in printed
    assert "eps=0.10" in printed


def test_evaluate_runs_a_registered_attack_with_the_flags_it_takes(
    files, tmp_path, monkeypatch
):
    calls = []

    def shift(model, x, y, eps, step_size=None, steps=10, clip_min=0.0,
              clip_max=1.0):
        calls.append({"step_size": step_size, "steps": steps,
                      "clip_max": clip_max})
        return np.clip(np.asarray(x) + eps, clip_min, clip_max)

    monkeypatch.setitem(attacks.ATTACKS, "shift", shift)
    out = tmp_path / "report"
    argv = _evaluate_argv(files, out)
    argv[argv.index("fgsm,pgd")] = "shift"
    cli.main(argv)
    results = json.loads((out / "results.json").read_text())
    model = keras.models.load_model(files / "model.keras")
    with np.load(files / "data.npz") as data:
        x, y = data["x"], data["y"]
    for eps in EPS:
        x_adv = np.clip(x + float(eps), 0, 1)
        want = float(np.mean(np.argmax(model(x_adv), -1) == y))
        assert results["shift"][eps] == pytest.approx(want)
    # It takes a step size, so it gets --step_size and --steps.
    assert calls[0] == {"step_size": 0.02, "steps": 5, "clip_max": 1.0}


def test_evaluate_keeps_existing_results_unless_overwrite(
    files, tmp_path, capsys
):
    out = tmp_path / "report"
    out.mkdir()
    (out / "results.json").write_text("precious")
    message = _fails(_evaluate_argv(files, out), capsys)
    assert "--overwrite" in message
    assert (out / "results.json").read_text() == "precious"
    cli.main(_evaluate_argv(files, out, "--overwrite", "--num_examples", "8"))
    assert "clean" in json.loads((out / "results.json").read_text())


def test_paper_settings_fill_in_for_the_paper_datasets():
    parse = cli.build_parser().parse_args
    args = parse(["evaluate", "m.keras", "--dataset", "cifar10", "--out", "r"])
    assert cli.attack_settings(args, iterative=True) == cli.AttackSettings(
        ("3", "6", "9"), 1.0, 10, 0.0, 255.0
    )
    args = parse(["evaluate", "m.keras", "--dataset", "speech_commands",
                  "--out", "r", "--eps", "0.5", "--steps", "3"])
    assert cli.attack_settings(args, iterative=True) == cli.AttackSettings(
        ("0.5",), 0.002, 3, None, None
    )


BAD_INPUTS = {
    "missing model": (["--model", "absent.keras"], "not found"),
    "unreadable model": (["--model", "garbage.keras"], "cannot load model"),
    "shape mismatch": (["--dataset", "npz:wide.npz"], "inputs of shape"),
    "unknown dataset": (["--dataset", "imagenet"], "unknown dataset"),
    "missing npz": (["--dataset", "npz:absent.npz"], "not found"),
    "npz without y": (["--dataset", "npz:no_y.npz"], "'x' and 'y'"),
    "unknown attack": (["--attacks", "fgsm,deepfool"], "unknown attack"),
    "eps not numbers": (["--eps", "0.1,big"], "--eps"),
    "negative eps": (["--eps", "-0.1"], "--eps"),
    "npz needs clip": (["--clip_min", None, "--clip_max", None], "--no_clip"),
    "npz needs eps": (["--eps", None], "--eps is required"),
}


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


@pytest.mark.parametrize("case", sorted(BAD_INPUTS))
def test_bad_input_gets_one_line_and_writes_nothing(
    case, files, tmp_path, capsys
):
    edits, expected = BAD_INPUTS[case]
    out = tmp_path / "report"
    argv = _edit(_evaluate_argv(files, out), files, edits)
    assert expected in _fails(argv, capsys)
    assert not out.exists()


def test_argparse_errors_are_one_line(capsys):
    message = _fails(["evaluate"], capsys)
    assert "required" in message and "--help" in message
    argv = ["evaluate", "m.keras", "--dataset", "mnist", "--out", "r"]
    assert "unrecognized" in _fails(argv + ["--nope"], capsys)


# finetune --------------------------------------------------------------------


def _finetune_argv(files, model, out, *extra):
    return ["finetune", str(model), "--dataset", f"npz:{files / 'data.npz'}",
            "--c", "0.5", "--epochs", "1", "--learning_rate", "0.01",
            "--out", str(out), *ATTACK_FLAGS, *extra]


def test_finetune_saves_a_loadable_grad_reg_model(files, tmp_path, capsys):
    out = tmp_path / "nested" / "robust.keras"
    cli.main(_finetune_argv(files, files / "model.keras", out))
    printed = capsys.readouterr().out
    assert "before" in printed and "after" in printed
    assert "pgd eps=0.10" in printed
    robust = keras.models.load_model(out)
    assert isinstance(robust, GradRegModel)
    assert robust.c == pytest.approx(0.5)
    original = keras.models.load_model(files / "model.keras")
    assert not np.allclose(robust.base.get_layer("head").kernel,
                           original.get_layer("head").kernel)

    # Fine-tuning the result again continues from its base: no double wrap.
    again = tmp_path / "again.keras"
    cli.main(_finetune_argv(files, out, again, "--norm", "l1"))
    twice = keras.models.load_model(again)
    assert not isinstance(twice.base, GradRegModel)
    assert twice.c == pytest.approx(0.5)
    assert twice.norm.__name__ == "l1"


def test_finetune_refuses_to_overwrite_and_bad_out(files, tmp_path, capsys):
    out = tmp_path / "robust.keras"
    out.write_text("precious")
    model = files / "model.keras"
    assert "--overwrite" in _fails(_finetune_argv(files, model, out), capsys)
    assert out.read_text() == "precious"
    bad = tmp_path / "robust.h5"
    assert ".keras" in _fails(_finetune_argv(files, model, bad), capsys)
    assert "--c" in _fails(
        _finetune_argv(files, model, tmp_path / "x.keras", "--c", "-1"), capsys
    )


def test_mnist_by_name_with_paper_defaults(mnist_dir, tmp_path, capsys):
    path = tmp_path / "mnist.keras"
    keras.Sequential([keras.Input((28, 28, 1)), keras.layers.Flatten(),
                      keras.layers.Dense(10)]).save(path)
    out = tmp_path / "report"
    cli.main(["evaluate", str(path), "--dataset", "mnist", "--data_dir",
              str(mnist_dir), "--num_examples", "16", "--attacks", "fgsm",
              "--out", str(out)])
    results = json.loads((out / "results.json").read_text())
    assert list(results["fgsm"]) == ["0.1", "0.2", "0.3"]


# As a user runs it -----------------------------------------------------------


def _run(*argv):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    return subprocess.run(
        [sys.executable, "-m", "keras_gradreg", *map(str, argv)],
        capture_output=True, text=True, cwd=REPO, env=env, timeout=120,
    )


def test_python_m_evaluate(files, tmp_path):
    out = tmp_path / "report"
    argv = _evaluate_argv(files, out)
    argv[argv.index("fgsm,pgd")] = "fgsm"
    done = _run(*argv)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "clean accuracy" in done.stdout
    assert set(json.loads((out / "results.json").read_text())) == {
        "clean", "fgsm"
    }


def test_python_m_bad_model_has_no_traceback(files, tmp_path):
    done = _run("finetune", files / "garbage.keras", "--dataset",
                f"npz:{files / 'data.npz'}", "--out", tmp_path / "r.keras",
                *ATTACK_FLAGS)
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("keras-gradreg: error: cannot load model")
    assert not (tmp_path / "r.keras").exists()


def test_finetune_logs_to_tensorboard_with_hparams(files, tmp_path, capsys):
    event_accumulator = pytest.importorskip(
        "tensorboard.backend.event_processing.event_accumulator")
    from tensorboard.plugins.hparams import metadata as hparams_metadata
    out = tmp_path / "robust.keras"
    cli.main(_finetune_argv(files, files / "model.keras", out,
                            "--logdir", str(tmp_path / "tb")))
    printed = capsys.readouterr().out
    assert f"tensorboard --logdir {tmp_path / 'tb'}" in printed
    run = tmp_path / "tb" / "robust"

    def tags(folder):
        return event_accumulator.EventAccumulator(str(folder)).Reload()

    train = tags(run / "train")
    assert "input_gradient/l2" in train.Tags()["tensors"]
    validation = tags(run / "validation").Tags()["tensors"]
    assert {f"robust_accuracy/fgsm_eps{float(e):g}" for e in EPS} <= set(
        validation)
    root = tags(run)
    start = hparams_metadata.parse_session_start_info_plugin_data(
        root.PluginTagToContent("hparams")[
            hparams_metadata.SESSION_START_INFO_TAG])
    assert start.hparams["c"].number_value == 0.5
    assert start.hparams["norm"].string_value == "squared_l2"
    assert "robust_accuracy_vs_eps/pgd" in root.Tags()["tensors"]
    # The run folder is an output: kept unless --overwrite.
    assert "--overwrite" in _fails(_finetune_argv(
        files, files / "model.keras", tmp_path / "other" / "robust.keras",
        "--logdir", str(tmp_path / "tb")), capsys)


def test_finetune_no_tensorboard(files, tmp_path):
    out = tmp_path / "robust.keras"
    cli.main(_finetune_argv(files, files / "model.keras", out,
                            "--no_tensorboard"))
    assert out.exists() and not (tmp_path / "logs").exists()
