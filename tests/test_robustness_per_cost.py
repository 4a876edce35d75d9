"""Tests of benchmarks/robustness_per_cost.py, its recipes and its report.

The script runs in this process, each run with its own absl ``FlagValues``,
on tiny IDX files written here, with the paper's CNN, one epoch and a few
attack steps. Its per-example results are checked against the attacks rerun
here on the saved network, resuming against the file it appends to, and the
report drawn from ``benchmarks/measured/`` against the numbers docs/RESULTS.md
quotes.
"""

import hashlib
import json
import os
import pathlib
import shutil
import sys

import keras
import numpy as np
import pytest
from absl import app
from absl import flags

import keras_gradreg
from keras_gradreg import attacks
from keras_gradreg import datasets

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
import _grid_report  # noqa: E402
import _recipes  # noqa: E402

from _data import stripe_mnist  # noqa: E402  (tests/ is on sys.path)
from _scripts import load_script  # noqa: E402

rpc = load_script(ROOT / "benchmarks" / "robustness_per_cost.py")
MEASURED = ROOT / "benchmarks" / "measured"

TINY = ["--epochs=1", "--train_size=100", "--test_size=20", "--eval_steps=2",
        "--pgd_restarts=2", "--eval_eps=0.05,0.3", "--learning_rate=0.003",
        "--eval_batch_size=8"]
ATTACK_NAMES = ["apgd_ce", "apgd_dlr", "pgd"]


@pytest.fixture
def tiny_mnist(tmp_path):
    """IDX files of noisy images with a faint class-dependent stripe."""
    return stripe_mnist(tmp_path / "mnist")


def _run_all(capsys, *runs):
    """Runs main once per argument list, each with fresh flags; returns each
    run's output, usage error and results.jsonl after it."""
    reports = []
    for argv in runs:
        flag_values = flags.FlagValues()
        rpc.define_flags(flag_values)
        capsys.readouterr()
        error = None
        try:
            flag_values(["robustness_per_cost", *argv])
            rpc.main(["robustness_per_cost"], flag_values)
        except app.UsageError as usage_error:
            error = str(usage_error)
        results = os.path.join(flag_values.out, "results.jsonl")
        reports.append({"stdout": capsys.readouterr().out, "error": error,
                        "results": open(results).read()
                        if os.path.exists(results) else None})
    return reports


def _rows(results_text):
    return [json.loads(line) for line in results_text.splitlines()]


def _bools(bits):
    return np.array([b == "1" for b in bits])


def _check_row(row, eps_keys):
    """Worst case, per-attack numbers and attacked counts agree with the
    per-example bits; each attack attacked only what earlier ones left."""
    clean = _bools(row["correct"]["clean"])
    assert len(clean) == 20 and row["clean"] == pytest.approx(clean.mean())
    for key in eps_keys:
        before = clean
        for name in ATTACK_NAMES:
            after = _bools(row["correct"][key][name])
            assert not np.any(after & ~before)
            assert row["attacked"][key][name] == before.sum()
            assert row["per_attack"][key][name] == pytest.approx(after.mean())
            before = after
        assert row["robust"][key] == pytest.approx(before.mean())


def _check_against_saved_network(row, model_path, data_dir):
    """Clean and eps-0.3 results recomputed here on the saved network, each
    attack on what the script's earlier attacks left; the network is barely
    trained, so a near-tie may flip one image per stage."""
    network = keras.models.load_model(model_path)
    x, y = datasets.to_arrays(datasets.load("mnist", "test[:20]", str(data_dir)))

    def correct(inputs, labels):
        return np.argmax(network.predict(inputs, verbose=0), -1) == labels

    clean = _bools(row["correct"]["clean"])
    assert np.sum(correct(x, y) != clean) <= 1 and clean.sum() > 0
    calls = {
        "apgd_ce": lambda a, b: attacks.apgd(network, a, b, 0.3, steps=2, loss="ce", seed=0),
        "apgd_dlr": lambda a, b: attacks.apgd(network, a, b, 0.3, steps=2, loss="dlr", seed=0),
        "pgd": lambda a, b: attacks.pgd(network, a, b, 0.3, 0.375, 2, restarts=2, seed=0),
    }
    before = clean
    for name in ATTACK_NAMES:
        after = _bools(row["correct"]["0.3"][name])
        attacked = np.flatnonzero(before)
        if attacked.size:
            survived = correct(np.asarray(calls[name](x[attacked], y[attacked])),
                               y[attacked])
            assert np.sum(survived != after[attacked]) <= 1, name
        before = after
    assert row["robust"]["0.3"] < row["clean"]  # the attacks bite


