"""benchmarks/long_runs.sh: every command it would run parses with the flags
its script defines (the run itself takes hours; ``PYTHON=echo`` prints the
commands instead)."""

import doctest
import os
import pathlib
import shlex
import shutil
import subprocess
import sys
import time

import pytest
from absl import flags

from _scripts import load_script  # noqa: E402  (tests/ is on sys.path)

ROOT = pathlib.Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "benchmarks" / "long_runs.sh"


def _load(path: pathlib.Path):
    return load_script(path)


def _commands(step, **env):
    done = subprocess.run(
        ["bash", str(SCRIPT), step], capture_output=True, text=True,
        env={**os.environ, "PYTHON": "echo", **env}, timeout=60)
    assert done.returncode == 0, done.stderr
    return [shlex.split(line) for line in done.stdout.splitlines()]


@pytest.mark.parametrize("step, scripts", [
    ("models", ["examples/mnist.py"]),
    ("autoattack", ["benchmarks/autoattack_eval.py"]),
    ("front", ["benchmarks/robustness_per_cost.py"] * 2),
    ("grid", ["benchmarks/robustness_per_cost.py"] * 3),
    ("gridaa", ["benchmarks/robustness_per_cost.py",
                "benchmarks/autoattack_eval.py"]),
    ("grid10", ["benchmarks/robustness_per_cost.py"]),
    ("all", ["examples/mnist.py", "benchmarks/autoattack_eval.py"]
     + ["benchmarks/robustness_per_cost.py"] * 3
     + ["benchmarks/autoattack_eval.py"]
     + ["benchmarks/robustness_per_cost.py"] * 4),
])
def test_each_command_parses_with_its_scripts_flags(step, scripts, tmp_path):
    commands = _commands(step, DATA=str(tmp_path), RUNS=str(tmp_path / "r"))
    assert [command[0] for command in commands] == scripts
    for script, *argv in commands:
        module = _load(ROOT / script)
        flag_values = flags.FlagValues()
        module.define_flags(flag_values)
        flag_values([script, *argv])  # raises on an unknown or bad flag
        assert flag_values["data_dir"].value == str(tmp_path)
        assert flag_values["out"].value.startswith(str(tmp_path / "r"))
        if script.endswith("robustness_per_cost.py"):  # the steadier cost
            assert flag_values["cost"].value == "cpu"


def _recipes_of(command):
    return command[command.index("--recipes") + 1].split(",")


def test_the_grid_runs_the_front_runners_first_then_the_rest(tmp_path):
    runs = str(tmp_path)  # not the checkout's runs/, whose lock a run may hold
    retiming, front, command = _commands("grid", RUNS=runs)
    assert _commands("front", RUNS=runs) == [retiming, front]
    assert "--retime" in retiming and "--retime" not in command
    recipes = _recipes_of(command)
    module = _load(ROOT / "benchmarks" / "robustness_per_cost.py")
    assert recipes[0] == "natural_relu" and recipes[-1] == "all"
    assert _recipes_of(front) == recipes[:-1]
    assert set(recipes[:-1]) <= set(module.recipe_table(0.1))
    flag_values = flags.FlagValues()
    module.define_flags(flag_values)
    flag_values(command)
    names = module._recipes(module.recipe_table(0.1), flag_values)
    assert names[:len(recipes) - 1] == recipes[:-1]
    assert sorted(names) == sorted(module.recipe_table(0.1))


def test_autoattack_on_the_grid_reads_models_it_trained_first(tmp_path):
    """gridaa first trains its recipes (with --save_models) as the grid
    would, into the grid's folder, then attacks OUT/<recipe>.keras; they
    are among the grid's front-runners."""
    retiming, grid = _commands("front", RUNS=str(tmp_path))
    assert retiming[retiming.index("--out") + 1] == grid[grid.index("--out") + 1]
    first, command = _commands("gridaa", RUNS=str(tmp_path))
    out = first[first.index("--out") + 1]
    assert out == grid[grid.index("--out") + 1]
    assert "--save_models" in first
    for flag in ("--epochs", "--test_size"):
        assert first[first.index(flag) + 1] == grid[grid.index(flag) + 1]
    trained = first[first.index("--recipes") + 1].split(",")
    front_runners = grid[grid.index("--recipes") + 1].split(",")
    paths = command[command.index("--models") + 1].split(",")
    assert len(paths) == 4
    for path in paths:
        folder, name = os.path.split(path)
        assert folder == out and name.endswith(".keras")
        assert name[: -len(".keras")] in trained
        assert name[: -len(".keras")] in front_runners
    # The same recipes at 10 epochs.
    (ten,) = _commands("grid10", RUNS=str(tmp_path))
    assert ten[ten.index("--recipes") + 1].split(",") == [
        os.path.basename(path)[: -len(".keras")] for path in paths]
    assert ten[ten.index("--epochs") + 1] == "10"


