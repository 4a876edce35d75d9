"""``keras-gradreg evaluate`` at scale: ``--shard`` and ``--processes``
checks, ``keras-gradreg merge``, and AutoAttack in shards (one killed and
resumed) or in processes, which give per example exactly what one evaluate
gives."""

import json
import os
import signal
import subprocess
import sys

import keras
import numpy as np
import pytest

from keras_gradreg import Results
from keras_gradreg import cli

from _cli import CLASSES  # tests/ is on sys.path
from _cli import KEYS
from _cli import REPO
from _cli import _evaluate_argv
from _cli import _fails
from _cli import _set_flag
from _cli import _table


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
