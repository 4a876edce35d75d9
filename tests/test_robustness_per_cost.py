"""Tests of benchmarks/robustness_per_cost.py and its report helpers.

The script runs in this process, each run with its own absl ``FlagValues``
(it defines its flags only under ``__main__``), on tiny IDX files written
here, with the paper's CNN, one epoch and a few attack steps. Its per-example results are checked
against the attacks rerun here on the saved network, its ratios against its
own stored timings, and resuming against the file it appends to. The Pareto
front is checked on a hand-computed example and against a brute-force
definition.
"""

import doctest
import inspect
import json
import os
import pathlib
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
SCRIPT = ROOT / "benchmarks" / "robustness_per_cost.py"
sys.path.insert(0, str(ROOT / "benchmarks"))
import _frontier  # noqa: E402
import _workers  # noqa: E402
from _data import stripe_mnist  # noqa: E402  (tests/ is on sys.path)
from _scripts import load_script  # noqa: E402

rpc = load_script(SCRIPT)

ACTIVATION_OPTION = "activation" in inspect.signature(
    keras_gradreg.models.mnist_cnn).parameters


# Pareto front ---------------------------------------------------------------


def test_pareto_front_hand_computed():
    # Sorted by cost: 0 (1.0, .37) front; 1 (1.4, .90) front; 6 (1.4, .85)
    # beaten by 1 (same cost); 4 (1.5, .936) front; 3 (2.1, .88), 2 (2.3,
    # .84) and 5 (3.0, .91) beaten by 4.
    costs = [1.0, 1.4, 2.3, 2.1, 1.5, 3.0, 1.4]
    scores = [0.37, 0.90, 0.84, 0.88, 0.936, 0.91, 0.85]
    assert _frontier.pareto_front(costs, scores) == [0, 1, 4]


@pytest.mark.parametrize("costs, scores, front", [
    ([], [], []),
    ([2.0], [0.5], [0]),
    ([1.0, 1.0], [0.5, 0.5], [0]),  # identical: the first one
    ([1.0, 2.0], [0.5, 0.5], [0]),  # dearer, no better
    ([2.0, 1.0], [0.9, 0.1], [1, 0]),  # cheapest first
])
def test_pareto_front_edge_cases(costs, scores, front):
    assert _frontier.pareto_front(costs, scores) == front


def test_pareto_front_matches_the_definition():
    rng = np.random.default_rng(0)
    costs = rng.integers(1, 6, 40).tolist()  # ties on purpose
    scores = rng.integers(0, 8, 40).tolist()
    front = _frontier.pareto_front(costs, scores)

    def beaten(i):
        return any((costs[j] <= costs[i] and scores[j] >= scores[i])
                   and (costs[j] < costs[i] or scores[j] > scores[i]
                        or j < i) for j in range(40) if j != i)

    assert sorted(front) == [i for i in range(40) if not beaten(i)]
    assert [costs[i] for i in front] == sorted(costs[i] for i in front)


def test_pareto_front_needs_one_score_per_cost():
    with pytest.raises(ValueError, match="one of each per point"):
        _frontier.pareto_front([1.0, 2.0], [0.5])


def _row(name, cost, clean, robust):
    return {"recipe": name, "ratio": {"wall": cost, "cpu": 10 - cost},
            "clean": clean, "robust": robust}


ROWS = [
    _row("pgd7", 6.0, 0.98, {"0.1": 0.95, "0.2": 0.5}),
    _row("natural", 1.0, 0.99, {"0.1": 0.30, "0.2": 0.0}),
    _row("fgsm_rs", 1.4, 0.99, {"0.1": 0.90, "0.2": 0.6}),
    _row("logit", 2.3, 0.95, {"0.1": 0.84, "0.2": 0.45}),
]


def test_markdown_table_sorted_by_cost_with_the_front_in_bold():
    text = _frontier.markdown(ROWS, ["0.1", "0.2"], notes=["x not run."])
    table = [line for line in text.splitlines() if line.startswith("| ")]
    assert table[0] == "| recipe | cost x natural | clean | eps 0.1 | eps 0.2 |"
    assert table[1:] == [
        "| natural | 1.00 | 99.0 | **30.0** | **0.0** |",
        "| fgsm_rs | 1.40 | 99.0 | **90.0** | **60.0** |",
        "| logit | 2.30 | 95.0 | 84.0 | 45.0 |",
        "| pgd7 | 6.00 | 98.0 | **95.0** | 50.0 |",
    ]
    assert ("- eps 0.2: on the front, by cost: natural (1.00x natural, 0.0%), "
            "fgsm_rs (1.40x natural, 60.0%); most robust: fgsm_rs.") in text
    assert "most robust: pgd7." in text
    assert "- x not run." in text