def test_script_runs_evaluates_and_resumes(tmp_path, tiny_mnist, capsys):
    out = tmp_path / "out"
    common = [f"--data_dir={tiny_mnist}", f"--out={out}", *TINY]
    two = "--recipes=natural_relu,logit_l1_c0.03_relu"
    (first, second, third, report_only, other, bad_attack, bad_recipe,
     no_results, bad_shard) = _run_all(
        capsys,
        [*common, "--recipes=natural_relu", "--save_models"],
        [*common, two],
        [*common, two],
        [*common, "--report", "--cost=cpu"],
        [*common, two, "--epochs=2"],
        [*common, "--eval_attacks=apgd_ce,deepfool", f"--out={tmp_path}/x"],
        [*common, "--recipes=natural_relu,pgd3", f"--out={tmp_path}/x"],
        [*common, "--report", f"--out={tmp_path}/x"],
        [*common, "--shard=2/2", f"--out={tmp_path}/x"],
    )
    # 1. The reference, checked against the saved network.
    assert first["error"] is None
    assert "[1/1] natural_relu: training" in first["stdout"]
    natural, = _rows(first["results"])
    assert natural["ratio"] == {"wall": 1.0, "cpu": 1.0, "wall_fit": 1.0}
    assert natural["reference"] == "same process"
    assert natural["seconds"]["basis"].startswith("whole fit")
    assert natural["settings"]["run"]["eval_attacks"] == ATTACK_NAMES
    _check_row(natural, ["0.05", "0.3"])
    _check_against_saved_network(natural, out / "natural_relu.keras", tiny_mnist)
    assert not (out / "backup" / "natural_relu").exists()  # kept while it runs

    # 2. Only the new recipe trains, against the stored natural time.
    assert second["error"] is None
    assert "natural_relu: already in" in second["stdout"]
    rows = _rows(second["results"])
    assert [r["recipe"] for r in rows] == ["natural_relu", "logit_l1_c0.03_relu"]
    assert rows[0] == natural
    logit = rows[1]
    assert logit["reference"] == "stored (an earlier process)"
    assert logit["ratio"]["cpu"] == pytest.approx(
        logit["seconds"]["cpu"] / natural["seconds"]["cpu"])
    _check_row(logit, ["0.05", "0.3"])

    # 3. Nothing trains; the report names the command.
    assert ": training" not in third["stdout"]
    assert third["results"] == second["results"]
    assert "| recipe | cost x natural | clean | eps 0.05 | eps 0.3 |" in third["stdout"]
    assert "\nCommand: `python benchmarks/robustness_per_cost.py " in third["stdout"]
    assert (out / "robustness_per_cost.png").read_bytes()[:4] == b"\x89PNG"

    # 4. The report alone, by CPU time.
    assert report_only["error"] is None and ": training" not in report_only["stdout"]
    text = (out / "robustness_per_cost.md").read_text()
    assert "| recipe | cost x natural (cpu) | clean |" in text
    assert "Drawn from the stored result lines (training nothing) by: " in text

    # 5-9. Refused, before anything is written.
    assert "run with other settings (epochs: 1 then, 2 now)" in other["error"]
    assert other["results"] == second["results"]
    assert "Unknown --eval_attacks ['deepfool']" in bad_attack["error"]
    assert "Unknown recipes ['pgd3']" in bad_recipe["error"]
    assert f"--report: no {tmp_path}/x/results.jsonl yet" in no_results["error"]
    assert "--shard must be i/n" in bad_shard["error"]
    assert not (tmp_path / "x").exists()


