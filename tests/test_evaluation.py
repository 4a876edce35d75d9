"""Tests for keras_gradreg.evaluation: robust accuracy and the report."""

import csv
import json

import numpy as np
import pytest
import tensorflow as tf

from keras_gradreg import attacks
from keras_gradreg.evaluation import RobustnessReport
from keras_gradreg.evaluation import robust_accuracy

from _evaluation import _data  # tests/ is on sys.path
from _evaluation import _mlp


def _own_labels(model, n=24):
    """Inputs labelled by the model itself: clean accuracy is 100%."""
    x, _ = _data(n)
    return x, np.argmax(model(x), axis=1)


def _accuracy(model, x, y):
    """Independent accuracy: numpy argmax of a direct forward pass."""
    return float(np.mean(np.argmax(np.asarray(model(x)), axis=1) == y))


def _identity_attack(model, x, y, eps, **kwargs):
    """A fake attack that does nothing: weaker than FGSM."""
    return tf.convert_to_tensor(x)


def _shift_attack(model, x, y, eps, steps=10, clip_min=0.0, clip_max=1.0):
    """A dummy registered attack: every feature + eps, clipped."""
    _shift_attack.calls.append({"steps": steps, "clip_max": clip_max})
    return np.clip(np.asarray(x) + eps, clip_min, clip_max)


@pytest.fixture
def shift_registered(monkeypatch):
    """Registers ``_shift_attack`` as "shift", as one registry line would."""
    _shift_attack.calls = []
    monkeypatch.setitem(attacks.ATTACKS, "shift", _shift_attack)
    return _shift_attack


# robust_accuracy ----------------------------------------------------------


def test_a_registered_attack_is_picked_up_by_name(shift_registered):
    model = _mlp()
    x, y = _data()
    want = _accuracy(model, np.clip(x + 0.2, 0, 1), y)
    assert robust_accuracy(model, (x, y), "shift", 0.2, verbose=0) == want
    report = RobustnessReport({"m": model}, ["fgsm", "shift"], [0.2],
                              verbose=0)
    results = report.run((x, y))
    assert results.accuracy("m", "shift", 0.2) == pytest.approx(want)
    assert shift_registered.calls[-1] == {"steps": 10, "clip_max": 1.0}
    # Multi-step unless flagged single_step: compared with FGSM.
    checked = {c["attack"] for c in results.masking_checks
               if c["check"] == "iterative_at_least_fgsm"}
    assert checked == {"shift"}


def test_clean_accuracy_for_eps_zero_or_no_attack():
    model = _mlp()
    x, y = _data()
    expected = _accuracy(model, x, y)
    assert robust_accuracy(model, (x, y), None, verbose=0) == expected
    assert robust_accuracy(model, (x, y), "pgd", 0.0, verbose=0) == expected


@pytest.mark.parametrize(
    "make_data",
    [
        lambda x, y: (x, y),
        lambda x, y: (x, np.eye(3)[y]),
        lambda x, y: tf.data.Dataset.from_tensor_slices((x, y)),
        lambda x, y: tf.data.Dataset.from_tensor_slices((x, y)).batch(7),
    ],
    ids=["arrays", "one_hot", "unbatched_dataset", "batched_dataset"],
)
def test_robust_accuracy_matches_direct_attack(make_data):
    model = _mlp()
    x, y = _data()
    x_adv = attacks.bim(model, x, y, 0.2, 0.05, 5)
    expected = _accuracy(model, x_adv, y)
    got = robust_accuracy(model, make_data(x, y), "bim", 0.2, batch_size=8,
                          verbose=0, step_size=0.05, steps=5)
    assert got == pytest.approx(expected)
    assert got < _accuracy(model, x, y)


def test_robust_accuracy_accepts_a_callable_and_prints_progress(capsys):
    model = _mlp()
    x, y = _data()
    got = robust_accuracy(model, (x, y), _identity_attack, 0.3, verbose=1)
    assert got == _accuracy(model, x, y)
    assert "accuracy" in capsys.readouterr().out


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        ({"attack": "deepfool", "eps": 0.1}, ValueError, "Unknown attack"),
        ({"attack": "fgsm", "eps": -0.1}, ValueError, "eps"),
        ({"attack": "fgsm", "eps": 0.1, "batch_size": 0}, ValueError,
         "batch_size"),
    ],
)
def test_robust_accuracy_validates_arguments(kwargs, error, match):
    with pytest.raises(error, match=match):
        robust_accuracy(_mlp(), _data(), verbose=0, **kwargs)


