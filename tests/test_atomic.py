"""Tests of keras_gradreg._atomic: outputs replaced as one unit, stale
scratch removed only when its process is gone."""

import fcntl
import os
import subprocess
import sys

import pytest

from keras_gradreg import _atomic


def _tree(folder) -> dict:
    return {os.path.relpath(os.path.join(root, name), folder):
            open(os.path.join(root, name), "rb").read()
            for root, _, names in os.walk(folder) for name in names}


def _write(folder, files: dict) -> None:
    for name, text in files.items():
        path = os.path.join(folder, name)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w") as handle:
            handle.write(text)


@pytest.mark.parametrize("exchange", [True, False])
def test_a_folder_is_replaced_whole_and_other_entries_carried(
    tmp_path, monkeypatch, exchange
):
    if not exchange:  # the fallback of file systems without an exchange
        monkeypatch.setattr(_atomic, "_exchange", lambda a, b: False)
    out = tmp_path / "report"
    _write(out, {"a.txt": "old a", "b.txt": "old b", "notes.txt": "mine",
                 "sub/kept.txt": "mine too"})
    output = _atomic.Output(str(out), keep=lambda name: name != "b.txt")
    output.prepare()
    _write(output.target, {"a.txt": "new a"})
    assert _tree(out)["a.txt"] == b"old a"  # nothing visible changes yet
    output.commit()
    assert _tree(out) == {"a.txt": b"new a", "notes.txt": b"mine",
                          "sub/kept.txt": b"mine too"}
    assert sorted(os.listdir(tmp_path)) == ["report"]


def test_a_file_is_replaced_and_missing_folders_removed_on_discard(tmp_path):
    path = tmp_path / "m.keras"
    path.write_text("old")
    output = _atomic.Output(str(path), folder=False)
    output.prepare()
    with open(output.target, "w") as handle:
        handle.write("new")
    output.commit()
    assert path.read_text() == "new"
    assert sorted(os.listdir(tmp_path)) == ["m.keras"]
    deep = _atomic.Output(str(tmp_path / "a" / "b" / "m.keras"), folder=False)
    deep.prepare()
    deep.discard()
    assert sorted(os.listdir(tmp_path)) == ["m.keras"]


def test_stale_scratch_goes_but_live_and_other_scratch_stays(tmp_path):
    out = tmp_path / "report"
    live = _atomic.Output(str(out))
    live.prepare()
    # A scratch folder whose process is gone: its lock file is free.
    stale = tmp_path / ".report.partial-dead"
    _write(stale, {"results.json": ""})
    (tmp_path / ".report.partial-dead.lock").write_text("")
    # Lock files of another output, and a user's folder of a similar name.
    (tmp_path / ".other.partial-dead.lock").write_text("")
    _write(tmp_path / ".report.partial-mine", {"keep.txt": "x"})
    removed = _atomic.remove_stale(str(out))
    assert removed == [str(stale)]
    assert sorted(os.listdir(tmp_path)) == sorted([
        os.path.basename(live.scratch), os.path.basename(live._lock_path),
        ".other.partial-dead.lock", ".report.partial-mine"])
    live.discard()
    assert sorted(os.listdir(tmp_path)) == [".other.partial-dead.lock",
                                            ".report.partial-mine"]


def test_a_scratch_held_by_another_process_is_kept(tmp_path):
    lock = tmp_path / ".report.partial-busy.lock"
    lock.write_text("")
    _write(tmp_path / ".report.partial-busy", {"x": ""})
    holder = subprocess.Popen(
        [sys.executable, "-c",
         "import fcntl, sys, time\n"
         f"handle = open({str(lock)!r})\n"
         "fcntl.flock(handle, fcntl.LOCK_EX)\n"
         "print('locked', flush=True)\n"
         "sys.stdin.read()\n"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        assert _atomic.remove_stale(str(tmp_path / "report")) == []
        assert (tmp_path / ".report.partial-busy").is_dir()
    finally:
        holder.communicate("")
    assert _atomic.remove_stale(str(tmp_path / "report")) == [
        str(tmp_path / ".report.partial-busy")]
    assert os.listdir(tmp_path) == []


def test_the_fallback_swap_restores_an_output_a_kill_left_aside(tmp_path):
    """Without an atomic exchange the old folder is renamed aside first; a
    kill before the new one is in place leaves the path missing, and the
    next run puts the old folder back."""
    out = tmp_path / "report"
    _write(tmp_path / ".report.partial-x.old", {"a.txt": "old"})
    _write(tmp_path / ".report.partial-x", {"a.txt": "new"})
    (tmp_path / ".report.partial-x.lock").write_text("")
    _atomic.remove_stale(str(out))
    assert _tree(out) == {"a.txt": b"old"}
    assert os.listdir(tmp_path) == ["report"]


def test_an_unwritable_place_fails_in_prepare(tmp_path, monkeypatch):
    (tmp_path / "file").write_text("")
    with pytest.raises(NotADirectoryError):
        _atomic.Output(str(tmp_path / "file" / "report")).prepare()
    monkeypatch.setattr(_atomic.shutil, "disk_usage",
                        lambda path: type("Usage", (), {"free": 10})())
    with pytest.raises(OSError, match="No space left"):
        _atomic.Output(str(tmp_path / "r")).prepare(needed_bytes=1000)
    assert sorted(os.listdir(tmp_path)) == ["file"]


def test_fault_point_kills_at_the_named_occurrence(tmp_path):
    code = ("from keras_gradreg import _atomic\n"
            "for step in range(3):\n"
            "    print(step, flush=True)\n"
            "    _atomic.fault_point('swap')\n")
    for wanted, printed in (("swap", "0"), ("swap#2", "0 1"), ("", "0 1 2"),
                            ("swapped", "0 1 2")):
        done = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True,
            env=dict(os.environ, KGR_FAULT_AFTER=wanted))
        assert " ".join(done.stdout.split()) == printed
        assert done.returncode == (-9 if printed != "0 1 2" else 0)


def test_the_lock_is_a_real_flock(tmp_path):
    output = _atomic.Output(str(tmp_path / "report"))
    output.prepare()
    with open(output._lock_path) as handle:
        with pytest.raises(BlockingIOError):
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    output.discard()