def test_all_checks_the_recommendation_before_the_rest_of_the_grid(tmp_path):
    """`all`: the front-runners, AutoAttack on the recommended ones and
    their 10 epochs come before the rest of the grid, which comes last."""
    commands = _commands("all", RUNS=str(tmp_path))
    steps = [(os.path.basename(c[0]), c[c.index("--epochs") + 1]
              if "--epochs" in c else None,
              "all" in _recipes_of(c) if "--recipes" in c else None)
             for c in commands]
    assert steps[2:] == [
        ("robustness_per_cost.py", "3", False),  # --retime
        ("robustness_per_cost.py", "3", False),  # the front-runners
        ("robustness_per_cost.py", "3", False),  # gridaa's models
        ("autoattack_eval.py", None, None),
        ("robustness_per_cost.py", "10", False),
        ("robustness_per_cost.py", "3", False),  # grid: front (done by then)
        ("robustness_per_cost.py", "3", False),
        ("robustness_per_cost.py", "3", True)]   # the rest


def test_models_evaluated_after_their_last_training_are_skipped(tmp_path):
    """The models step evaluates again only when a model is newer than
    results.json (or either is missing)."""
    folder = tmp_path / "mnist_10ep_aa"
    folder.mkdir()
    names = ["fgsm_rs_at", "logit_reg", "xent_reg", "natural"]
    for index, name in enumerate(names):
        (folder / f"{name}.keras").write_text("")
        os.utime(folder / f"{name}.keras", (1000 + index, 1000 + index))
    assert _commands("models", RUNS=str(tmp_path))[0][0] == "examples/mnist.py"
    (folder / "results.json").write_text("{}")
    os.utime(folder / "results.json", (2000, 2000))
    assert _commands("models", RUNS=str(tmp_path)) == [
        ["models:", "trained", "and", "evaluated",
         f"({folder}/results.json);", "skipped"]]
    os.utime(folder / "natural.keras", (3000, 3000))  # retrained since
    assert _commands("models", RUNS=str(tmp_path))[0][0] == "examples/mnist.py"


