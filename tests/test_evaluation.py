"""Tests for keras_gradreg.evaluation: robust accuracy and the report."""

import csv
import json

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_gradreg import attacks
from keras_gradreg.evaluation import Results
from keras_gradreg.evaluation import RobustnessReport
from keras_gradreg.evaluation import robust_accuracy


def _mlp(seed=0, softmax=False):
    init = keras.initializers.GlorotNormal(seed=seed)
    return keras.Sequential([
        keras.Input((5,)),
        keras.layers.Dense(8, activation="tanh", kernel_initializer=init),
        keras.layers.Dense(3, kernel_initializer=init,
                           activation="softmax" if softmax else None),
    ])


def _data(n=30, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.uniform(0, 1, (n, 5)).astype("float32")
    return x, rng.integers(0, 3, n)


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


# Silent-wrong inputs ------------------------------------------------------


class ProbabilitiesModel(keras.Model):
    """A subclassed model that ends in keras.ops.softmax: not detectable
    from its layers, only from its outputs."""

    def __init__(self):
        super().__init__()
        self.dense = keras.layers.Dense(3)

    def call(self, x):
        return keras.ops.softmax(self.dense(x))


def test_a_model_returning_probabilities_is_warned_about():
    model = ProbabilitiesModel()
    x, y = _data(8)
    with pytest.warns(UserWarning, match="look like probabilities"):
        robust_accuracy(model, (x, y), None, verbose=0)
    with pytest.warns(UserWarning, match="look like probabilities"):
        attacks.cw_linf(model, x, y, 0.1, steps=2)
    with pytest.warns(UserWarning, match="look like probabilities"):
        RobustnessReport({"m": model}, ["fgsm"], 0.1, verbose=0).run((x, y))


def test_a_logits_model_is_not_warned_about(recwarn):
    model = _mlp()
    x, y = _data(8)
    robust_accuracy(model, (x, y), "fgsm", 0.1, verbose=0)
    assert not [w for w in recwarn if "probabilities" in str(w.message)]


def test_report_takes_a_bare_eps_and_rejects_a_repeated_one():
    model = _mlp()
    assert RobustnessReport({"m": model}, ["fgsm"], 0.2,
                            verbose=0).eps_values == [0.2]
    assert RobustnessReport({"m": model}, ["fgsm"], np.float32(0.25),
                            verbose=0).eps_values == [0.25]
    with pytest.raises(ValueError, match="repeats a radius"):
        RobustnessReport({"m": model}, ["fgsm"], [0.1, 0.2, 0.1], verbose=0)


# Labels and inputs are checked before any attack runs ----------------------


def _flawed(case):
    x, y = _data(12)
    x, y = x.copy(), y.astype("float64")
    if case == "range":
        y[5] = 3
    elif case == "width":
        y = np.eye(4)[y.astype(int)]
    elif case == "integer":
        y[7] = 0.6
    elif case == "nan":
        x[9, 1] = np.nan
    elif case == "inf":
        x[4, 0] = -np.inf
    return x, y


_FLAWS = {
    "range": r"in \[0, 3\) for a model with 3 classes; y\[5\] is 3",
    "width": "4 columns but the model has 3",
    "integer": r"integer class indices; y\[7\] is 0.6",
    "nan": "NaN or infinite values .* index 9",
    "inf": "NaN or infinite values .* index 4",
}


def _spy_attack(model, x, y, eps, **kwargs):
    _spy_attack.calls += 1
    return x


@pytest.mark.parametrize("as_dataset", [False, True])
@pytest.mark.parametrize("case", sorted(_FLAWS))
def test_evaluation_checks_data_before_attacking(case, as_dataset):
    model = _mlp()
    x, y = _flawed(case)
    # A dataset's flawed element is in its first batch of 16.
    data = tf.data.Dataset.from_tensor_slices((x, y)).batch(16) if as_dataset \
        else (x, y)
    _spy_attack.calls = 0
    with pytest.raises(ValueError, match=_FLAWS[case]):
        robust_accuracy(model, data, _spy_attack, 0.1, batch_size=4, verbose=0)
    with pytest.raises(ValueError, match=_FLAWS[case]):
        RobustnessReport({"m": model}, {"spy": (_spy_attack, {})}, [0.1],
                         batch_size=4, verbose=0).run(data)
    assert _spy_attack.calls == 0


def test_evaluation_checks_every_array_batch_before_the_first_attack():
    model = _mlp()
    x, y = _data(12)
    y = y.astype("float64")
    y[-1] = 2.5  # in the last batch of 4
    _spy_attack.calls = 0
    with pytest.raises(ValueError, match=r"y\[11\] is 2.5"):
        robust_accuracy(model, (x, y), _spy_attack, 0.1, batch_size=4, verbose=0)
    assert _spy_attack.calls == 0


# Results: the typed results and their files ---------------------------------


@pytest.fixture(scope="module")
def saved_results(tmp_path_factory):
    """Results of two models (a Square column too), saved once."""
    models = {"plain": _mlp(0), "other": _mlp(1)}
    x, y = _data(20)
    report = RobustnessReport(
        models, {"fgsm": "fgsm", "bim": ("bim", {"steps": 3}),
                 "square": ("square", {"queries": 20, "seed": 0})},
        [0.1, 0.3], large_eps=1.0, batch_size=8, verbose=0)
    results = report.run((x, y))
    results.add_section("training", {"epochs": [1, 2], "c": 0.1},
                        markdown=["| Model | epochs |", "|---|---|",
                                  "| plain | 1 |"], title="Training times")
    out = tmp_path_factory.mktemp("results")
    paths = results.save(str(out))
    return results, models, (x, y), out, paths


def test_results_accuracies_are_means_of_the_per_example_arrays(saved_results):
    results, models, (x, y), _, _ = saved_results
    for name, model in models.items():
        clean = np.argmax(np.asarray(model(x)), 1) == y
        np.testing.assert_array_equal(results.correct(name), clean)
        assert results.accuracy(name) == pytest.approx(clean.mean())
        for eps in results.eps_values:
            worst = clean.copy()
            for attack in results.attack_names:
                hit = results.correct(name, attack, eps)
                assert hit.dtype == bool and hit.shape == y.shape
                assert results.accuracy(name, attack, eps) == hit.mean()
                worst &= hit
            np.testing.assert_array_equal(
                results.correct(name, "worst_case", eps), worst)
            assert results.accuracy(name, "worst_case", eps) == worst.mean()
        assert results.accuracy(name, "fgsm", 1.0) == results.correct(
            name, "fgsm", 1.0).mean()
    fgsm_adv = attacks.fgsm(models["plain"], x, y, 0.3)
    moved = np.argmax(np.asarray(models["other"](fgsm_adv)), 1) == y
    np.testing.assert_array_equal(
        results.correct("other", "fgsm", source="plain"), moved)
    assert results.transfer("plain", "other", "fgsm") == moved.mean()


def test_results_round_trip_through_every_file(saved_results):
    results, _, _, out, paths = saved_results
    assert sorted(p.name for p in out.iterdir()) == [
        "accuracy_vs_eps.png", "correct.npz", "results.csv", "results.json",
        "results.md"]
    loaded = Results.load(str(out))
    assert loaded == results
    assert loaded.to_dict() == results.to_dict()
    assert json.load(open(paths["json"])) == results.to_dict()
    assert open(paths["md"]).read() == results.to_markdown()
    assert loaded.to_markdown() == results.to_markdown()
    for name in results.model_names:
        for attack in results.attack_names:
            for eps in results.eps_values:
                np.testing.assert_array_equal(
                    loaded.correct(name, attack, eps),
                    results.correct(name, attack, eps))
    with np.load(paths["npz"]) as arrays:
        np.testing.assert_array_equal(arrays["white_box/plain/bim/0.3"],
                                      results.correct("plain", "bim", 0.3))
        np.testing.assert_array_equal(arrays["clean/other"],
                                      results.correct("other"))
    rows = list(csv.DictReader(open(paths["csv"])))
    assert len(rows) == 2 * (1 + 4 * 2) + 2 * 2 * 3
    for row in rows:
        accuracy = float(row["accuracy"])
        if row["kind"] == "clean":
            want = results.accuracy(row["source"])
        elif row["kind"] == "transfer":
            want = results.transfer(row["source"], row["target"],
                                    row["attack"])
            assert float(row["eps"]) == results.transfer_eps
        else:
            want = results.accuracy(row["source"], row["attack"], row["eps"])
        assert accuracy == want


def test_add_section_goes_into_json_and_markdown(saved_results):
    results, _, _, out, paths = saved_results
    data = json.load(open(paths["json"]))
    assert set(data) == {"format_version", "models", "transfer",
                         "transfer_eps", "settings", "masking_checks",
                         "warnings", "sections"}
    assert list(data["models"]) == ["plain", "other"]
    assert data["sections"]["training"]["data"] == {"epochs": [1, 2], "c": 0.1}
    markdown = open(paths["md"]).read()
    assert markdown.endswith(
        "## Training times\n\n| Model | epochs |\n|---|---|\n| plain | 1 |\n")
    assert Results.load(str(out)).section("training")["c"] == 0.1


def test_add_section_validates(saved_results):
    results = Results(saved_results[0].to_dict())
    for taken in ("plain", "settings", "warnings", "models"):
        with pytest.raises(ValueError, match="taken"):
            results.add_section(taken, {})
    with pytest.raises(TypeError, match="JSON"):
        results.add_section("bad", {"model": object()})
    with pytest.raises(ValueError, match="exists"):
        results.add_section("training", {})
    results.add_section("training", [1], replace=True)
    assert results.section("training") == [1]
    data = {"nested": [1.5]}
    results.add_section("copy", data)
    data["nested"].append(2)  # the results keep their own copy
    assert results.section("copy") == {"nested": [1.5]}


@pytest.mark.parametrize("failure", [OSError("disk full"), KeyboardInterrupt])
def test_save_is_atomic(saved_results, tmp_path, monkeypatch, failure):
    results = saved_results[0]
    results.save(str(tmp_path))
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    # Readable as plainly written files are (not the temporary's 0600).
    (tmp_path / "plain").write_text("")
    plain = (tmp_path / "plain").stat().st_mode & 0o777
    (tmp_path / "plain").unlink()
    assert {p.stat().st_mode & 0o777 for p in tmp_path.iterdir()} == {plain}
    changed = Results(results.to_dict(), results.arrays())
    changed.add_section("new", {"a": 1}, markdown="new lines")

    def half_a_plot_then_fail(results, handle):  # the last file written
        handle.write(b"\x89PNG half")
        raise failure

    from keras_gradreg.evaluation import _files
    monkeypatch.setattr(_files, "_plot", half_a_plot_then_fail)
    with pytest.raises(type(failure) if isinstance(failure, Exception)
                       else failure):
        changed.save(str(tmp_path))
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before
    with pytest.raises(FileExistsError, match="overwrite"):
        changed.save(str(tmp_path), overwrite=False)
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before


def test_masking_checks_work_on_loaded_results(saved_results, tmp_path):
    from keras_gradreg.evaluation import _masking
    results, _, _, out, _ = saved_results
    loaded = Results.load(str(out))
    assert _masking.masking_checks(loaded) == results.masking_checks
    shares = results.model_entry("plain").get("black_box_only", {})
    assert set(shares) == {"0.1", "0.3"}  # Square and gradient attacks
    for name in results.model_names:
        for eps in results.eps_values:
            share = _masking.black_box_only(loaded, name, eps)
            missed = (loaded.correct(name) & loaded.correct(name, "fgsm", eps)
                      & loaded.correct(name, "bim", eps))
            want = np.mean(missed & ~loaded.correct(name, "square", eps))
            assert share == pytest.approx(want)
    # Stricter thresholds fail the same numbers; the results keep theirs.
    strict = _masking.masking_checks(loaded, attack_spread=-1.0)
    assert not any(c["passed"] for c in strict if c["check"] == "attacks_agree")
    # Without correct.npz the accuracies and checks still load.
    os_files = {p.name for p in out.iterdir()} - {"correct.npz"}
    for name in os_files:
        (tmp_path / name).write_bytes((out / name).read_bytes())
    bare = Results.load(str(tmp_path))
    assert _masking.masking_checks(bare) == results.masking_checks
    with pytest.raises(KeyError, match="correct.npz"):
        bare.correct("plain")


def test_results_refuse_a_layout_without_models(saved_results):
    results = saved_results[0]
    # Models at the top level, beside the other keys: not this layout.
    flat = {name: results.model_entry(name) for name in results.model_names}
    flat.update({key: results.to_dict()[key] for key in (
        "transfer", "transfer_eps", "masking_checks", "warnings", "settings")})
    with pytest.raises(ValueError, match="lack 'models'"):
        Results(flat)
    with pytest.raises(TypeError):
        results["plain"]  # no mapping access: use results.model_entry()


def test_results_accessors_name_what_is_missing(saved_results):
    results = saved_results[0]
    with pytest.raises(KeyError, match="No model 'nope'"):
        results.accuracy("nope")
    with pytest.raises(KeyError, match="No attack 'pgd'"):
        results.accuracy("plain", "pgd", 0.1)
    with pytest.raises(KeyError, match="No eps"):
        results.accuracy("plain", "fgsm", 0.2)
    with pytest.raises(ValueError, match="eps is needed"):
        results.accuracy("plain", "fgsm")


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