def test_robust_accuracy_rejects_malformed_data():
    with pytest.raises(TypeError, match="tuple"):
        robust_accuracy(_mlp(), np.zeros((3, 5)), "fgsm", 0.1, verbose=0)


# RobustnessReport ---------------------------------------------------------


@pytest.fixture
def report_and_data(tmp_path):
    models = {"plain": _mlp(0), "softmax": _mlp(1, softmax=True)}
    x, y = _data(24)
    report = RobustnessReport(
        models, ["fgsm", "bim"], [0.1, 0.3], large_eps=1.0, batch_size=10,
        verbose=0,
    )
    return report, models, x, y


def test_report_numbers_match_independent_computations(report_and_data):
    report, models, x, y = report_and_data
    results = report.run((x, y))
    for name, model in models.items():
        entry = results.model_entry(name)
        assert entry["clean"] == pytest.approx(_accuracy(model, x, y))
        for eps in (0.1, 0.3):
            fgsm = attacks.fgsm(model, x, y, eps)
            bim = attacks.bim(model, x, y, eps, 2.5 * eps / 10, 10)
            assert entry["fgsm"][f"{eps:g}"] == pytest.approx(
                _accuracy(model, fgsm, y))
            assert entry["bim"][f"{eps:g}"] == pytest.approx(
                _accuracy(model, bim, y))
            robust = (np.argmax(model(x), 1) == y)
            for x_adv in (fgsm, bim):
                robust &= np.argmax(model(x_adv), 1) == y
            assert entry["worst_case"][f"{eps:g}"] == pytest.approx(robust.mean())
    source_adv = attacks.fgsm(models["plain"], x, y, 0.3)
    assert results.transfer("plain", "softmax", "fgsm") == pytest.approx(
        _accuracy(models["softmax"], source_adv, y))
    assert results.transfer("plain", "plain", "fgsm") == (
        results.accuracy("plain", "fgsm", 0.3))
    assert results.transfer_eps == 0.3
    assert all(check["passed"] for check in results.masking_checks)
    assert {c["check"] for c in results.masking_checks} == {
        "iterative_at_least_fgsm", "monotone_in_eps", "large_eps_to_chance",
        "whitebox_at_least_transfer",
    }


def test_report_writes_all_four_files(report_and_data, tmp_path):
    report, models, x, y = report_and_data
    results = report.run(tf.data.Dataset.from_tensor_slices((x, y)))
    paths = report.save(str(tmp_path / "out"))
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [
        "accuracy_vs_eps.png", "correct.npz", "results.csv", "results.json",
        "results.md"]
    assert json.loads(open(paths["json"]).read()) == results.to_dict()
    markdown = open(paths["md"]).read()
    assert "| Model | Natural | fgsm eps=0.1 |" in markdown
    assert "| plain | " + f"{100 * results.accuracy('plain'):.1f}" in markdown
    assert "fgsm / softmax" in markdown  # two models: a transfer table
    assert "Which attack broke" not in markdown  # no ensemble
    assert "; white-box L-inf attacks;" in markdown
    assert "Attacks as run (each attack's defaults otherwise): `fgsm`; `bim`." in markdown
    assert "No AutoAttack in this report" in markdown
    rows = list(csv.reader(open(paths["csv"])))
    # header + per model (clean + 2 attacks x 2 eps + 2 worst case) +
    # transfer (2 sources x 2 targets x 2 attacks)
    assert len(rows) == 1 + 2 * (1 + 4 + 2) + 8
    with open(paths["png"], "rb") as handle:
        assert handle.read(8) == b"\x89PNG\r\n\x1a\n"


def test_report_flags_an_attack_weaker_than_fgsm(tmp_path):
    model = _mlp()
    x, y = _own_labels(model)
    report = RobustnessReport(
        {"plain": model},
        {"fgsm": "fgsm", "fake": (_identity_attack, {})},
        [0.3], large_eps=1.0, verbose=0,
    )
    results = report.run((x, y))
    weak = [c for c in results.masking_checks
            if c["check"] == "iterative_at_least_fgsm"]
    assert [c["passed"] for c in weak] == [False]
    assert any("fake" in w and "weaker than FGSM" in w
               for w in results.warnings)
    paths = report.save(str(tmp_path))
    assert "**WARNING**: plain: fake" in open(paths["md"]).read()
    assert json.load(open(paths["json"]))["warnings"] == results.warnings


