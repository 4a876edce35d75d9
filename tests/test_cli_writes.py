"""The command line's outputs under interrupts and kills: the old outputs or
the new, never a partial file or a mix of two runs. Interrupts and failures
run in-process; kills SIGKILL a ``python -m keras_gradreg`` subprocess at a
named step (``KGR_FAULT_AFTER``), and the next run removes what they left."""

import os
import pathlib
import signal
import subprocess
import sys
import time

import keras
import pytest

from keras_gradreg import GradRegModel
from keras_gradreg import Results
from keras_gradreg import cli
from keras_gradreg.evaluation import _files

from _cli import REPO  # tests/ is on sys.path
from _cli import _evaluate_argv
from _cli import _fails
from _cli import _finetune_argv

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
