"""benchmarks/long_runs.sh: every command it would run parses with the flags
its script (or ``keras-gradreg``) defines (the run itself takes hours;
``PYTHON=echo`` prints the commands instead), the shards cover every part
once, kept lines come back, and ``report`` redraws the committed grid exactly."""

import os
import pathlib
import re
import shlex
import shutil
import subprocess
import sys

import pytest
from absl import flags

from keras_gradreg import cli

from _scripts import load_script  # noqa: E402  (tests/ is on sys.path)

ROOT = pathlib.Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "benchmarks" / "long_runs.sh"


def _commands(step, **env):
    done = subprocess.run(
        ["bash", str(SCRIPT), step], capture_output=True, text=True,
        env={**os.environ, "PYTHON": "echo", **env}, timeout=60)
    assert done.returncode == 0, done.stderr
    return [shlex.split(line) for line in done.stdout.splitlines()]


def _script(command):
    """The script a command runs: a path, or ``keras-gradreg <command>``."""
    return f"keras-gradreg {command[2]}" if command[:2] == ["-m", "keras_gradreg"] else (
        command[0])


def _value(command, flag):
    return command[command.index(flag) + 1] if flag in command else None


RPC, LINES = "benchmarks/robustness_per_cost.py", "benchmarks/autoattack_lines.py"
EVALUATE = "keras-gradreg evaluate"
# AutoAttack on four models (each in SHARDS processes of one command), the lines.
AA = [EVALUATE] * 4 + [LINES]


@pytest.mark.parametrize("step, scripts", [
    ("models", ["examples/mnist.py"]),
    ("autoattack", AA),
    ("front", [RPC] * 3),
    ("grid", [RPC] * 6),
    ("gridaa", [RPC] * 3 + AA),
    ("grid10", [RPC] * 3),
    ("all", ["examples/mnist.py"] + AA + [RPC] * 6 + AA + [RPC] * 9),
])
def test_each_command_parses_with_its_scripts_flags(step, scripts, tmp_path):
    commands = _commands(step, DATA=str(tmp_path), RUNS=str(tmp_path / "r"))
    assert [_script(command) for command in commands] == scripts
    for command in commands:
        script = _script(command)
        if script.startswith("keras-gradreg"):  # raises SystemExit on a bad flag
            args = cli.build_parser().parse_args(command[2:])
            paths = [args.out, args.model, args.resume]
            assert all(path.startswith(str(tmp_path / "r")) for path in paths)
            assert args.data_dir == str(tmp_path) and args.worst_case_only
            continue
        module = load_script(ROOT / script)
        flag_values = flags.FlagValues()
        module.define_flags(flag_values)
        flag_values([script, *command[1:]])  # raises on an unknown or bad flag
        assert flag_values["out"].value.startswith(str(tmp_path / "r"))
        if script != LINES:
            assert flag_values["data_dir"].value == str(tmp_path)
        if script == RPC:  # the steadier cost
            assert flag_values["cost"].value == "cpu"


@pytest.mark.parametrize("shards", ["2", "3"])
def test_shards_run_side_by_side_then_one_process_joins_them(tmp_path, shards):
    runs = str(tmp_path)
    commands = _commands("autoattack", RUNS=runs, SHARDS=shards)
    parts = [c for c in commands if _script(c) == EVALUATE]
    for model in ("fgsm_rs_at", "logit_reg", "xent_reg", "natural"):
        folder = f"{runs}/mnist_10ep_aa/autoattack/{model}"
        mine, = [c for c in parts if c[3] == f"{runs}/mnist_10ep_aa/{model}.keras"]
        args = cli.build_parser().parse_args(mine[2:])
        assert (args.processes, args.shard) == (int(shards), None)
        assert (args.resume, args.out) == (f"{folder}/chunks", folder)
    assert _value(commands[-1], "--compare") == f"{runs}/mnist_10ep_aa"
    *grid_parts, report = _commands("grid10", RUNS=runs, SHARDS=shards)
    assert len(grid_parts) == int(shards) and "--report" in report
    assert {_value(c, "--recipes") for c in grid_parts} == {_value(grid_parts[0], "--recipes")}


def test_autoattack_on_the_grid_reads_models_it_trained_first(tmp_path):
    commands = _commands("gridaa", RUNS=str(tmp_path))
    grid, lines = commands[0], commands[-1]
    out = _value(grid, "--out")
    assert "--save_models" in grid
    trained = _value(grid, "--recipes").split(",")
    front_runners = _value(_commands("front", RUNS=str(tmp_path))[0], "--recipes")
    paths = {c[3] for c in commands if _script(c) == EVALUATE}
    assert len(paths) == 4 and _value(lines, "--out") == f"{out}/autoattack"
    assert _value(lines, "--models").split(",") == trained
    for path in paths:
        folder, name = os.path.split(path)
        assert folder == out and name[:-len(".keras")] in trained
        assert name[:-len(".keras")] in front_runners.split(",")
    ten = _commands("grid10", RUNS=str(tmp_path))[0]
    assert _value(ten, "--recipes").split(",") == trained
    assert _value(ten, "--epochs") == "10"