@pytest.mark.parametrize("spread, flagged", [(0.0, True), (1.0, False)])
def test_report_flags_a_multistep_attack_far_above_the_strongest(spread,
                                                                 flagged):
    model = _mlp()
    x, y = _own_labels(model)
    report = RobustnessReport(
        {"plain": model},
        {"bim": "bim", "blind": (_identity_attack, {}), "fgsm": "fgsm"},
        [0.3], attack_spread=spread, verbose=0,
    )
    results = report.run((x, y))
    assert results.accuracy("plain", "blind", 0.3) > results.accuracy(
        "plain", "bim", 0.3)
    agree = {c["attack"]: c["passed"] for c in results.masking_checks
             if c["check"] == "attacks_agree"}
    assert agree == {"bim": True, "blind": not flagged}  # FGSM not compared
    assert any("blind" in w and "points more than bim" in w
               for w in results.warnings) == flagged


def test_report_flags_non_monotone_and_far_from_chance():
    x, y = _own_labels(_mlp())

    def gives_up_at_large_eps(model, x, y, eps):
        return x if eps > 0.2 else attacks.fgsm(model, x, y, eps)

    results = RobustnessReport(
        {"plain": _mlp()}, {"odd": (gives_up_at_large_eps, {})}, [0.1, 0.3],
        large_eps=1.0, verbose=0,
    ).run((x, y))
    failed = {c["check"] for c in results.masking_checks if not c["passed"]}
    assert failed == {"monotone_in_eps", "large_eps_to_chance"}


def test_report_flags_whitebox_weaker_than_transfer():
    masked = _mlp(1)
    x, y = _own_labels(masked)

    def blind_on_masked(model, x, y, eps):
        # Gradient masking, simulated: the white-box attack fails on `masked`.
        return x if model is masked else attacks.fgsm(model, x, y, eps)

    results = RobustnessReport(
        {"plain": _mlp(0), "masked": masked}, {"fgsm": (blind_on_masked, {})},
        [0.5], verbose=0,
    ).run((x, y))
    failed = [c for c in results.masking_checks if not c["passed"]]
    assert [(c["check"], c["model"]) for c in failed] == [
        ("whitebox_at_least_transfer", "masked")]


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        ({"models": {}}, TypeError, "non-empty"),
        ({"models": {"transfer": None}}, ValueError, "reserved"),
        ({"attacks": ["nope"]}, ValueError, "Unknown attack"),
        ({"eps_values": [0.1, -0.2]}, ValueError, "eps"),
        ({"eps_values": [0.1], "transfer_eps": 0.3}, ValueError, "transfer_eps"),
        ({"attack_spread": -0.1}, ValueError, "attack_spread"),
    ],
)
def test_report_validates_arguments(kwargs, error, match):
    arguments = {"models": {"m": None}, "attacks": ["fgsm"], "eps_values": [0.1]}
    arguments.update(kwargs)
    with pytest.raises(error, match=match):
        RobustnessReport(**arguments)


def test_save_before_run_raises(tmp_path):
    report = RobustnessReport({"m": _mlp()}, ["fgsm"], [0.1], verbose=0)
    with pytest.raises(RuntimeError, match="run"):
        report.save(str(tmp_path))


def test_report_rejects_a_reserved_attack_name():
    with pytest.raises(ValueError, match="reserved"):
        RobustnessReport({"m": _mlp()}, {"clean": "fgsm"}, [0.1])


@pytest.mark.parametrize("eps_values, large_eps, units", [
    ([0.1, 0.3], 1.0, 3 * 2 * 2 * 3),  # batches x models x attacks x eps
    ([0.1], None, 3 * 2 * 2 * 1),
])
def test_the_progress_bar_counts_models_attacks_and_eps(
        capsys, eps_values, large_eps, units):
    models = {"plain": _mlp(0), "softmax": _mlp(1, softmax=True)}
    report = RobustnessReport(models, ["fgsm", "bim"], eps_values,
                              large_eps=large_eps, batch_size=10, verbose=1)
    report.run(_data(24))  # 3 batches
    assert f"{units}/{units}" in capsys.readouterr().out


def test_markdown_table_rows_must_fit_the_header():
    from keras_gradreg.evaluation import markdown_table

    assert markdown_table(["a", "b"], [[1, 2.5]]) == [
        "| a | b |", "|---|---|", "| 1 | 2.5 |"]
    with pytest.raises(ValueError, match="a row of 1 cells under a header of 2"):
        markdown_table(["a", "b"], [["only"]])