@pytest.mark.parametrize("images", [100, 400, 10000])
def test_front_statements_say_when_a_lead_is_within_noise(images):
    """A lead is called noise exactly when it is under two standard errors
    of the difference, computed here from the binomial variance."""
    text = _frontier.markdown(ROWS, ["0.1", "0.2"], images=images)

    def noise(better, worse):
        se = np.sqrt((better * (1 - better) + worse * (1 - worse)) / images)
        return better - worse < 2 * se

    # eps 0.1: the front is natural, fgsm_rs, pgd7 (0.95 against 0.90).
    step = "pgd7 leads fgsm_rs by 5.0 points, within two standard errors"
    assert (step in text) == noise(0.95, 0.90)
    # eps 0.2: fgsm_rs (60%) is the most robust; the next is pgd7 (50%),
    # off the front.
    lead = "fgsm_rs leads pgd7 by 10.0 points, within two standard errors"
    assert (lead in text) == noise(0.6, 0.5)
    assert ("within two standard errors" in text) == (
        noise(0.95, 0.90) or noise(0.6, 0.5))
    plain = _frontier.markdown(ROWS, ["0.1", "0.2"])  # no count: no remark
    assert "standard errors" not in plain


def test_markdown_can_rank_by_cpu_time():
    # CPU ratios are 10 - wall: the order reverses; pgd7, now cheapest, is
    # the whole front at eps 0.1, fgsm_rs joins it at 0.2.
    text = _frontier.markdown(ROWS, ["0.1", "0.2"], cost="cpu")
    table = [line for line in text.splitlines() if line.startswith("| ")]
    assert table[0].startswith("| recipe | cost x natural (cpu) | clean |")
    assert [line.split(" | ")[0] for line in table[1:]] == [
        "| pgd7", "| logit", "| fgsm_rs", "| natural"]
    assert "| pgd7 | 4.00 | 98.0 | **95.0** | **50.0** |" in table
    assert "| fgsm_rs | 8.60 | 99.0 | 90.0 | **60.0** |" in table


def test_plot_writes_a_png(tmp_path):
    pytest.importorskip("matplotlib")
    _frontier.plot(ROWS, ["0.1", "0.2"], str(tmp_path / "chart.png"))
    assert (tmp_path / "chart.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    checked = [dict(ROWS[0], images={"0.1": 100}, grid={"0.1": 0.95},
                    robust={"0.1": 0.93})]
    _frontier.plot(ROWS, ["0.1", "0.2"], str(tmp_path / "checked.png"),
                   checked=checked, images=100)
    assert (tmp_path / "checked.png").read_bytes() != (
        tmp_path / "chart.png").read_bytes()  # the AutoAttack marker
    gelu = {"recipe": {"trainer": "gradreg", "activation": "gelu", "kwargs": {}}}
    kinds = [dict(ROWS[0], settings=gelu)] + ROWS[1:]
    _frontier.plot(kinds, ["0.1", "0.2"], str(tmp_path / "kinds.png"))
    assert (tmp_path / "kinds.png").read_bytes() != (
        tmp_path / "chart.png").read_bytes()  # colour and marker per kind


# The script end to end ------------------------------------------------------


@pytest.fixture
def tiny_mnist(tmp_path):
    """IDX files of noisy images with a faint class-dependent stripe."""
    return stripe_mnist(tmp_path / "mnist")


TINY = ["--epochs=1", "--train_size=100", "--test_size=20", "--eval_steps=2",
        "--pgd_restarts=2", "--eval_eps=0.05,0.3", "--learning_rate=0.003"]

def _run_all(capsys, *runs):
    """Runs the script's main once per argument list, each with fresh flags,
    and reports each run's output, usage error and results.jsonl after it."""
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


