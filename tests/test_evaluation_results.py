"""Tests for keras_gradreg.evaluation.Results: accuracies as means of the
per-example arrays, the round trip through every file, sections, atomic
saves, masking checks on loaded results, and accessors' errors."""

import csv
import json

import numpy as np
import pytest

from keras_gradreg import attacks
from keras_gradreg.evaluation import Results
from keras_gradreg.evaluation import RobustnessReport

from _evaluation import _data  # tests/ is on sys.path
from _evaluation import _mlp


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