def test_the_grid_runs_the_front_runners_first_then_the_rest(tmp_path):
    commands = _commands("grid", RUNS=str(tmp_path))
    recipes = [_value(c, "--recipes") for c in commands]
    assert recipes[0] == recipes[1] and recipes[2] is None  # the front, report
    assert recipes[3] == recipes[4] == recipes[0] + ",all" and recipes[5] is None
    assert recipes[0].split(",")[0] == "natural_relu"


def test_models_evaluated_after_their_last_training_are_skipped(tmp_path):
    folder = tmp_path / "mnist_10ep_aa"
    folder.mkdir()
    for index, name in enumerate(["fgsm_rs_at", "logit_reg", "xent_reg", "natural"]):
        (folder / f"{name}.keras").write_text("")
        os.utime(folder / f"{name}.keras", (1000 + index, 1000 + index))
    assert _commands("models", RUNS=str(tmp_path))[0][0] == "examples/mnist.py"
    (folder / "results.json").write_text("{}")
    os.utime(folder / "results.json", (2000, 2000))
    assert _commands("models", RUNS=str(tmp_path)) == [
        ["models:", "trained", "and", "evaluated", f"({folder}/results.json);",
         "skipped"]]
    os.utime(folder / "natural.keras", (3000, 3000))  # retrained since
    assert _commands("models", RUNS=str(tmp_path))[0][0] == "examples/mnist.py"


def test_unknown_step_is_a_usage_error():
    done = subprocess.run(["bash", str(SCRIPT), "nonsense"], capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 2 and "usage:" in done.stderr


def test_kept_lines_come_back_on_a_fresh_machine(tmp_path):
    runs, keep = tmp_path / "runs", tmp_path / "kept"
    env = {**os.environ, "PYTHON": "echo", "RUNS": str(runs), "KEEP": str(keep),
           "DATA": str(tmp_path)}
    grid = runs / "robustness_per_cost" / "results.jsonl"
    grid.parent.mkdir(parents=True)
    grid.write_text('{"recipe": "a"}\n{"recipe": "b"}\n')

    def step(name):
        done = subprocess.run(["bash", str(SCRIPT), name], env=env,
                              capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stderr

    step("keep")
    step("keep")  # twice: no line twice
    kept = keep / "robustness_per_cost.jsonl"
    assert kept.read_text() == grid.read_text()
    shutil.rmtree(runs)  # a fresh machine
    kept.write_text(kept.read_text() + '{"recipe": "c"}\n')
    (keep / "robustness_per_cost_autoattack.jsonl").write_text('{"u": 1}\n')
    grid.parent.mkdir(parents=True)
    grid.write_text('{"recipe": "d"}\n')  # a line only this machine has
    step("front")  # takes the kept lines back before it runs
    assert grid.read_text().splitlines() == [
        '{"recipe": "d"}', '{"recipe": "a"}', '{"recipe": "b"}', '{"recipe": "c"}']
    assert (grid.parent / "autoattack" / "results.jsonl").read_text() == '{"u": 1}\n'


def test_report_redraws_the_committed_grids(tmp_path):
    """From a fresh clone: both grids' Markdown as docs/RESULTS.md quotes
    them (the 3-epoch one byte for byte in tests/test_robustness_per_cost)."""
    runs = tmp_path / "runs"
    done = subprocess.run(
        ["bash", str(SCRIPT), "report"], capture_output=True, text=True,
        env={**os.environ, "PYTHON": sys.executable, "RUNS": str(runs)},
        timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    three = (runs / "robustness_per_cost" / "robustness_per_cost.md").read_text()
    ten = (runs / "robustness_per_cost_10ep" / "robustness_per_cost.md").read_text()
    assert done.stdout == three + "\n" + ten + "\n"
    assert re.search(r"by: `python benchmarks/robustness_per_cost.py .*--epochs 3 "
                     r".*--cost cpu .*--report`", three)
    assert "| nfgsm_eps0.1_relu | 1.85 | 99.2 | **94.9** | **77.9** | **2.8** |" in ten
    for folder in ("robustness_per_cost", "robustness_per_cost_10ep"):
        assert (runs / folder / "robustness_per_cost.png").read_bytes()[:4] == b"\x89PNG"