def test_unknown_step_is_a_usage_error():
    done = subprocess.run(["bash", str(SCRIPT), "everything"],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and "usage:" in done.stderr


@pytest.mark.skipif(shutil.which("flock") is None, reason="needs flock")
@pytest.mark.parametrize("held", ["gridaa", "grid"])
def test_a_step_already_running_is_waited_for(tmp_path, held):
    """Two processes never train into the same folders: gridaa waits for
    another gridaa, and for a grid run (it trains its models into the grid's
    folder), here held by a process that holds the lock until told to let
    go."""
    runs = tmp_path / "r"
    runs.mkdir()
    ready, release = tmp_path / "ready", tmp_path / "release"
    holder = subprocess.Popen(
        ["flock", str(runs / f".long_runs.{held}.lock"), "sh", "-c",
         f"touch {ready}; while [ ! -e {release} ]; do sleep 0.1; done"])
    while not ready.exists():
        time.sleep(0.05)
    step = subprocess.Popen(
        ["bash", str(SCRIPT), "gridaa"], stdout=subprocess.PIPE, text=True,
        env={**os.environ, "PYTHON": "echo", "RUNS": str(runs)})
    with pytest.raises(subprocess.TimeoutExpired):
        step.wait(timeout=1.0)  # still waiting for the lock
    release.touch()
    out, _ = step.communicate(timeout=30)
    assert holder.wait(timeout=30) == 0 and step.returncode == 0
    assert "benchmarks/autoattack_eval.py" in out


def test_status_reports_what_the_files_say(tmp_path):
    """``long_runs.sh status`` reads the steps' files: a trained model, one in
    training, AutoAttack units done, grid recipes done and in training."""
    ten = tmp_path / "mnist_10ep_aa"
    (ten / "backup" / "fgsm_rs_at").mkdir(parents=True)
    (ten / "backup" / "fgsm_rs_at" / "progress.json").write_text(
        '{"epochs_done": 6}')
    (ten / "natural.keras").write_text("")
    (ten / "autoattack").mkdir()
    unit = ('{{"model": "natural", "eps": {eps}, "start": 0, "stop": 100, '
            '"wall_s": {wall}}}\n')
    (ten / "autoattack" / "results.jsonl").write_text(
        unit.format(eps=0.1, wall=360) + unit.format(eps=0.2, wall=36))
    # A worker's claims: one unit finished since, one still running.
    claim = ('{{"model": "natural", "eps": {eps}, "start": 0, "stop": 100, '
             '"worker": 1}}\n')
    (ten / "autoattack" / "claims.jsonl").write_text(
        claim.format(eps=0.2) + claim.format(eps=0.3))
    grid = tmp_path / "robustness_per_cost"
    (grid / "backup" / "nfgsm_eps0.1_relu").mkdir(parents=True)
    (grid / "backup" / "logit_l1_c0.03_gelu").mkdir()
    (grid / "backup" / "logit_l1_c0.03_gelu" / "evaluation.json").write_text(
        '{"identity": {}, "pieces": {"0.1": {"apgd_ce": {}, "pgd": {}}, '
        '"0.2": {"apgd_ce": {}}}}')
    # A re-timed recipe has a second line.
    (grid / "results.jsonl").write_text('{"recipe": "natural_relu"}\n' * 2)
    done = subprocess.run(
        ["bash", str(SCRIPT), "status"], capture_output=True, text=True,
        env={**os.environ, "PYTHON": sys.executable, "RUNS": str(tmp_path)},
        timeout=60)
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert "fgsm_rs_at: in training, 6 epochs done" in out
    assert "natural: trained" in out and "xent_reg: not started" in out
    assert "autoattack: 2 of 120 units done" in out and "natural 2" in out
    # 3.6 s and 0.36 s per image, 900 images left of each: 3,564 s.
    assert ("at the pace so far: 1.0 h of one worker's time left for the 2 of "
            "12 (model, eps) pairs started; the others come on top") in out
    assert out.count(", worker 1") == 1
    assert ("claimed, not done (running, or left by a stopped run):\n"
            "    natural eps 0.3 images 0-100, worker 1") in out
    assert "1 recipes done: natural_relu" in out
    assert "in training: nfgsm_eps0.1_relu, 0 epochs done" in out
    assert ("in evaluation: logit_l1_c0.03_gelu, 3 (eps, attack) pairs done"
            in out)
    assert "gridaa: 0 of 120 units done" in out


def test_status_module_examples():
    module = _load(ROOT / "benchmarks" / "_long_runs_status.py")
    failures, tried = doctest.testmod(module)
    assert tried > 0 and failures == 0


def test_kept_lines_come_back_on_a_fresh_machine(tmp_path):
    runs, keep = tmp_path / "runs", tmp_path / "kept"
    env = {**os.environ, "PYTHON": "echo", "RUNS": str(runs),
           "KEEP": str(keep), "DATA": str(tmp_path)}
    grid = runs / "robustness_per_cost" / "results.jsonl"
    aa = runs / "robustness_per_cost" / "autoattack" / "results.jsonl"
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
    assert not (keep / "robustness_per_cost_autoattack.jsonl").exists()
    shutil.rmtree(runs)  # a fresh machine
    kept.write_text(kept.read_text() + '{"recipe": "c"}\n')
    (keep / "robustness_per_cost_autoattack.jsonl").write_text('{"u": 1}\n')
    grid.parent.mkdir(parents=True)
    grid.write_text('{"recipe": "d"}\n')  # a line only this machine has
    step("front")  # takes the kept lines back before it runs
    assert grid.read_text().splitlines() == [
        '{"recipe": "d"}', '{"recipe": "a"}', '{"recipe": "b"}',
        '{"recipe": "c"}']
    assert aa.read_text() == '{"u": 1}\n'
    step("keep")
    assert kept.read_text().splitlines()[-1] == '{"recipe": "d"}'


def test_report_draws_each_grid_with_lines_from_the_kept_ones(tmp_path):
    keep = tmp_path / "kept"
    runs = str(tmp_path / "r")
    assert _commands("report", RUNS=runs, KEEP=str(keep),
                     DATA=str(tmp_path)) == []  # no lines: nothing to draw
    keep.mkdir()
    (keep / "robustness_per_cost.jsonl").write_text('{"recipe": "a"}\n')
    command, = _commands("report", RUNS=runs, KEEP=str(keep),
                         DATA=str(tmp_path))
    assert "--report" in command and "--epochs" in command
    assert command[command.index("--epochs") + 1] == "3"
    assert command[command.index("--out") + 1] == f"{runs}/robustness_per_cost"
    module = _load(ROOT / "benchmarks" / "robustness_per_cost.py")
    flag_values = flags.FlagValues()
    module.define_flags(flag_values)
    flag_values(command)  # the grid's own flags
    (keep / "robustness_per_cost_10ep.jsonl").write_text('{"recipe": "a"}\n')
    ten = _commands("report", RUNS=runs, KEEP=str(keep), DATA=str(tmp_path))
    assert [c[c.index("--epochs") + 1] for c in ten] == ["3", "10"]