def _check_row(row, eps_keys, attack_names):
    """Worst case and per-attack numbers agree with the per-example bits."""
    correct = row["correct"]
    clean = _bools(correct["clean"])
    assert len(clean) == 20 and row["clean"] == pytest.approx(clean.mean())
    for key in eps_keys:
        robust = clean.copy()
        for name in attack_names:
            survived = _bools(correct[key][name])
            assert row["per_attack"][key][name] == pytest.approx(
                survived.mean())
            robust &= survived
        assert row["robust"][key] == pytest.approx(robust.mean())
        assert row["robust"][key] <= min(row["per_attack"][key].values())


def _check_against_saved_network(row, model_path, data_dir, attack_names):
    """Clean and eps-0.3 results, recomputed on the saved network.

    At eps 0.3 each attack is rerun here, with the script's settings (steps
    2; PGD step 2.5 eps / steps, 2 restarts; seed 0), on the images the
    script's earlier attacks left correct. The network is barely trained, so
    near-ties in its logits can flip on float noise (a prediction in another
    process, graph or batch): one image per stage may differ.
    """
    network = keras.models.load_model(model_path)
    x, y = datasets.to_arrays(datasets.load("mnist", "test[:20]",
                                            str(data_dir)))

    def correct(inputs, labels):
        logits = network.predict(inputs, batch_size=500, verbose=0)
        return np.argmax(logits, -1) == labels

    clean = _bools(row["correct"]["clean"])
    assert np.sum(correct(x, y) != clean) <= 1
    assert clean.sum() > 0
    calls = {
        "apgd_ce": lambda a, b: attacks.apgd(network, a, b, 0.3, steps=2,
                                             loss="ce", seed=0),
        "apgd_dlr": lambda a, b: attacks.apgd(network, a, b, 0.3, steps=2,
                                              loss="dlr", seed=0),
        "pgd": lambda a, b: attacks.pgd(network, a, b, 0.3, 0.375, 2,
                                        restarts=2, seed=0),
    }
    before = clean
    for name in attack_names:
        after = _bools(row["correct"]["0.3"][name])
        assert not np.any(after & ~before)  # only survivors were attacked
        assert row["attacked"]["0.3"][name] == before.sum()
        attacked = np.flatnonzero(before)
        if attacked.size:
            x_adv = np.asarray(calls[name](x[attacked], y[attacked]))
            survived = correct(x_adv, y[attacked])
            assert np.sum(survived != after[attacked]) <= 1, name
        before = after
    assert row["robust"]["0.3"] < row["clean"]  # the attacks bite


