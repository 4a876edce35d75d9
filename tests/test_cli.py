"""Tests for the ``keras-gradreg`` command line (keras_gradreg.cli).

Most cases call ``cli.main(argv)`` in-process; two run ``python -m
keras_gradreg`` as a user would (each subprocess pays TensorFlow's import).
"""

import json
import os
import pathlib
import signal
import subprocess
import sys
import time

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_gradreg import AdversarialTrainingModel
from keras_gradreg import GradRegModel
from keras_gradreg import Results
from keras_gradreg import attacks
from keras_gradreg import cli
from keras_gradreg.evaluation import _files

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


def _table(out) -> dict:
    """The command's own table: the "evaluate" section of results.json."""
    results = json.loads((out / "results.json").read_text())
    return results["sections"][cli.EVALUATE_SECTION]["data"]


def test_evaluate_writes_results_matching_a_hand_computation(
    files, tmp_path, capsys
):
    out = tmp_path / "report"
    cli.main(_evaluate_argv(files, out))
    results = _table(out)
    assert list(results) == ["clean", "fgsm", "pgd"]
    assert list(results["fgsm"]) == list(KEYS)  # eps keys as in Results
    model = keras.models.load_model(files / "model.keras")
    with np.load(files / "data.npz") as data:
        x, y = data["x"], data["y"]
    clean = float(np.mean(np.argmax(model(x), -1) == y))
    assert results["clean"] == pytest.approx(clean)
    for eps in KEYS:
        want = _fgsm_accuracy(model, x, y, float(eps))
        assert results["fgsm"][eps] == pytest.approx(want)
        assert results["pgd"][eps] <= results["clean"]
    # One results format: the report's, with the table as a section.
    loaded = Results.load(str(out))
    assert loaded.model_names == ["model"]
    for eps in KEYS:
        assert loaded.accuracy("model", "fgsm", eps) == results["fgsm"][eps]
    assert loaded.accuracy("model") == results["clean"]
    assert loaded.correct("model", "pgd", EPS[0]).shape == y.shape
    for name in ("results.md", "results.csv", "correct.npz",
                 "accuracy_vs_eps.png"):
        assert (out / name).stat().st_size > 0
    markdown = (out / "results.md").read_text()
    assert "## keras-gradreg evaluate" in markdown
    assert "## Transfer" not in markdown  # one model: nothing to transfer
    assert f"clean accuracy: {100 * clean:.2f}%" in markdown
    printed = capsys.readouterr().out
    assert f"clean accuracy: {100 * clean:.2f}%" in printed
    assert "eps=0.1" in printed and "eps=0.10" not in printed


@pytest.mark.parametrize("drop, given", [
    ((), {"step_size": 0.02, "steps": 5}),
    # Own data without a step: the attack's own rule, 10 steps.
    (("--step_size", "--steps"), {"step_size": None, "steps": 10}),
])
def test_evaluate_runs_a_registered_attack_with_the_flags_it_takes(
    files, tmp_path, monkeypatch, drop, given
):
    calls = []

    def shift(model, x, y, eps, step_size=None, steps=10, clip_min=0.0,
              clip_max=1.0):
        calls.append({"step_size": step_size, "steps": steps,
                      "clip_max": clip_max})
        return np.clip(np.asarray(x) + eps, clip_min, clip_max)

    monkeypatch.setitem(attacks.ATTACKS, "shift", shift)
    out = tmp_path / "report"
    argv = _edit(_evaluate_argv(files, out), files,
                 [item for flag in drop for item in (flag, None)])
    argv[argv.index("fgsm,pgd")] = "shift"
    cli.main(argv)
    results = _table(out)
    model = keras.models.load_model(files / "model.keras")
    with np.load(files / "data.npz") as data:
        x, y = data["x"], data["y"]
    for eps in KEYS:
        x_adv = np.clip(x + float(eps), 0, 1)
        want = float(np.mean(np.argmax(model(x_adv), -1) == y))
        assert results["shift"][eps] == pytest.approx(want)
    # It takes a step size, so it gets --step_size and --steps.
    assert calls[0] == dict(given, clip_max=1.0)


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
    assert "clean" in _table(out)


def test_paper_settings_fill_in_for_the_paper_datasets():
    parse = cli.build_parser().parse_args
    args = parse(["evaluate", "m.keras", "--dataset", "cifar10", "--out", "r"])
    assert cli.attack_settings(args, iterative=True) == cli.AttackSettings(
        (3.0, 6.0, 9.0), 1.0, 10, 0.0, 255.0
    )
    args = parse(["evaluate", "m.keras", "--dataset", "speech_commands",
                  "--out", "r", "--eps", "0.5", "--steps", "3"])
    assert cli.attack_settings(args, iterative=True) == cli.AttackSettings(
        (0.5,), 0.002, 3, None, None
    )


def test_finetune_on_own_data_evaluates_at_the_training_eps():
    args = cli.build_parser().parse_args(
        ["finetune", "m.keras", "--dataset", "npz:d.npz", "--train_eps",
         "0.05", "--clip_min", "0", "--clip_max", "1", "--out", "r.keras"])
    assert cli.attack_settings(args, iterative=True) == cli.AttackSettings(
        (0.05,), None, 10, 0.0, 1.0)


