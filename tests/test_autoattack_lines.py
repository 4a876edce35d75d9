"""Tests of benchmarks/autoattack_lines.py: AutoAttack through ``keras-gradreg evaluate``
in resumable shards and ``keras-gradreg merge``, as long_runs.sh runs it, then the lines
for the grid's report and the comparison with earlier results."""

import doctest
import json
import pathlib
import sys

import keras
import numpy as np
import pytest
from absl import flags

import keras_gradreg
from keras_gradreg import attacks
from keras_gradreg import cli

from _scripts import load_script  # noqa: E402  (tests/ is on sys.path)

BENCHMARKS = pathlib.Path(__file__).resolve().parents[1] / "benchmarks"
autoattack_lines = load_script(BENCHMARKS / "autoattack_lines.py")
sys.path.insert(0, str(BENCHMARKS))
import _grid_report  # noqa: E402

import _common  # noqa: E402

EPS = [0.05, 0.5]


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    """A tiny 4-class model, saved, and 10 inputs in [0, 1] (one wrong from the start)
    in an npz file; AutoAttack (fast) in two shards of chunks of 4, merged into m/."""
    folder = tmp_path_factory.mktemp("aa")
    rng = np.random.default_rng(0)
    x = rng.uniform(size=(10, 6)).astype("float32")
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((6,)), keras.layers.Dense(4)])
    y = np.argmax(model.predict(x, verbose=0), -1)
    y[0] = (y[0] + 1) % 4
    model.save(folder / "m.keras")
    np.savez(folder / "data.npz", x=x, y=y)
    for index in range(2):
        _evaluate(folder, "--resume", folder / "out" / "m" / "chunks", "--shard",
                  f"{index}/2", "--out", folder / "out" / "m" / f"shard-{index}-of-2")
    cli.main(["merge", folder / "out" / "m", *(folder / "out" / "m").glob("shard-*")])
    return model, x, y, folder


def _evaluate(folder, *more):
    cli.main(["evaluate", folder / "m.keras", "--dataset", f"npz:{folder / 'data.npz'}",
              "--eps", ",".join(map(str, EPS)), "--clip_min", "0", "--clip_max", "1",
              "--attacks", "autoattack", "--autoattack_version", "fast",
              "--worst_case_only", "--batch_size", "4", *more])


def test_merged_shards_are_autoattack_on_each_chunk(saved):
    model, x, y, folder = saved
    merged = keras_gradreg.Results.load(folder / "out" / "m")
    assert len(list((folder / "out" / "m" / "chunks").glob("chunk-*"))) == 3  # 4, 4, 2
    for value in EPS:  # robust only if correct clean and after the ensemble
        expected = np.concatenate([np.asarray(attacks.autoattack(
            model, x[s:s + 4], y[s:s + 4], value, version="fast", seed=0, verbose=0,
            clip_min=0.0, clip_max=1.0, return_breakers=True)[1]) == "" for s in (0, 4, 8)])
        np.testing.assert_array_equal(
            merged.correct(autoattack_lines.MODEL, "worst_case", value), expected)


def test_lines_are_what_the_grid_report_combines(saved, tmp_path):
    _, _, _, folder = saved
    results = keras_gradreg.Results.load(folder / "out" / "m")
    lines = autoattack_lines.lines("m", results)
    assert [line["eps"] for line in lines] == EPS
    assert lines[0]["clean"][0] == "0" and len(lines[0]["robust"]) == 10
    assert lines[0]["settings"]["version"] == "fast"
    clean = lines[0]["clean"]
    row = {"ratio": {"cpu": 1.0}, "correct": {
        "clean": clean, "0.5": {"pgd": clean}, "0.05": {"pgd": clean}}}
    combined, = _grid_report.with_autoattack({"m": row}, lines, ["0.05", "0.5"])
    assert combined["robust"]["0.5"] == pytest.approx(
        results.accuracy(autoattack_lines.MODEL, "worst_case", 0.5))


def test_compare_with_earlier_results(saved):
    model, x, y, folder = saved
    results = keras_gradreg.Results.load(folder / "out" / "m")
    earlier = keras_gradreg.RobustnessReport(
        {"m": model}, ["fgsm"], [0.5], verbose=0).run((x, y))
    text = autoattack_lines.compare({"m": results}, earlier)
    aa = results.correct(autoattack_lines.MODEL, "worst_case", 0.5)
    worst = earlier.correct("m", "worst_case", 0.5)
    assert (f"| m | 0.5 | {100 * aa.mean():.1f} | {100 * worst.mean():.1f} | "
            f"{100 * (aa & worst).mean():.1f} | {int(np.sum(aa & ~worst))} |") in text
    assert "| m | 0.05 |" not in text  # not in the earlier results
    other = keras_gradreg.RobustnessReport(
        {"m": model}, ["fgsm"], [0.5], verbose=0).run((x, (y + 1) % 4))
    with pytest.raises(ValueError, match="clean predictions differ"):
        autoattack_lines.compare({"m": results}, other)


def test_main_keeps_the_lines_of_other_models(saved, tmp_path):
    model, x, y, folder = saved
    out = folder / "out"
    (out / "results.jsonl").write_text('{"model": "other", "eps": 0.1}\n'
                                       '{"model": "m", "eps": 0.1}\n')
    earlier = keras_gradreg.RobustnessReport({"m": model}, ["fgsm"], [0.5], verbose=0)
    earlier.run((x, y))
    earlier.save(str(tmp_path / "earlier"))
    flag_values = flags.FlagValues()
    autoattack_lines.define_flags(flag_values)
    flag_values(["x", f"--out={out}", "--models=m", f"--compare={tmp_path / 'earlier'}"])
    autoattack_lines.main(["x"], flag_values)
    written = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]
    assert [(line["model"], line["eps"]) for line in written] == [
        ("other", 0.1), ("m", 0.05), ("m", 0.5)]
    assert "| m | 0.5 |" in (out / "compare.md").read_text()
    assert "models" not in flags.FLAGS


def test_shards_are_parsed_or_refused():
    assert _common.parse_shard("1/2") == (1, 2) and _common.parse_shard(None) is None
    for text in ("2/2", "1", "a/2", "-1/2"):
        with pytest.raises(Exception, match="--shard must be"):
            _common.parse_shard(text)


def test_docstring_examples():
    assert doctest.testmod(autoattack_lines).failed == 0
    assert doctest.testmod(_common).failed == 0
