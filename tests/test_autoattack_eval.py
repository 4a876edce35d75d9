"""Tests of benchmarks/autoattack_eval.py: AutoAttack through the library's
report, resumable and in shards, its lines for the grid and the comparison
with earlier results."""

import doctest
import pathlib
import sys

import keras
import numpy as np
import pytest
from absl import flags

import keras_gradreg
from keras_gradreg import attacks

from _scripts import load_script  # noqa: E402  (tests/ is on sys.path)

BENCHMARKS = pathlib.Path(__file__).resolve().parents[1] / "benchmarks"
SETTINGS = {"version": "fast", "seed": 0, "chunk": 4}
autoattack_eval = load_script(BENCHMARKS / "autoattack_eval.py")
sys.path.insert(0, str(BENCHMARKS))
import _grid_report  # noqa: E402


@pytest.fixture(scope="module")
def saved():
    """A tiny 4-class model and 10 inputs in [0, 1], one wrong from the start."""
    rng = np.random.default_rng(0)
    x = rng.uniform(size=(10, 6)).astype("float32")
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((6,)), keras.layers.Dense(4)])
    y = np.argmax(model.predict(x, verbose=0), -1)
    y[0] = (y[0] + 1) % 4
    return model, x, y


def test_shards_merged_give_what_one_process_gives(saved, tmp_path):
    model, x, y = saved
    eps = [0.05, 0.5]
    whole = autoattack_eval.evaluate("m", model, x, y, eps, SETTINGS,
                                     str(tmp_path / "whole"))
    for index in range(2):
        autoattack_eval.evaluate("m", model, x, y, eps, SETTINGS,
                                 str(tmp_path / "parts"), shard=(index, 2))
    chunks = sorted(p.name for p in (tmp_path / "parts" / "m" / "chunks").glob("chunk-*"))
    assert len(chunks) == 3  # 4, 4 and 2 images
    merged = autoattack_eval.merge("m", str(tmp_path / "parts"), 2)
    assert (tmp_path / "parts" / "m" / "results.json").exists()
    for value in eps:
        np.testing.assert_array_equal(merged.correct("m", "worst_case", value),
                                      whole.correct("m", "worst_case", value))
    # Independently: AutoAttack on the same chunks, robust only if correct
    # clean and after the ensemble.
    for value in eps:
        expected = np.concatenate([
            np.asarray(attacks.autoattack(model, x[s:s + 4], y[s:s + 4], value,
                                          version="fast", seed=0, verbose=0,
                                          return_breakers=True)[1]) == ""
            for s in (0, 4, 8)])
        np.testing.assert_array_equal(whole.correct("m", "worst_case", value), expected)
    with pytest.raises(Exception, match="3 shards|0 of 3"):
        autoattack_eval.merge("m", str(tmp_path / "parts"), 3)


def test_a_rerun_reads_the_finished_chunks(saved, tmp_path, monkeypatch):
    model, x, y = saved
    first = autoattack_eval.evaluate("m", model, x, y, [0.5], SETTINGS, str(tmp_path))

    def refuse(*args, **kwargs):
        raise AssertionError("attacked again")

    monkeypatch.setattr(keras_gradreg.evaluation._batches, "craft", refuse)
    assert autoattack_eval.evaluate("m", model, x, y, [0.5], SETTINGS,
                                    str(tmp_path)) == first
    with pytest.raises(ValueError, match="another run"):
        autoattack_eval.evaluate("m", model, x, y, [0.5], dict(SETTINGS, seed=1),
                                 str(tmp_path))


def test_lines_are_what_the_grid_report_combines(saved, tmp_path):
    model, x, y = saved
    results = autoattack_eval.evaluate("m", model, x, y, [0.05, 0.5], SETTINGS,
                                       str(tmp_path))
    lines = autoattack_eval.lines("m", results, SETTINGS)
    assert [line["eps"] for line in lines] == [0.05, 0.5]
    assert lines[0]["clean"][0] == "0" and len(lines[0]["robust"]) == 10
    clean = lines[0]["clean"]
    row = {"ratio": {"cpu": 1.0}, "correct": {
        "clean": clean, "0.5": {"pgd": clean}, "0.05": {"pgd": clean}}}
    combined, = _grid_report.with_autoattack({"m": row}, lines, ["0.05", "0.5"])
    assert combined["robust"]["0.5"] == pytest.approx(
        results.accuracy("m", "worst_case", 0.5))


def test_compare_with_earlier_results(saved, tmp_path):
    model, x, y = saved
    results = autoattack_eval.evaluate("m", model, x, y, [0.5], SETTINGS, str(tmp_path))
    earlier = keras_gradreg.RobustnessReport(
        {"m": model}, ["fgsm"], [0.5], verbose=0).run((x, y))
    text = autoattack_eval.compare({"m": results}, earlier)
    aa = results.correct("m", "worst_case", 0.5)
    worst = earlier.correct("m", "worst_case", 0.5)
    assert (f"| m | 0.5 | {100 * aa.mean():.1f} | {100 * worst.mean():.1f} | "
            f"{100 * (aa & worst).mean():.1f} | {int(np.sum(aa & ~worst))} |") in text
    other = keras_gradreg.RobustnessReport(
        {"m": model}, ["fgsm"], [0.5], verbose=0).run((x, (y + 1) % 4))
    with pytest.raises(ValueError, match="clean predictions differ"):
        autoattack_eval.compare({"m": results}, other)


def test_defines_its_flags_only_when_asked():
    flag_values = flags.FlagValues()
    autoattack_eval.define_flags(flag_values)
    flag_values(["x", "--models=a.keras", "--out=o", "--shard=1/2"])
    assert autoattack_eval._shard(flag_values.shard) == (1, 2)
    assert "models" not in flags.FLAGS
    with pytest.raises(Exception, match="--shard must be"):
        autoattack_eval._shard("2/2")


def test_docstring_examples():
    assert doctest.testmod(autoattack_eval).failed == 0