def test_shards_split_the_recipes_each_timed_in_its_own_process(
        tmp_path, tiny_mnist, capsys):
    out = tmp_path / "out"
    common = [f"--data_dir={tiny_mnist}", f"--out={out}", *TINY,
              "--eval_eps=0.3", "--eval_attacks=pgd",
              "--recipes=natural_relu,natural_gelu,fgsm_rs_eps0.1_relu"]
    shard_0, shard_1, report = _run_all(
        capsys, [*common, "--shard=0/2"], [*common, "--shard=1/2"],
        [*common, "--report"])
    assert shard_0["error"] is shard_1["error"] is report["error"] is None
    rows = {row["recipe"]: row for row in _rows(report["results"])}
    assert set(rows) == {"natural_relu", "natural_gelu", "fgsm_rs_eps0.1_relu"}
    assert "natural_gelu" in shard_1["stdout"] and "natural_gelu" not in shard_0["stdout"]
    for row in rows.values():
        assert row["reference"].startswith("calibrated: 2 steps of natural training")
        assert set(row["reference_after_seconds"]) == set(row["reference_seconds"])
        assert row["ratio"]["cpu"] == pytest.approx(
            row["seconds"]["cpu"] / row["reference_seconds"]["cpu"])
    assert "Robustness per cost" not in shard_0["stdout"]  # the report is drawn once
    assert "| natural_gelu |" in report["stdout"]


def test_the_evaluation_resumes_from_its_finished_chunks(tmp_path):
    network = keras.Sequential([keras.Input((5,)), keras.layers.Dense(3)])
    rng = np.random.default_rng(0)
    x, y = rng.random((24, 5)).astype(np.float32), rng.integers(0, 3, 24)
    settings = {"eval_attacks": ["pgd", "apgd_ce"], "eval_eps": [0.1, 0.5],
                "seed": 0, "eval_batch_size": 8, "eval_steps": 3,
                "pgd_restarts": 1, "attack_survivors": True}
    whole = rpc.evaluate(network, x, y, settings)
    chunks = str(tmp_path / "chunks")
    assert rpc.evaluate(network, x, y, settings, chunks) == whole
    assert len([f for f in os.listdir(chunks) if f.startswith("chunk-")]) == 3
    assert rpc.evaluate(network, x, y, settings, chunks) == whole  # read back
    each = rpc.evaluate(network, x, y, dict(settings, attack_survivors=False))
    assert each["attacked"]["0.5"]["apgd_ce"] == int(_bools(each["correct"]["clean"]).sum())
    assert each["robust"] == whole["robust"] or each["robust"]["0.5"] <= min(
        each["per_attack"]["0.5"].values())


@pytest.mark.parametrize("recipes, first", [
    (None, None), ("nfgsm_eps0.1_gelu,all", ["nfgsm_eps0.1_gelu"]),
    ("logit_l1_c0.03_gelu,natural_relu", ["logit_l1_c0.03_gelu"])])
def test_recipes_in_the_order_asked_the_reference_first(recipes, first):
    flag_values = flags.FlagValues()
    rpc.define_flags(flag_values)
    flag_values(["robustness_per_cost", "--out=o"]
                + ([f"--recipes={recipes}"] if recipes else []))
    table = _recipes.recipe_table(0.1)
    names = rpc.recipes(flag_values, 0.1)
    assert names[0] == "natural_relu" and len(set(names)) == len(names)
    if first is None or recipes.endswith(",all"):
        assert sorted(names) == sorted(table)
    else:
        assert names == ["natural_relu", *first]


def test_every_recipe_builds_with_its_settings(monkeypatch):
    """On a small network whose conv1 has the recipe's activation."""
    def small(activation):
        return keras.Sequential([
            keras.Input((28, 28, 1)),
            keras.layers.Conv2D(2, 3, activation=activation, name="conv1"),
            keras.layers.Flatten(), keras.layers.Dense(10)])

    monkeypatch.setattr(_recipes.models, "mnist_cnn", small)
    found = {}
    for name, recipe in _recipes.recipe_table(0.1).items():
        model, network = _recipes.build_model(recipe, 1e-3)
        values = {k: getattr(model, k) for k in recipe.kwargs}
        found[name] = {k: round(v, 6) if isinstance(v, float)
                       else getattr(v, "__name__", v) for k, v in values.items()}
        found[name]["activation"] = network.get_layer("conv1").activation.__name__
        assert (model is network) == (recipe.trainer == "natural")
    assert found["nfgsm+logit_l1_c0.03_gelu_pf0.5"] == {
        "eps": 0.1, "regularizer": "logit_margin", "norm": "l1", "c": 0.03,
        "penalty_fraction": 0.5, "activation": "gelu"}
    assert found["pgd7_eps0.1_relu"] == {"eps": 0.1, "steps": 7, "activation": "relu"}
    assert isinstance(_recipes.build_model(
        _recipes.recipe_table()["logit_l1_c0.1_relu"], 1e-3)[0],
        keras_gradreg.GradRegModel)


