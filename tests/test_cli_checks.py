"""What the command line refuses before any work: model and data files it
cannot use, a bad value of any numeric flag, argparse's errors, and outputs it
cannot write. Each gets one error line, before any model call and with
nothing written."""

import os

import pytest

from keras_gradreg import cli

from _cli import ATTACK_FLAGS  # tests/ is on sys.path
from _cli import _edit
from _cli import _evaluate_argv
from _cli import _fails
from _cli import _finetune_argv
from _cli import _set_flag

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


@pytest.mark.parametrize("case", sorted(BAD_INPUTS))
def test_bad_input_gets_one_line_and_writes_nothing(
    case, files, tmp_path, capsys
):
    edits, expected = BAD_INPUTS[case]
    out = tmp_path / "report"
    argv = _edit(_evaluate_argv(files, out), files, edits)
    assert expected in _fails(argv, capsys)
    assert not out.exists()


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


def test_out_may_not_hold_the_current_folder(files, tmp_path, capsys,
                                             monkeypatch, model_calls):
    """The output folder is replaced whole: never the one a shell is in."""
    monkeypatch.chdir(tmp_path)
    message = _fails(_evaluate_argv(files, ".", "--overwrite"), capsys)
    assert "--out . holds the current folder" in message
    assert model_calls == [] and list(tmp_path.iterdir()) == []