def test_each_attack_gets_only_the_flags_it_takes():
    from keras_gradreg.cli import _settings as _cli_settings

    args = cli.build_parser().parse_args(
        ["evaluate", "m.keras", "--dataset", "mnist", "--out", "r",
         "--queries", "300", "--autoattack_version", "fast",
         "--apgd_steps", "20"])
    settings = cli.attack_settings(args, iterative=True)
    specs = _cli_settings.attack_specs(
        ["autoattack", "square", "pgd", "apgd"], settings, args)
    clip = {"clip_min": 0.0, "clip_max": 1.0, "seed": 0}
    assert specs["autoattack"] == ("autoattack", dict(
        clip, steps=20, queries=300, version="fast"))
    assert specs["square"] == ("square", dict(clip, queries=300))
    assert specs["apgd"] == ("apgd", dict(clip, steps=20))
    assert "queries" not in specs["pgd"][1] and "version" not in specs["pgd"][1]


BAD_INPUTS = {
    "missing model": (["--model", "absent.keras"], "not found"),
    "unreadable model": (["--model", "garbage.keras"],
                         "is not a Keras model file"),
    "text renamed .keras": (["--model", "text.keras"],
                            "text.keras is not a Keras model file"),
    "text renamed .h5": (["--model", "text.h5"],
                         "text.h5 is not a Keras model file"),
    "garbage npz": (["--dataset", "npz:garbage.npz"],
                    "garbage.npz is not a NumPy .npz archive"),
    "float labels": (["--dataset", "npz:float_labels.npz"],
                     r"float_labels.npz: y must hold integer class indices; "
                     "y[3] is 0.6"),
    "soft labels": (["--dataset", "npz:soft_labels.npz"], "row 0 is not one-hot"),
    "one-hot labels too wide": (["--dataset", "npz:one_hot_wide.npz"],
                                "One-hot y has 4 columns but the model has "
                                "3 classes"),
    "pixels above clip_max": (["--dataset", "npz:pixels.npz"],
                              "x has values above clip_max=1.0"),
    "nan inputs": (["--dataset", "npz:nan_inputs.npz"],
                   "x contains NaN or infinite values (1 example(s), the "
                   "first at index 5)"),
    "npy renamed npz": (["--dataset", "npz:plain.npz"],
                        "plain.npz is not a NumPy .npz archive"),
    "shape mismatch": (["--dataset", "npz:wide.npz"], "inputs of shape"),
    "unknown dataset": (["--dataset", "imagenet"], "unknown dataset"),
    "missing npz": (["--dataset", "npz:absent.npz"], "not found"),
    "npz without y": (["--dataset", "npz:no_y.npz"], "'x' and 'y'"),
    "unknown attack": (["--attacks", "fgsm,deepfool"], "unknown attack"),
    "eps not numbers": (["--eps", "0.1,big"], "--eps"),
    "negative eps": (["--eps", "-0.1"], "--eps"),
    "nan eps": (["--eps", "0.1,nan"], "'nan' is not a finite number > 0"),
    "inf eps": (["--eps", "inf"], "'inf' is not a finite number > 0"),
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


@pytest.mark.parametrize("command", ["evaluate", "finetune"])
@pytest.mark.parametrize("case", ["one-hot labels too wide",
                                  "pixels above clip_max", "nan inputs"])
def test_bad_data_is_refused_before_any_model_call(
    command, case, files, tmp_path, capsys, model_calls
):
    edits, expected = BAD_INPUTS[case]
    if command == "evaluate":
        argv = _evaluate_argv(files, tmp_path / "report")
    else:
        argv = _finetune_argv(files, files / "model.keras",
                              tmp_path / "robust.keras")
    assert expected in _fails(_edit(argv, files, edits), capsys)
    assert model_calls == []
    assert list(tmp_path.iterdir()) == []


def test_model_calls_counts_the_commands_work(files, tmp_path, model_calls):
    cli.main(_evaluate_argv(files, tmp_path / "report", "--num_examples", "8"))
    assert "__call__" in model_calls


NUMERIC_FLAGS = [
    ("--num_examples", "0", "--num_examples must be >= 1, got 0"),
    ("--batch_size", "-2", "--batch_size must be >= 1"),
    ("--steps", "0", "--steps must be >= 1"),
    ("--pgd_restarts", "0", "--pgd_restarts must be >= 1"),
    ("--apgd_steps", "0", "--apgd_steps must be >= 1"),
    ("--queries", "0", "--queries must be >= 1"),
    ("--autoattack_version", "strong", "invalid choice: 'strong'"),
    ("--seed", "-1", "--seed must be >= 0"),
    ("--step_size", "0", "--step_size must be > 0"),
    ("--step_size", "inf", "--step_size must be a finite number"),
    ("--step_size", "nan", "--step_size must be a finite number"),
    ("--clip_min", "nan", "--clip_min must be a finite number"),
    ("--clip_max", "inf", "--clip_max must be a finite number"),
    ("--steps", "1.5", "invalid int value"),
]
FINETUNE_FLAGS = NUMERIC_FLAGS + [
    ("--learning_rate", "-1", "--learning_rate must be > 0.0, got -1.0"),
    ("--learning_rate", "0", "--learning_rate must be > 0"),
    ("--learning_rate", "nan", "--learning_rate must be a finite number"),
    ("--epochs", "0", "--epochs must be >= 1, got 0"),
    ("--eval_examples", "0", "--eval_examples must be >= 1"),
    ("--c", "-1", "--c must be >= 0"),
    ("--c", "inf", "--c must be a finite number"),
    ("--train_eps", "0", "--train_eps must be > 0"),
    ("--train_eps", "nan", "--train_eps must be a finite number"),
    ("--train_steps", "0", "--train_steps must be >= 1"),
    ("--recipe", "madry", "invalid choice"),
]


def _set_flag(argv, flag, value):
    argv = list(argv)
    if flag in argv:
        argv[argv.index(flag) + 1] = value
    else:
        argv += [flag, value]
    return argv


@pytest.mark.parametrize("flag, value, expected", NUMERIC_FLAGS)
def test_evaluate_checks_every_numeric_flag(flag, value, expected, files,
                                            tmp_path, capsys):
    out = tmp_path / "report"
    argv = _set_flag(_evaluate_argv(files, out), flag, value)
    assert expected in _fails(argv, capsys)
    assert not out.exists()


@pytest.mark.parametrize("flag, value, expected", FINETUNE_FLAGS)
def test_finetune_checks_every_numeric_flag(flag, value, expected, files,
                                            tmp_path, capsys):
    out = tmp_path / "robust.keras"
    argv = _finetune_argv(files, files / "model.keras", out)
    assert expected in _fails(_set_flag(argv, flag, value), capsys)
    assert list(tmp_path.iterdir()) == []


def test_every_numeric_flag_of_the_parser_is_checked():
    parser = cli.build_parser()
    commands = parser._subparsers._group_actions[0].choices.values()
    numeric = {action.dest for command in commands
               for action in command._actions if action.type in (int, float)}
    from keras_gradreg.cli._settings import NUMERIC_FLAGS as checked
    assert numeric == set(checked)


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
    assert "pgd eps=0.1 " in printed
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


@pytest.mark.parametrize("extra, kind, expected", [
    # The default recipe: N-FGSM at the smallest --eps, no penalty.
    ((), AdversarialTrainingModel,
     dict(eps=0.05, step_size=0.05, steps=1, start_radius=0.1, project=False,
          c=0.0)),
    (("--train_eps", "0.08", "--c", "0.03", "--norm", "l1"),
     AdversarialTrainingModel,
     dict(eps=0.08, start_radius=0.16, project=False, c=0.03, norm="l1")),
    (("--recipe", "fgsm_rs"), AdversarialTrainingModel,
     dict(eps=0.05, step_size=0.0625, start_radius=0.05, project=True)),
    (("--recipe", "pgd", "--train_steps", "4"), AdversarialTrainingModel,
     dict(eps=0.05, steps=4, step_size=2.5 * 0.05 / 4, project=True)),
    # The paper's penalty alone: c defaults to 0.01.
    (("--recipe", "gradreg"), GradRegModel, dict(c=0.01, norm="squared_l2")),
])
def test_finetune_recipes(extra, kind, expected, files, tmp_path, capsys):
    out = tmp_path / "robust.keras"
    argv = ["finetune", str(files / "model.keras"), "--dataset",
            f"npz:{files / 'data.npz'}", "--epochs", "1", "--out", str(out),
            "--no_tensorboard", *ATTACK_FLAGS, *extra]
    cli.main(argv)
    robust = keras.models.load_model(out)
    assert type(robust) is kind
    for name, value in expected.items():
        found = getattr(robust, name)
        found = getattr(found, "__name__", found)
        assert found == (pytest.approx(value) if isinstance(value, float)
                         else value), name
    if kind is AdversarialTrainingModel:  # the clip range of the attacks
        assert (robust.clip_min, robust.clip_max) == (0.0, 1.0)
    title = {"gradreg": "the paper's penalty"}.get(
        dict(zip(extra[::2], extra[1::2])).get("--recipe"), "")
    printed = capsys.readouterr().out
    assert title in printed
    assert f"Saved the fine-tuned {kind.__name__} to {out}." in printed


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


# Atomic outputs: an interrupt never leaves a partial file ---------------------


def test_finetune_interrupted_while_saving_keeps_the_old_model(
    files, tmp_path, capsys, monkeypatch
):
    out = tmp_path / "robust.keras"
    out.write_bytes(b"the old model")

    def save_half_then_interrupt(self, path, *args, **kwargs):
        with open(path, "wb") as handle:
            handle.write(b"PK half a zip")
        raise KeyboardInterrupt

    monkeypatch.setattr(GradRegModel, "save", save_half_then_interrupt)
    argv = _finetune_argv(files, files / "model.keras", out, "--overwrite",
                          "--num_examples", "8", "--eval_examples", "8",
                          "--no_tensorboard")
    assert "interrupted" in _fails(argv, capsys, status=130)
    assert out.read_bytes() == b"the old model"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["robust.keras"]


def test_evaluate_interrupted_while_writing_keeps_the_old_results(
    files, tmp_path, capsys, monkeypatch
):
    out = tmp_path / "report"
    cli.main(_evaluate_argv(files, out, "--num_examples", "8"))
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    assert set(before) >= {"results.json", "correct.npz", "results.md"}

    def half_then_fail(results, folder):
        with open(os.path.join(folder, "results.json"), "w") as handle:
            handle.write('{"cut')
        raise OSError("disk full")

    monkeypatch.setattr(_files, "write_into", half_then_fail)
    argv = _evaluate_argv(files, out, "--num_examples", "8", "--overwrite")
    assert "disk full" in _fails(argv, capsys, status=1)
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before

    # A first run that fails leaves no folder behind.
    fresh = tmp_path / "fresh"
    _fails(_evaluate_argv(files, fresh, "--num_examples", "8"), capsys, 1)
    assert not fresh.exists()


def test_evaluate_overwrite_replaces_every_output_and_drops_stale_ones(
    files, tmp_path, capsys
):
    out = tmp_path / "report"
    out.mkdir()
    (out / "accuracy_vs_eps.png").write_bytes(b"stale plot")
    (out / "notes.txt").write_text("not ours")
    cli.main(_evaluate_argv(files, out, "--num_examples", "8", "--overwrite"))
    names = sorted(p.name for p in out.iterdir())
    assert "notes.txt" in names
    assert not any(name.startswith(".partial") for name in names)
    png = out / "accuracy_vs_eps.png"
    assert not png.exists() or png.read_bytes() != b"stale plot"


def test_mnist_by_name_with_paper_defaults(mnist_dir, tmp_path, capsys):
    path = tmp_path / "mnist.keras"
    keras.Sequential([keras.Input((28, 28, 1)), keras.layers.Flatten(),
                      keras.layers.Dense(10)]).save(path)
    out = tmp_path / "report"
    cli.main(["evaluate", str(path), "--dataset", "mnist", "--data_dir",
              str(mnist_dir), "--num_examples", "16", "--attacks", "fgsm",
              "--out", str(out)])
    assert list(_table(out)["fgsm"]) == ["0.1", "0.2", "0.3"]


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
    assert set(_table(out)) == {"clean", "fgsm"}


def test_finetune_bad_model_is_one_line(files, tmp_path, capsys):
    """(In process: ``python -m`` runs the same ``main``, whose entry point
    ``test_python_m_evaluate`` covers.)"""
    line = _fails(["finetune", files / "garbage.keras", "--dataset",
                   f"npz:{files / 'data.npz'}", "--out", tmp_path / "r.keras",
                   *ATTACK_FLAGS], capsys)
    assert line.endswith("garbage.keras is not a Keras model file (a .keras "
                         "model is a zip archive holding config.json); save "
                         "the model with model.save(path).")
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


# Parsing and --help without TensorFlow ----------------------------------------


def _modules_after(*argv):
    """Runs ``python -m keras_gradreg ARGV`` in a fresh interpreter; returns
    its exit status, output and whether TensorFlow got imported."""
    code = (
        "import runpy, sys\n"
        f"sys.argv = ['keras-gradreg', *{list(argv)!r}]\n"
        "try:\n"
        "    runpy.run_module('keras_gradreg', run_name='__main__')\n"
        "except SystemExit as exit:\n"
        "    status = exit.code\n"
        "print('TENSORFLOW', 'tensorflow' in sys.modules, 'STATUS', status)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True,
                          text=True, cwd=REPO, timeout=120)
    *lines, last = done.stdout.strip().splitlines()
    return last, "\n".join(lines), done.stderr


@pytest.mark.parametrize("argv", [
    ["--help"], ["evaluate", "--help"], ["finetune", "--help"],
    ["evaluate", "m.keras", "--dataset", "mnist"],  # an error: no --out
])
def test_parsing_and_help_do_not_import_tensorflow(argv):
    last, printed, errors = _modules_after(*argv)
    status = 2 if "--help" not in argv else 0
    assert last == f"TENSORFLOW False STATUS {status}", errors
    if status:
        assert errors.strip() == ("keras-gradreg: error: the following "
                                  "arguments are required: --out (see "
                                  "keras-gradreg evaluate --help).")
    else:
        assert "usage: keras-gradreg" in printed


def test_help_shows_the_defaults():
    parser = cli.build_parser()
    commands = parser._subparsers._group_actions[0].choices
    evaluate = " ".join(commands["evaluate"].format_help().split())
    assert ("(default: fgsm,bim,cw,pgd, less those that do not support "
            "--norm)") in evaluate
    assert "(default: linf)" in evaluate and "l2 and l1 need --eps" in evaluate
    assert "1.33x the throughput" in evaluate
    assert "Use the first N examples only (default: all)." in evaluate
    finetune = " ".join(commands["finetune"].format_help().split())
    assert "Epochs of fine-tuning (default: 1)." in finetune
    assert "(default: n_fgsm)" in finetune
    assert "Examples to measure accuracy on (default: 1000)." in finetune
    assert "under fgsm and pgd before and after" in finetune
    top = " ".join(parser.format_help().split())
    assert "with GradRegModel" not in top
    assert "N-FGSM adversarial training" in top


def test_the_names_the_help_lists_are_the_registries():
    from keras_gradreg import adversarial_training
    from keras_gradreg import regularizers
    from keras_gradreg.attacks.autoattack import VERSIONS
    from keras_gradreg.cli import _finetune as _cli_finetune
    from keras_gradreg.cli import _parser as _cli_parser

    assert _cli_parser.ATTACK_NAMES == tuple(attacks.ATTACKS)
    assert _cli_parser.EVALUATE_ATTACKS == attacks.DEFAULT_ATTACKS
    assert _cli_parser.FINETUNE_ATTACKS == _cli_finetune.FINETUNE_ATTACKS
    assert _cli_parser.DATASETS == tuple(cli.PAPER_SETTINGS)
    assert _cli_parser.RECIPES == tuple(adversarial_training.RECIPES) + (
        _cli_parser.PENALTY_ONLY,)
    assert _cli_parser.REGULARIZERS == tuple(sorted(regularizers.REGULARIZERS))
    assert _cli_parser.PENALTY_NORMS == tuple(sorted(regularizers.NORMS))
    assert _cli_parser.AUTOATTACK_VERSIONS == tuple(sorted(VERSIONS))
    assert _cli_parser.THREAT_NORMS == tuple(attacks.NORMS)


def test_masking_warnings_are_printed_one_line_each(files, tmp_path, capsys,
                                                    monkeypatch):
    monkeypatch.setattr(Results, "warnings", property(
        lambda self: ["PGD beats FGSM\nby little", "second check"]))
    cli.main(_evaluate_argv(files, tmp_path / "report", "--num_examples", "8"))
    printed = capsys.readouterr().out.splitlines()
    assert "WARNING: PGD beats FGSM by little" in printed
    assert "WARNING: second check" in printed
    cli.main(_finetune_argv(files, files / "model.keras",
                            tmp_path / "robust.keras", "--num_examples", "8",
                            "--eval_examples", "8", "--no_tensorboard"))
    printed = capsys.readouterr().out.splitlines()
    assert "WARNING (after fine-tuning): second check" in printed


# Outputs checked before any work ---------------------------------------------


@pytest.mark.parametrize("command", ["evaluate", "finetune"])
def test_an_unwritable_output_is_refused_before_any_model_call(
    command, files, tmp_path, capsys, model_calls, monkeypatch
):
    blocker = tmp_path / "a_file"
    blocker.write_text("")
    if command == "evaluate":
        argv = _evaluate_argv(files, blocker / "report")
        flag = "--out"
    else:  # the model's place is fine, the TensorBoard folder's is not
        argv = _finetune_argv(files, files / "model.keras",
                              tmp_path / "robust.keras", "--logdir",
                              blocker / "tb")
        flag = "--logdir"
    assert f"cannot write {flag} " in _fails(argv, capsys)
    # A full disk, as the free space reports it.
    monkeypatch.setattr("shutil.disk_usage",
                        lambda path: type("Usage", (), {"free": 0})())
    out = tmp_path / ("report" if command == "evaluate" else "m.keras")
    argv = (_evaluate_argv(files, out) if command == "evaluate" else
            _finetune_argv(files, files / "model.keras", out))
    if command == "evaluate":
        monkeypatch.setattr("os.fsync", _no_space)
    assert "No space left on device" in _fails(argv, capsys)
    assert model_calls == []
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a_file"]


def _no_space(fd):
    import errno
    raise OSError(errno.ENOSPC, "No space left on device")


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes anywhere")
def test_a_read_only_out_is_refused_before_any_model_call(
    files, tmp_path, capsys, model_calls
):
    out = tmp_path / "report"
    out.mkdir()
    out.chmod(0o555)
    try:
        message = _fails(_evaluate_argv(files, out, "--overwrite"), capsys)
    finally:
        out.chmod(0o755)
    assert "cannot write --out" in message and "Permission denied" in message
    assert model_calls == []


# Killed while writing: the old outputs or the new, never a mix ----------------


def _killed_at(step, *argv):
    """Runs the command in a subprocess that SIGKILLs itself at ``step``."""
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", KGR_FAULT_AFTER=step)
    done = subprocess.run(
        [sys.executable, "-m", "keras_gradreg", *map(str, argv)],
        capture_output=True, text=True, cwd=REPO, env=env, timeout=300)
    assert done.returncode == -signal.SIGKILL, done.stderr[-3000:]


def _visible(folder) -> dict:
    """Every file under ``folder`` (relative path -> bytes)."""
    folder = pathlib.Path(folder)
    return {str(p.relative_to(folder)): p.read_bytes()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def _hidden(folder) -> list:
    return sorted(p.name for p in pathlib.Path(folder).iterdir()
                  if p.name.startswith("."))


# (step, --overwrite, what is left: "old", "new" or "none")
EVALUATE_KILLS = [
    ("scratch", True, "old"),   # the scratch folder has just appeared
    ("written 2", True, "old"),  # between the files written into scratch
    ("swap", False, "none"),    # every file complete, before the swap
    ("swapped", True, "new"),   # after the swap, the old folder not removed
]


@pytest.mark.parametrize("step, overwrite, left", EVALUATE_KILLS)
def test_evaluate_killed_while_writing(step, overwrite, left, files,
                                       tmp_path, capsys):
    out = tmp_path / "report"
    if overwrite:
        cli.main(_evaluate_argv(files, out, "--num_examples", "8"))
        (out / "notes.txt").write_text("not ours")
    old = _visible(out) if overwrite else None
    _killed_at(step, *_evaluate_argv(files, out, "--num_examples", "16",
                                     *(["--overwrite"] if overwrite else [])))
    assert _hidden(tmp_path)  # the scratch folder, left by the kill
    if left == "old":
        assert _visible(out) == old
    elif left == "none":
        assert not out.exists()
    else:
        new = _visible(out)
        assert new["notes.txt"] == b"not ours"
        assert Results.load(str(out)).settings["num_examples"] == 16
        assert new["results.json"] != old["results.json"]
    # The next run removes the scratch the killed one left.
    cli.main(_evaluate_argv(files, out, "--num_examples", "12",
                            "--overwrite"))
    assert _hidden(tmp_path) == [] and _hidden(out) == []
    assert Results.load(str(out)).settings["num_examples"] == 12
    if overwrite:
        assert (out / "notes.txt").read_text() == "not ours"


FINETUNE_KILLS = [
    ("epoch 1", True, "old", "old"),      # during TensorBoard logging
    ("swapped", True, "new", "old"),      # the model swapped in, not the logs
    ("swapped#2", True, "new", "new"),    # both swapped, scratch not removed
    ("epoch 1", False, "none", "none"),
]


@pytest.mark.parametrize("step, overwrite, model_left, logs_left",
                         FINETUNE_KILLS)
def test_finetune_killed_while_writing(step, overwrite, model_left, logs_left,
                                       files, tmp_path, capsys):
    out, logs = tmp_path / "robust.keras", tmp_path / "tb"
    argv = [str(a) for a in _finetune_argv(
        files, files / "model.keras", out, "--logdir", logs,
        "--num_examples", "8", "--eval_examples", "8")]
    if overwrite:
        cli.main(argv)
    old_model = out.read_bytes() if overwrite else None
    old_logs = _visible(logs / "robust") if overwrite else None
    _killed_at(step, *argv, "--epochs", "2",
               *(["--overwrite"] if overwrite else []))
    assert _hidden(tmp_path) + _hidden(logs)  # scratch left by the kill
    if model_left == "old":
        assert out.read_bytes() == old_model
    elif model_left == "none":
        assert not out.exists()
    else:
        assert out.read_bytes() != old_model
        assert keras.models.load_model(out).optimizer.iterations > 1
    if logs_left == "old":
        assert _visible(logs / "robust") == old_logs
    elif logs_left == "none":
        assert not (logs / "robust").exists()
    else:
        new_logs = _visible(logs / "robust")
        assert new_logs and not set(new_logs) & set(old_logs)
    # The next run removes the scratch the killed one left.
    cli.main(argv + ["--overwrite"])
    assert _hidden(tmp_path) == [] and _hidden(logs) == []
    assert _hidden(logs / "robust") == []


def test_evaluate_has_one_atomic_layer(files, tmp_path, capsys, monkeypatch):
    """The command writes its files straight into its scratch folder and
    renames only that folder: no file of its own is renamed into place."""
    out = tmp_path / "report"
    cli.main(_evaluate_argv(files, out, "--num_examples", "8"))
    replace, rename, moved = os.replace, os.rename, []

    def spy(real):
        def call(source, target, *args, **kwargs):
            moved.append(os.path.basename(str(target)))
            return real(source, target, *args, **kwargs)
        return call

    monkeypatch.setattr(os, "replace", spy(replace))
    monkeypatch.setattr(os, "rename", spy(rename))
    cli.main(_evaluate_argv(files, out, "--num_examples", "12", "--overwrite"))
    assert not set(moved) & set(_files.FILES.values()), moved
    assert Results.load(str(out)).settings["num_examples"] == 12


def test_results_load_refuses_a_folder_a_kill_left_between_renames(
    files, tmp_path, capsys, monkeypatch
):
    """Results.save (the Python API) renames its files one by one: a kill
    between them mixes two saves, which Results.load refuses."""
    out = tmp_path / "report"
    cli.main(_evaluate_argv(files, out, "--num_examples", "8"))
    old = Results.load(str(out))
    cli.main(_evaluate_argv(files, tmp_path / "new", "--num_examples", "16"))
    new = Results.load(str(tmp_path / "new"))
    replace, renamed = os.replace, []

    def replace_twice_then_die(source, target):
        if len(renamed) == 2:
            raise KeyboardInterrupt  # stands for the kill
        renamed.append(target)
        replace(source, target)

    monkeypatch.setattr(os, "replace", replace_twice_then_die)
    with pytest.raises(KeyboardInterrupt):
        new.save(str(out))
    monkeypatch.undo()
    assert [os.path.basename(p) for p in renamed] == ["results.json",
                                                      "results.md"]
    with pytest.raises(ValueError, match="mixes the files of different "
                       "saves: results.json is not the one correct.npz"):
        Results.load(str(out))
    # Each whole save loads; a hand-copied file from another save does not.
    new.save(str(out))
    assert Results.load(str(out)) == new
    (out / "results.csv").write_bytes(
        (tmp_path / "new" / "results.csv").read_bytes() + b"\n")
    with pytest.raises(ValueError, match="results.csv is not the one"):
        Results.load(str(out))
    assert old != new


@pytest.mark.parametrize("delay", [0.3, 1.5])
def test_ctrl_c_during_start_up_is_one_line(files, tmp_path, delay):
    process = subprocess.Popen(
        [sys.executable, "-m", "keras_gradreg",
         *map(str, _evaluate_argv(files, tmp_path / "report"))],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO,
        env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2"))
    time.sleep(delay)  # TensorFlow is still importing
    process.send_signal(signal.SIGINT)
    _, errors = process.communicate(timeout=120)
    assert process.returncode == 130, errors
    assert "Traceback" not in errors and "KeyboardInterrupt" not in errors
    ours = [line for line in errors.splitlines() if "keras-gradreg" in line]
    assert ours == ["keras-gradreg: error: interrupted."]
    assert errors.strip().splitlines()[-1] == ours[0]
    assert not (tmp_path / "report").exists()


def test_out_may_not_hold_the_current_folder(files, tmp_path, capsys,
                                             monkeypatch, model_calls):
    """The output folder is replaced whole: never the one a shell is in."""
    monkeypatch.chdir(tmp_path)
    message = _fails(_evaluate_argv(files, ".", "--overwrite"), capsys)
    assert "--out . holds the current folder" in message
    assert model_calls == [] and list(tmp_path.iterdir()) == []


# Threat models ---------------------------------------------------------------


def test_evaluate_in_l2_runs_the_attacks_that_support_it(files, tmp_path,
                                                          capsys):
    out = tmp_path / "report"
    argv = _evaluate_argv(files, out, "--norm", "l2", "--num_examples", "8")
    argv[argv.index("--eps") + 1] = "0.5,1.0"
    argv[argv.index("--step_size") + 1] = "0.2"
    del argv[argv.index("--attacks"):argv.index("--attacks") + 2]
    cli.main(argv)
    results = Results.load(str(out))
    assert results.norm == "l2"
    # The default attacks less C&W, which is L-inf only.
    assert results.attack_names == ["fgsm", "bim", "pgd"]
    assert list(_table(out)["pgd"]) == ["0.5", "1"]
    assert 0 <= results.accuracy("model", "pgd", 1.0) <= results.accuracy(
        "model")


@pytest.mark.parametrize("extra, expected", [
    (["--norm", "l2", "--attacks", "fgsm,cw"],
     "attack 'cw' supports --norm linf, not l2"),
    (["--norm", "l1", "--attacks", "square"],
     "attack 'square' supports --norm linf, l2, not l1"),
    (["--norm", "l2", "--eps", None], "--norm l2 needs --eps"),
    (["--norm", "l3"], "invalid choice: 'l3'"),
])
def test_a_norm_the_attacks_do_not_support_is_refused_before_any_model_call(
    extra, expected, files, tmp_path, capsys, model_calls
):
    argv = _evaluate_argv(files, tmp_path / "report")
    for flag, value in zip(extra[::2], extra[1::2]):
        if value is None:
            del argv[argv.index(flag):argv.index(flag) + 2]
        else:
            argv = _set_flag(argv, flag, value)
    assert expected in _fails(argv, capsys)
    assert model_calls == []
    assert list(tmp_path.iterdir()) == []


# Shards, resume, merge and processes -----------------------------------------


@pytest.mark.parametrize("value, expected", [
    ("2/2", "'2/2': the shard index i must satisfy 0 <= i < n"),
    ("-1/2", "must satisfy 0 <= i < n"),
    ("0/0", "must satisfy 0 <= i < n"),
    ("1", "'1' is not i/n"),
    ("a/b", "'a/b' is not i/n"),
    ("1/2/3", "is not i/n"),
])
def test_a_bad_shard_is_one_line(value, expected, files, tmp_path, capsys):
    argv = _evaluate_argv(files, tmp_path / "report", f"--shard={value}")
    message = _fails(argv, capsys)
    assert message.startswith("keras-gradreg: error: argument --shard: ")
    assert expected in message
    assert not (tmp_path / "report").exists()


@pytest.mark.parametrize("extra, expected", [
    (["--shard", "3/8"], "8 shards of 1 chunks (24 examples in batches of "
     "256): give at most 1 shards"),
    (["--processes", "2", "--shard", "0/2", "--batch_size", "8"],
     "give --processes or --shard, not both"),
    (["--processes", "0"], "--processes must be >= 1"),
])
def test_shards_that_do_not_fit_are_refused_before_any_model_call(
    extra, expected, files, tmp_path, capsys, model_calls
):
    argv = _evaluate_argv(files, tmp_path / "report", *extra)
    assert expected in _fails(argv, capsys)
    assert model_calls == []
    assert list(tmp_path.iterdir()) == []


def _shard_outputs(files, folder, eps="0.05,0.10", shards=(0, 1)):
    """The --out folders of fgsm shards i/2 of the 24 examples."""
    outs = []
    for index in shards:
        out = folder / f"shard{index}-{eps}"
        argv = _set_flag(_evaluate_argv(files, out, "--shard", f"{index}/2",
                                        "--batch_size", "8"), "--eps", eps)
        cli.main(_set_flag(argv, "--attacks", "fgsm"))
        outs.append(out)
    return outs


def test_merge_errors_are_one_line_and_write_nothing(files, tmp_path, capsys):
    first, second = _shard_outputs(files, tmp_path)
    _, other_eps = _shard_outputs(files, tmp_path, eps="0.2", shards=(0, 1))
    capsys.readouterr()
    out = tmp_path / "merged"
    cases = [
        ([first, other_eps], "differ in eps_values"),
        ([first, first], "overlap: example 0"),
        ([first, tmp_path / "missing"], "is not a folder of results"),
        ([first, files], "cannot read part"),
    ]
    for parts, expected in cases:
        assert expected in _fails(["merge", out, *parts], capsys)
        assert not out.exists()
    cli.main(["merge", str(out), str(first), str(second)])
    printed = capsys.readouterr().out
    assert "Merged 2 parts: 24 examples." in printed
    assert "clean accuracy" in printed and f"to {out}." in printed
    assert list(_table(out)["fgsm"]) == list(KEYS)
    assert "--overwrite" in _fails(["merge", out, first, second], capsys)
    cli.main(["merge", str(out), str(first), str(second), "--overwrite"])


SCALE_FLAGS = ["--attacks", "autoattack,fgsm", "--autoattack_version", "fast",
               "--apgd_steps", "4", "--batch_size", "6", "--worst_case_only"]


@pytest.fixture(scope="module")
def scale(files, tmp_path_factory):
    """Data labelled mostly by the model itself (so that the attacks have
    examples to break) and one uninterrupted worst-case evaluation."""
    folder = tmp_path_factory.mktemp("scale")
    model = keras.models.load_model(files / "model.keras")
    with np.load(files / "data.npz") as data:
        x = data["x"]
    y = np.argmax(np.asarray(model(x)), -1)
    y[::5] = (y[::5] + 1) % CLASSES
    np.savez(folder / "data.npz", x=x, y=y)
    whole = folder / "whole"
    cli.main(_scale_argv(files, folder, whole))
    return folder, Results.load(str(whole))


def _scale_argv(files, folder, out, *extra):
    argv = _evaluate_argv(files, out, *SCALE_FLAGS, *extra)
    argv[argv.index("--attacks") + 1] = "autoattack,fgsm"
    return _set_flag(argv, "--dataset", f"npz:{folder / 'data.npz'}")


def _same_results(a: Results, b: Results) -> None:
    assert a.array_keys() == b.array_keys()
    for key in a.array_keys():
        np.testing.assert_array_equal(a.arrays()[key], b.arrays()[key],
                                      err_msg=str(key))
    assert a.to_dict()["models"] == b.to_dict()["models"]


def _shard_process(files, folder, index, fault=None):
    """``keras-gradreg evaluate --shard INDEX/2 --resume`` in a subprocess."""
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2",
               PYTHONPATH=os.pathsep.join(
                   [str(REPO), os.environ.get("PYTHONPATH", "")]))
    if fault:
        env["KGR_FAULT_AFTER"] = fault
    argv = _scale_argv(files, folder, folder / f"part{index}", "--shard",
                       f"{index}/2", "--resume", folder / f"chunks{index}")
    return subprocess.run(
        [sys.executable, "-m", "keras_gradreg", *map(str, argv)],
        capture_output=True, text=True, cwd=REPO, env=env, timeout=600)


def test_autoattack_shards_killed_mid_chunk_resume_and_merge_exactly(
    files, scale, capsys
):
    """Two shards in two processes, one killed inside its second chunk and
    run again: merged, per example exactly what one evaluate gives."""
    folder, whole = scale
    # 4 chunks of 6; shard 0 holds chunks 0 and 2, each crafting AutoAttack
    # and FGSM at 2 eps: the 6th attack is inside chunk 2.
    killed = _shard_process(files, folder, 0, fault="attack#6")
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-3000:]
    assert sorted(os.listdir(folder / "chunks0")) == [
        "chunk-000000.npz", "run.json"]
    assert not (folder / "part0").exists()
    for index in (0, 1):
        done = _shard_process(files, folder, index)
        assert done.returncode == 0, done.stderr[-3000:]
        assert f"shard {index} of 2" in done.stdout
    assert sorted(os.listdir(folder / "chunks0")) == [
        "chunk-000000.npz", "chunk-000002.npz", "run.json"]
    merged = folder / "merged"
    cli.main(["merge", str(merged), str(folder / "part0"),
              str(folder / "part1")])
    printed = capsys.readouterr().out
    _same_results(Results.load(str(merged)), whole)
    assert whole.worst_case_only and whole.attack_names[0] == "autoattack"
    assert 0 < whole.accuracy("model", "worst_case", 0.1) < whole.accuracy(
        "model")
    assert json.loads((merged / "results.json").read_text())["sections"][
        cli.EVALUATE_SECTION]["data"] == _table(folder / "whole")
    assert "clean accuracy" in printed


def test_processes_give_exactly_what_one_process_gives(files, scale, capsys):
    folder, whole = scale
    out, resume = folder / "processes", folder / "resume"
    cli.main(_scale_argv(files, folder, out, "--processes", "2", "--resume",
                         resume))
    printed = capsys.readouterr().out
    assert "Running 2 shard processes." in printed
    _same_results(Results.load(str(out)), whole)
    assert _table(out) == _table(folder / "whole")
    assert sorted(os.listdir(resume)) == ["shard-0-of-2", "shard-1-of-2"]
    assert sorted(os.listdir(out)) == sorted(
        os.listdir(folder / "whole"))  # no parts left behind