def test_an_interrupted_fit_goes_on_from_its_last_epoch(tmp_path, monkeypatch):
    rng = np.random.default_rng(0)
    x, y = rng.random((20, 28, 28, 1), dtype=np.float32), rng.integers(0, 10, 20)
    settings = {"seed": 0, "learning_rate": 1e-3, "batch_size": 10, "epochs": 3}
    recipe = _recipes.recipe_table(0.1)["natural_relu"]
    backup = str(tmp_path / "backup")
    original = keras_gradreg.callbacks.TrainingRecord.on_epoch_end

    def crash_after_two(self, epoch, logs=None):
        original(self, epoch, logs)
        if epoch == 1:
            raise RuntimeError("simulated interruption")

    with monkeypatch.context() as patch:
        patch.setattr(keras_gradreg.callbacks.TrainingRecord, "on_epoch_end",
                      crash_after_two)
        with pytest.raises(RuntimeError, match="simulated"):
            _recipes.train(recipe, x, y, settings, backup)
    _, seconds, final = _recipes.train(recipe, x, y, settings, backup)
    assert seconds["resumed_at_epoch"] == 2 and len(seconds["epochs"]) == 3
    assert set(final) >= {"loss", "accuracy"}
    reference = _recipes.calibrate(x, y, settings, steps=1)
    assert reference["fit"] == pytest.approx(3 * reference["wall"])


# The report drawn from the committed result lines ----------------------------


@pytest.fixture
def measured_report(tmp_path):
    """The 3-epoch grid's report from benchmarks/measured/, as
    ``long_runs.sh report`` draws it (command line aside)."""
    shutil.copy(MEASURED / "robustness_per_cost.jsonl", tmp_path / "results.jsonl")
    (tmp_path / "autoattack").mkdir()
    shutil.copy(MEASURED / "robustness_per_cost_autoattack.jsonl",
                tmp_path / "autoattack" / "results.jsonl")
    rows = {}
    for text in (tmp_path / "results.jsonl").read_text().splitlines():
        row = json.loads(text)
        rows[row["recipe"]] = row
    settings = dict(next(iter(rows.values()))["settings"]["run"], cost="cpu")
    return _grid_report.write(rows, settings, str(tmp_path), "COMMAND", True), tmp_path


def test_the_measured_report_is_the_one_docs_quote(measured_report):
    text, folder = measured_report
    results_md = (ROOT / "docs" / "RESULTS.md").read_text()
    table = [line for line in text.split("\n\n")[2].splitlines()[2:]]
    assert len(table) == 21
    for line in table:  # clean and robust cells as docs/RESULTS.md has them
        cells = line.strip("|").split(" | ")
        assert " | ".join(cells[2:]) in results_md, line
    assert ("eps 0.2: on the front, by cost: natural_relu (0.97x natural, 0.0%), "
            "nfgsm_eps0.1_relu (1.53x natural, 74.3%), nfgsm+logit_l1_c0.03_gelu_pf0.5"
            " (2.84x natural, 79.2%), nfgsm+logit_l1_c0.03_gelu (3.01x natural, 80.3%)"
            ) in text
    assert ("| nfgsm_eps0.1_relu | 1.53 | 1000 | 94.5 | 94.5 | 1000 | 74.3 | 73.6 "
            "| 1000 | 1.2 | 0.6 |") in text
    assert (folder / "robustness_per_cost.png").stat().st_size > 10000
    # The whole Markdown, byte for byte, as measured before the report's
    # code moved (a change of wording or number must be deliberate).
    assert hashlib.sha256(text.encode()).hexdigest() == MEASURED_REPORT_SHA256


MEASURED_REPORT_SHA256 = (
    "9d84caa80db533f595d7dbd17a774ad9fd2c3276fb491334e2a372bb91ccfa2c")


def test_autoattack_on_other_images_is_refused():
    row = {"ratio": {"cpu": 1.0}, "correct": {"clean": "110", "0.1": {"pgd": "100"}}}
    line = {"model": "r", "eps": 0.1, "clean": "101", "robust": "100"}
    with pytest.raises(ValueError, match="differ from the grid's"):
        _grid_report.with_autoattack({"r": row}, [line], ["0.1"])
    combined, = _grid_report.with_autoattack(
        {"r": row}, [dict(line, clean="11", robust="01")], ["0.1"])
    assert combined["images"] == {"0.1": 2}
    assert combined["grid"] == {"0.1": 0.5} and combined["robust"] == {"0.1": 0.0}
