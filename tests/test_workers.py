"""benchmarks/_workers.py: units claimed once across processes, and the
processes themselves (a tiny script stands in for a benchmark)."""

import json
import os
import pathlib
import sys
import textwrap

import pytest

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]
                       / "benchmarks"))
import _workers  # noqa: E402

SETTINGS = {"epochs": 3}


def _claim(out, todo, worker, done=(), settings=SETTINGS):
    return _workers.claim_next(
        str(out), todo, settings, worker, done=lambda: set(done),
        describe=lambda unit: {"name": unit[0], "eps": unit[1]},
        key=lambda line: (line["name"], line["eps"]))


def test_each_unit_is_claimed_once_and_done_units_never(tmp_path):
    todo = [("a", 0.1), ("a", 0.2), ("b", 0.1)]
    done = {("a", 0.1)}
    assert [_claim(tmp_path, todo, 1, done), _claim(tmp_path, todo, 2, done),
            _claim(tmp_path, todo, 1, done | {("a", 0.2)}),
            # Claims made with other settings do not count.
            _claim(tmp_path, todo, 3, settings={"epochs": 4})] == [
        ("a", 0.2), ("b", 0.1), None, ("a", 0.1)]
    lines = [json.loads(t) for t in
             (tmp_path / _workers.CLAIMS).read_text().splitlines()]
    assert [(line["name"], line["eps"], line["worker"]) for line in lines] == [
        ("a", 0.2, 1), ("b", 0.1, 2), ("a", 0.1, 3)]
    assert lines[0]["settings"] == SETTINGS


def test_a_restarted_worker_takes_back_its_unfinished_unit(tmp_path):
    todo = [("a", 0.1), ("a", 0.2), ("b", 0.1)]
    assert _claim(tmp_path, todo, 5) == ("a", 0.1)
    # Worker 5 stopped before finishing ("a", 0.1); worker 1 leaves it alone.
    assert _claim(tmp_path, todo, 1) == ("a", 0.2)
    # Worker 5 started again takes it back, then goes on past worker 1's.
    assert _claim(tmp_path, todo, 5) == ("a", 0.1)
    assert _claim(tmp_path, todo, 5, done={("a", 0.1)}) == ("b", 0.1)


def test_worker_arguments():
    assert _workers.worker_argv(
        ["--workers=2", "--models", "a.keras", "--worker", "0"], 3) == [
        "--models", "a.keras", "--worker=3"]


SCRIPT = """
    import json, os, sys
    out = sys.argv[1]
    worker = sys.argv[-1].split("=")[1]
    with open(os.path.join(out, f"worker{worker}.json"), "w") as handle:
        json.dump({"argv": sys.argv[1:],
                   "threads": [os.environ["TF_NUM_INTRAOP_THREADS"],
                               os.environ["TF_NUM_INTEROP_THREADS"]]}, handle)
    sys.exit(1 if "--fail" in sys.argv and worker == "1" else 0)
"""


def test_run_workers_starts_single_threaded_copies(tmp_path):
    script = tmp_path / "script.py"
    script.write_text(textwrap.dedent(SCRIPT))
    out = tmp_path / "out"
    out.mkdir()
    (out / _workers.CLAIMS).write_text('{"stale": 1}\n')
    _workers.run_workers(str(script), [str(out), "--workers=2"], str(out), 2)
    for index in (0, 1):
        record = json.loads((out / f"worker{index}.json").read_text())
        assert record == {"argv": [str(out), f"--worker={index}"],
                          "threads": ["1", "1"]}
    assert not (out / _workers.CLAIMS).exists()  # an old run's claims
    with pytest.raises(RuntimeError, match=r"Workers \[1\] failed"):
        _workers.run_workers(str(script), [str(out), "--fail"], str(out), 2)


def test_atomic_write_leaves_a_readable_file(tmp_path):
    path = tmp_path / "table.md"
    _workers.write_atomically(str(path), "one\n")
    _workers.write_atomically(str(path), "two\n")
    assert path.read_text() == "two\n"
    assert os.stat(path).st_mode & 0o777 == 0o644
    assert os.listdir(tmp_path) == ["table.md"]