def test_script_runs_evaluates_and_resumes(tmp_path, tiny_mnist, capsys):
    out = tmp_path / "out"
    attack_names = ["apgd_ce", "apgd_dlr", "pgd"]
    common = [f"--data_dir={tiny_mnist}", f"--out={out}", *TINY]
    two = "--recipes=natural_relu,logit_l1_c0.03_relu"
    (first, second, third, report_only, other, bad_attack, bad_recipe,
     no_results) = _run_all(
        capsys,
        # 1. The reference alone; 2. resumed with one more recipe (and one
        # the installed package may lack); 3. nothing left to do; 4. the
        # report alone, of recipes not all done, by CPU time; 5. other
        # settings in the same folder; 6-7. unknown names; 8. a report of
        # nothing.
        [*common, "--recipes=natural_relu", "--save_models"],
        [*common, two + ("" if ACTIVATION_OPTION else ",natural_gelu")],
        [*common, two],
        [*common, "--recipes=natural_relu,nfgsm_eps0.1_relu", "--report",
         "--cost=cpu"],
        [*common, two, "--epochs=2"],
        [*common, "--eval_attacks=apgd_ce,deepfool", f"--out={tmp_path}/x"],
        [*common, "--recipes=natural_relu,pgd3", f"--out={tmp_path}/x"],
        [*common, "--report", f"--out={tmp_path}/x"],
    )

    # 1. The reference, checked against the saved network.
    assert first["error"] is None
    assert "[1/1] natural_relu: training" in first["stdout"]
    assert "epoch 1/1:" in first["stdout"]
    assert "eps 0.3 pgd: attacked" in first["stdout"]
    natural, = _rows(first["results"])
    assert natural["recipe"] == "natural_relu"
    assert natural["ratio"] == {"wall": 1.0, "cpu": 1.0, "wall_fit": 1.0}
    assert natural["reference"] == "same process"
    assert natural["seconds"]["basis"].startswith("whole fit")
    assert natural["seconds"]["wall"] == natural["seconds"]["fit"] > 0
    assert natural["settings"]["run"]["eval_attacks"] == attack_names
    _check_row(natural, ["0.05", "0.3"], attack_names)
    _check_against_saved_network(natural, out / "natural_relu.keras",
                                 tiny_mnist, attack_names)

    # 2. Only the new recipe trains, against the stored natural time.
    assert second["error"] is None
    assert "natural_relu: already in" in second["stdout"]
    assert "[1/1] logit_l1_c0.03_relu: training" in second["stdout"]
    rows = _rows(second["results"])
    assert [r["recipe"] for r in rows] == ["natural_relu", "logit_l1_c0.03_relu"]
    assert rows[0] == natural
    logit = rows[1]
    assert logit["reference"] == "stored (an earlier process)"
    assert logit["reference_seconds"] == natural["seconds"]
    assert logit["ratio"]["wall"] == pytest.approx(
        logit["seconds"]["wall"] / natural["seconds"]["wall"])
    assert logit["ratio"]["cpu"] == pytest.approx(
        logit["seconds"]["cpu"] / natural["seconds"]["cpu"])
    assert logit["settings"]["recipe"] == {
        "trainer": "gradreg", "activation": "relu",
        "kwargs": {"regularizer": "logit_margin", "norm": "l1", "c": 0.03}}
    _check_row(logit, ["0.05", "0.3"], attack_names)
    if not ACTIVATION_OPTION:
        assert ("natural_gelu: not run: needs keras_gradreg >= "
                in second["stdout"])

    # 3. Nothing trains and the file stays as it was.
    assert third["error"] is None
    assert ": training" not in third["stdout"]
    assert third["results"] == second["results"]
    report = third["stdout"]  # the report it wrote (a later run rewrites it)
    assert "| recipe | cost x natural | clean | eps 0.05 | eps 0.3 |" in report
    assert "\nCommand: `python benchmarks/robustness_per_cost.py " in report
    for row in rows:
        assert (f"| {row['recipe']} | {row['ratio']['wall']:.2f} "
                f"| {100 * row['clean']:.1f} |") in report
    assert "eps 0.3: on the front, by cost: natural_relu (1.00x natural" in report
    png = (out / "robustness_per_cost.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n"

    # 4. The report of what is done, by CPU time: nothing trains.
    assert report_only["error"] is None
    assert ": training" not in report_only["stdout"]
    assert report_only["results"] == second["results"]
    report_text = (out / "robustness_per_cost.md").read_text()
    assert "| recipe | cost x natural (cpu) | clean |" in report_text
    assert ("Drawn from the stored result lines (training nothing) by: "
            "`python benchmarks/robustness_per_cost.py ") in report_text
    for row in rows:
        assert (f"| {row['recipe']} | {row['ratio']['cpu']:.2f} "
                f"| {100 * row['clean']:.1f} |") in report_text

    # 5-8. Refused, before anything is written.
    assert f"--report: no {tmp_path}/x/results.jsonl yet" in no_results["error"]
    assert "run with other settings (epochs: 1 then, 2 now)" in other["error"]
    assert other["results"] == second["results"]
    assert "Unknown --eval_attacks ['deepfool']" in bad_attack["error"]
    assert "Unknown recipes ['pgd3']" in bad_recipe["error"]
    assert not (tmp_path / "x").exists()


@pytest.mark.parametrize("recipes, first", [
    (None, None), ("nfgsm_eps0.1_gelu,all", ["nfgsm_eps0.1_gelu"]),
    ("logit_l1_c0.03_gelu,natural_relu", ["logit_l1_c0.03_gelu"])])
def test_recipes_in_the_order_asked_the_reference_first(recipes, first):
    flag_values = flags.FlagValues()
    rpc.define_flags(flag_values)
    flag_values(["robustness_per_cost", "--out=o"]
                + ([f"--recipes={recipes}"] if recipes else []))
    table = rpc.recipe_table(0.1)
    names = rpc._recipes(table, flag_values)
    assert names[0] == "natural_relu" and len(set(names)) == len(names)
    if first is None or recipes.endswith(",all"):
        assert sorted(names) == sorted(table)  # every recipe once
    else:
        assert names == ["natural_relu", *first]
    if first:
        assert names[1:1 + len(first)] == first


def test_a_worker_skips_claimed_recipes_and_times_against_its_own_natural(
        tmp_path, tiny_mnist, monkeypatch):
    """A worker of a --workers run takes only unclaimed recipes, and each
    recipe's cost is against natural training calibrated in its process."""
    flag_values = flags.FlagValues()
    rpc.define_flags(flag_values)
    flag_values(["robustness_per_cost", f"--data_dir={tiny_mnist}",
                 f"--out={tmp_path}", *TINY])
    settings = rpc._settings(flag_values)
    names = ["natural_relu", "logit_l1_c0.03_relu"]
    path = str(tmp_path / "results.jsonl")
    # Worker 1 claimed the reference (and is still training it).
    taken = rpc.claims(str(tmp_path), names, rpc.training_settings(settings),
                       path, 1)
    assert next(taken) == "natural_relu"

    stored = rpc.run(settings, names, rpc.recipe_table(0.1), str(tmp_path),
                     worker=0)

    assert list(stored) == ["logit_l1_c0.03_relu"]
    claims = [json.loads(t) for t in
              (tmp_path / "claims.jsonl").read_text().splitlines()]
    assert [(c["recipe"], c["worker"]) for c in claims] == [
        ("natural_relu", 1), ("logit_l1_c0.03_relu", 0)]
    row, = _rows((tmp_path / "results.jsonl").read_text())
    reference = row["reference_seconds"]
    assert row["reference"].startswith("calibrated: 2 steps of natural")
    assert reference["wall"] > 0 and reference["cpu"] > 0
    # Timed again after the fit, the same way.
    after = row["reference_after_seconds"]
    assert after["basis"] == reference["basis"] and after["cpu"] > 0
    assert reference["fit"] == pytest.approx(reference["wall"])  # 1 epoch
    for kind in ("wall", "cpu"):
        assert row["ratio"][kind] == pytest.approx(
            row["seconds"][kind] / reference[kind])
    assert row["threads"] == os.environ.get("TF_NUM_INTRAOP_THREADS",
                                            "default")
    _check_row(row, ["0.05", "0.3"], ["apgd_ce", "apgd_dlr", "pgd"])
    assert not (tmp_path / "robustness_per_cost.md").exists()  # the parent's
    report = rpc.write_report(stored, settings, str(tmp_path), [])
    assert ("Costs of logit_l1_c0.03_relu: against natural training timed "
            "just before each") in report
    # Nothing is left for another worker.
    assert next(rpc.claims(str(tmp_path), names,
                           rpc.training_settings(settings), path, 2),
                None) is None
    # --retime: a row timed under this process's threads is not timed again.
    table = rpc.recipe_table(0.1)
    rpc.retime(settings, names, table, str(tmp_path))
    assert len(_rows((tmp_path / "results.jsonl").read_text())) == 1
    # Under other threads: a second timing; its accuracy is kept.
    monkeypatch.setenv("TF_NUM_INTRAOP_THREADS", f"{row['threads']}x")
    again = rpc.retime(settings, names, table, str(tmp_path))
    first, second = _rows((tmp_path / "results.jsonl").read_text())
    assert again["logit_l1_c0.03_relu"] == second
    assert second["first_timing"] == {k: first[k] for k in rpc.TIMING_FIELDS}
    assert second["reference"].startswith("calibrated: 2 steps of natural")
    for kind in ("wall", "cpu"):
        assert second["ratio"][kind] == pytest.approx(
            second["seconds"][kind] / second["reference_seconds"][kind])
    for key in ("robust", "clean", "correct", "per_attack"):
        assert second[key] == first[key]
    rpc.retime(settings, names, table, str(tmp_path))  # once only
    assert len(_rows((tmp_path / "results.jsonl").read_text())) == 2
    report = rpc.write_report(again, settings, str(tmp_path), [])
    assert ("Costs of logit_l1_c0.03_relu: from a second training run "
            "(--retime)") in report


def test_retime_runs_in_one_process(tmp_path, capsys):
    report, = _run_all(capsys, [f"--out={tmp_path}", "--retime",
                                "--workers=2"])
    assert "--retime runs in one process" in report["error"]


def test_retime_on_a_fresh_folder_times_nothing(tmp_path, capsys):
    out = tmp_path / "new" / "grid"  # not made yet: a fresh machine
    report, = _run_all(capsys, [f"--out={out}", "--retime",
                                "--recipes=natural_relu"])
    assert report["error"] is None and report["results"] is None
    assert "nothing to time again" in report["stdout"]


def test_the_lock_makes_its_folder(tmp_path):
    out = tmp_path / "a" / "b"
    with _workers.locked(str(out)):
        assert (out / ".lock").exists()


@pytest.mark.parametrize("activation", ["relu", "gelu"])
def test_the_grid_network_is_the_papers_cnn_with_the_activation(activation):
    network = rpc.build_network(activation)
    reference = keras_gradreg.models.mnist_cnn(activation=activation)
    assert [layer.__class__ for layer in network.layers] == [
        layer.__class__ for layer in reference.layers]
    assert network.count_params() == reference.count_params()
    assert network.get_layer("conv1").activation.__name__ == activation


def _small_network(activation):
    """A stand-in for the paper's CNN (its conv1 has the activation)."""
    return keras.Sequential([
        keras.Input((28, 28, 1)),
        keras.layers.Conv2D(2, 3, activation=activation, name="conv1"),
        keras.layers.Flatten(), keras.layers.Dense(10)])


def test_every_recipe_builds_with_its_settings(monkeypatch):
    """Each recipe of the grid builds a model that carries its settings
    (on a small network: the grid's network is checked above)."""
    monkeypatch.setattr(rpc, "build_network", _small_network)
    found = {}
    for name, recipe in rpc.recipe_table(0.1).items():
        model, network = rpc.build_model(recipe, 1e-3)
        found[name] = {
            key: round(value, 6) if isinstance(value, float)
            else getattr(value, "__name__", value)
            for key, value in ((k, getattr(model, k)) for k in recipe.kwargs)}
        found[name]["activation"] = network.get_layer(
            "conv1").activation.__name__
        keras.backend.clear_session(free_memory=False)

    assert found["logit_l1_c0.03_gelu_pf0.5"] == {
        "regularizer": "logit_margin", "norm": "l1", "c": 0.03,
        "penalty_fraction": 0.5, "activation": "gelu"}
    assert found["nfgsm+logit_l1_c0.03_gelu_pf0.5"] == {
        "eps": 0.1, "regularizer": "logit_margin", "norm": "l1", "c": 0.03,
        "penalty_fraction": 0.5, "activation": "gelu"}
    assert found["pgd7_eps0.1_relu"] == {"eps": 0.1, "steps": 7,
                                         "activation": "relu"}
    assert {name: row["activation"] for name, row in found.items()} == {
        name: name.split("_")[-1] if "_pf" not in name else "gelu"
        for name in found}


def test_an_interrupted_fit_goes_on_from_its_last_epoch(tmp_path, monkeypatch):
    """The second process trains only the epochs left and keeps the first
    one's per-epoch seconds; a checkpoint of other settings is not used."""
    rng = np.random.default_rng(0)
    x = rng.random((20, 28, 28, 1), dtype=np.float32)
    y = rng.integers(0, 10, 20)
    settings = {"seed": 0, "learning_rate": 1e-3, "batch_size": 10,
                "epochs": 3}
    recipe = rpc.recipe_table(0.1)["natural_relu"]
    backup = str(tmp_path / "backup")
    original = keras_gradreg.callbacks.TrainingRecord.on_epoch_end

    def crash_after_two(self, epoch, logs=None):
        original(self, epoch, logs)
        if epoch == 1:
            raise RuntimeError("simulated interruption")

    with monkeypatch.context() as patch:
        patch.setattr(keras_gradreg.callbacks.TrainingRecord, "on_epoch_end", crash_after_two)
        with pytest.raises(RuntimeError, match="simulated"):
            rpc.train(recipe, x, y, settings, backup)
    earlier = json.loads((tmp_path / "backup" / "progress.json").read_text())
    assert len(earlier["wall"]) == 2

    _, seconds, final = rpc.train(recipe, x, y, settings, backup)
    assert seconds["resumed_at_epoch"] == 2
    assert seconds["epochs"][:2] == earlier["wall"]
    assert len(seconds["epochs"]) == 3
    assert seconds["fit"] > earlier["fit"]["wall"]
    assert set(final) >= {"loss", "accuracy"}

    # Other settings: the checkpoint is dropped and the fit starts afresh.
    _, seconds, _ = rpc.train(recipe, x, y, dict(settings, epochs=2), backup)
    assert "resumed_at_epoch" not in seconds and len(seconds["epochs"]) == 2


def test_an_interrupted_evaluation_goes_on_from_its_last_attack(
        tmp_path, monkeypatch):
    """A second evaluation attacks only the (eps, attack) pairs the first
    one did not finish and returns what one uninterrupted evaluation does;
    with another network or other settings nothing stored is used."""
    rng = np.random.default_rng(0)
    x = rng.random((40, 5)).astype(np.float32)
    y = rng.integers(0, 3, 40)
    network = keras.Sequential([keras.Input((5,)), keras.layers.Dense(3)])
    weights = network.get_weights()
    directions = {name: rng.normal(size=(40, 5)).astype(np.float32)
                  for name in ("a", "b")}
    calls, crash = [], {}

    def attack(name):
        def run(_, inputs, labels, eps):
            calls.append((name, eps))
            if crash.get((name, eps)):
                raise KeyboardInterrupt
            rows = [int(np.flatnonzero((x == row).all(1))[0]) for row in inputs]
            return inputs + eps * directions[name][rows]
        return run

    monkeypatch.setattr(rpc, "attack_table",
                        lambda settings: {"a": attack("a"), "b": attack("b")})
    settings = {"eval_batch_size": 16, "eval_eps": [0.5, 2.0],
                "eval_attacks": ["a", "b"], "attack_survivors": True,
                "test_size": 40, "eval_steps": 2, "pgd_restarts": 1, "seed": 0}
    whole = rpc.evaluate(network, x, y, settings)
    assert whole["resumed_seconds"] == 0.0
    assert len(calls) == 4 and whole["robust"]["2"] < whole["clean"]

    progress = str(tmp_path / "evaluation.json")
    calls.clear()
    crash[("b", 2.0)] = True
    with pytest.raises(KeyboardInterrupt):
        rpc.evaluate(network, x, y, settings, progress)
    assert calls == [("a", 0.5), ("b", 0.5), ("a", 2.0), ("b", 2.0)]
    calls.clear()
    crash.clear()
    resumed = rpc.evaluate(network, x, y, settings, progress)
    assert calls == [("b", 2.0)]
    assert resumed.pop("resumed_seconds") > 0
    whole.pop("resumed_seconds")
    assert resumed == whole

    # Finished: nothing is attacked again.
    calls.clear()
    rpc.evaluate(network, x, y, settings, progress)
    assert calls == []
    # Other settings, or another network (other clean bits): all afresh.
    rpc.evaluate(network, x, y, dict(settings, eval_steps=3), progress)
    assert len(calls) == 4
    calls.clear()
    network.set_weights([-w for w in weights])
    other = rpc.evaluate(network, x, y, settings, progress)
    assert other["correct"]["clean"] != whole["correct"]["clean"]
    assert len(calls) == 4


# The grid under AutoAttack ---------------------------------------------------

_with_autoattack = load_script(ROOT / "benchmarks" / "_with_autoattack.py")


def _grid_row(rng, count, ratio):
    clean = rng.random(count) < 0.9
    correct = {"clean": bits(clean)}
    for key in ("0.1", "0.3"):
        survived, correct[key] = clean.copy(), {}
        for name in ("apgd_ce", "pgd"):
            survived &= rng.random(count) < 0.7
            correct[key][name] = bits(survived)
    return {"ratio": {"wall": ratio, "cpu": ratio}, "correct": correct,
            "clean": float(clean.mean()), "train_final": {"accuracy": 0.9},
            "robust": {k: float(np.mean(_bools(correct[k]["pgd"])))
                       for k in ("0.1", "0.3")},
            "seconds": {"fit": 60.0 * ratio, "fit_cpu": 54.0 * ratio,
                        "cpu": 18.0 * ratio},
            "eval_seconds": 30.0}


def bits(values):
    return "".join("1" if v else "0" for v in values)


def _autoattack_lines(rng, name, row, eps, chunks):
    """AutoAttack's lines for ``chunks`` [(start, stop)], random robustness
    among the clean-correct images."""
    lines = []
    for start, stop in chunks:
        clean = [int(c) for c in row["correct"]["clean"][start:stop]]
        robust = [int(c and rng.random() < 0.6) for c in clean]
        lines.append({"model": name, "eps": eps, "start": start, "stop": stop,
                      "clean": clean, "robust": robust})
    return lines


def test_the_grid_under_autoattack_is_the_per_image_worst_of_both():
    rng = np.random.default_rng(0)
    rows = {"a": _grid_row(rng, 30, 1.0), "b": _grid_row(rng, 30, 2.0),
            "c": _grid_row(rng, 30, 3.0)}
    lines = (_autoattack_lines(rng, "a", rows["a"], 0.1, [(0, 10), (10, 20)])
             + _autoattack_lines(rng, "a", rows["a"], 0.3, [(0, 10)])
             # b: a chunk that does not follow on from image 0 is left out.
             + _autoattack_lines(rng, "b", rows["b"], 0.1, [(0, 10), (20, 30)]))
    combined = {r["recipe"]: r for r in _with_autoattack.combine(
        rows, lines, ["0.1", "0.3"])}
    assert set(combined) == {"a", "b"}  # c: AutoAttack never ran on it
    assert combined["a"]["images"] == {"0.1": 20, "0.3": 10}
    assert combined["b"]["images"] == {"0.1": 10}
    for name, result in combined.items():
        for key, count in result["images"].items():
            aa = [v for line in lines if line["model"] == name
                  and f"{line['eps']:g}" == key and line["stop"] <= count
                  for v in line["robust"]]
            grid = [all(rows[name]["correct"][key][attack][i] == "1"
                        for attack in ("apgd_ce", "pgd"))
                    for i in range(count)]
            assert result["grid"][key] == pytest.approx(np.mean(grid))
            assert result["autoattack"][key] == pytest.approx(np.mean(aa))
            assert result["robust"][key] == pytest.approx(
                np.mean([g and bool(v) for g, v in zip(grid, aa)]))
    text = _with_autoattack.markdown(list(combined.values()), ["0.1", "0.3"])
    a = combined["a"]
    assert (f"| a | 1.00 | 20 | {100 * a['grid']['0.1']:.1f} "
            f"| {100 * a['robust']['0.1']:.1f} | 10 |") in text
    assert "| b | 2.00 | 10 |" in text and "eps 0.1: on the front" in text


def test_autoattack_on_other_images_is_refused():
    rng = np.random.default_rng(1)
    rows = {"a": _grid_row(rng, 10, 1.0)}
    line, = _autoattack_lines(rng, "a", rows["a"], 0.1, [(0, 10)])
    line["clean"] = [1 - c for c in line["clean"]]
    with pytest.raises(ValueError, match="did not attack the same"):
        _with_autoattack.combine(rows, [line], ["0.1"])


def test_the_report_has_the_autoattack_section_once_results_exist(tmp_path):
    rng = np.random.default_rng(2)
    rows = {"natural_relu": dict(_grid_row(rng, 20, 1.0), recipe="natural_relu")}
    settings = {"eval_eps": [0.1, 0.3], "epochs": 1, "train_size": 100,
                "batch_size": 50, "learning_rate": 1e-3, "seed": 0,
                "eval_attacks": ["apgd_ce", "pgd"], "eval_steps": 2,
                "test_size": 20, "cost": "wall"}
    assert "Under AutoAttack" not in rpc.write_report(rows, settings,
                                                      str(tmp_path), [])
    (tmp_path / "autoattack").mkdir()
    lines = _autoattack_lines(rng, "natural_relu", rows["natural_relu"], 0.1,
                              [(0, 20)])
    (tmp_path / "autoattack" / "results.jsonl").write_text(
        "".join(json.dumps(line) + "\n" for line in lines))
    report = rpc.write_report(rows, settings, str(tmp_path), [])
    assert "## Under AutoAttack" in report
    assert "| natural_relu | 1.00 | 20 |" in report
    # times: minutes, then the median epoch's CPU seconds and its ratio
    assert "| natural_relu | 1.0 | 0.9 | 18 | 1.00 | 0.5 |" in report
    assert report == (tmp_path / "robustness_per_cost.md").read_text()


@pytest.mark.parametrize("module", [_frontier, _with_autoattack, _workers,
                                    rpc])
def test_docstring_examples_of_the_report_modules(module, monkeypatch):
    # doctest finds a function's examples through sys.modules: another test
    # file loading the same script registers a new module under its name.
    monkeypatch.setitem(sys.modules, module.__name__, module)
    flags_ = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE
    failures, tried = doctest.testmod(module, optionflags=flags_)
    assert tried > 0 and failures == 0
