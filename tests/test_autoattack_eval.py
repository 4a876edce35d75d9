"""Tests of benchmarks/autoattack_eval.py: chunked, resumable AutoAttack.

The script defines its flags only when run as a script, so importing it
here shares no flag with the other benchmarks.
"""

import doctest
import json
import pathlib

import keras
import numpy as np
import pytest
from absl import flags

from keras_gradreg import attacks

from _scripts import load_script  # noqa: E402  (tests/ is on sys.path)

BENCHMARKS = pathlib.Path(__file__).resolve().parents[1] / "benchmarks"
SETTINGS = dict(dataset="synthetic", split="test", num_examples=10, chunk=4,
                version="fast", seed=0, batch_size=256, clip_min=0.0,
                clip_max=1.0)


autoattack_eval = load_script(BENCHMARKS / "autoattack_eval.py")


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    """Two tiny saved 4-class models and 10 inputs in [0, 1]."""
    folder = tmp_path_factory.mktemp("aa")
    rng = np.random.default_rng(0)
    x = rng.uniform(size=(10, 6)).astype("float32")
    paths = []
    for index, name in enumerate(("weak", "other")):
        keras.utils.set_random_seed(index)
        model = keras.Sequential([keras.Input((6,)), keras.layers.Dense(4)])
        model.save(folder / f"{name}.keras")
        paths.append(str(folder / f"{name}.keras"))
    y = np.argmax(keras.models.load_model(paths[0]).predict(x, verbose=0), -1)
    y[0] = (y[0] + 1) % 4  # one image wrong before any attack
    return paths, x, y


def _lines(out):
    return [json.loads(t) for t in
            (out / autoattack_eval.RESULTS).read_text().splitlines()]


def test_every_unit_once_and_resumes(saved, tmp_path):
    paths, x, y = saved
    rows = autoattack_eval.run(paths, x, y, [0.05, 0.5], SETTINGS, tmp_path)
    lines = _lines(tmp_path)
    # 3 chunks (4, 4, 2 images) x 2 models x 2 eps.
    assert len(lines) == 12
    assert sorted({(line["start"], line["stop"]) for line in lines}) == [
        (0, 4), (4, 8), (8, 10)]
    assert {row["images"] for row in rows} == {10}
    # Interrupted after the last unit was written: only that unit reruns.
    text = (tmp_path / autoattack_eval.RESULTS).read_text().splitlines()
    (tmp_path / autoattack_eval.RESULTS).write_text("\n".join(text[:-1]) + "\n")
    autoattack_eval.run(paths, x, y, [0.05, 0.5], SETTINGS, tmp_path)
    assert len(_lines(tmp_path)) == 12
    # A changed setting starts afresh (old lines are kept, not mixed in).
    other = dict(SETTINGS, seed=1)
    autoattack_eval.run(paths[:1], x[:4], y[:4], [0.05], other, tmp_path)
    assert len(_lines(tmp_path)) == 13
    assert "time left" in (tmp_path / autoattack_eval.SUMMARY).read_text()
    with open(tmp_path / autoattack_eval.PLOT, "rb") as handle:
        assert handle.read(8) == b"\x89PNG\r\n\x1a\n"
    assert not list(tmp_path.glob(".*.tmp"))  # temporary plots renamed


def test_the_plot_is_skipped_without_rows(tmp_path):
    assert not autoattack_eval.plot([], str(tmp_path / "a.png"))
    assert not (tmp_path / "a.png").exists()


def test_results_match_an_independent_run(saved, tmp_path):
    """Robust accuracy per chunk equals autoattack run here on the chunk."""
    paths, x, y = saved
    rows = autoattack_eval.run(paths[:1], x, y, [0.5], SETTINGS, tmp_path)
    model = keras.models.load_model(paths[0])
    expected = []
    for start in range(0, 10, SETTINGS["chunk"]):
        chunk_x, chunk_y = x[start:start + 4], y[start:start + 4]
        x_adv = attacks.autoattack(model, chunk_x, chunk_y, eps=0.5,
                                   version="fast", seed=0, verbose=0)
        clean = np.argmax(model.predict(chunk_x, verbose=0), -1) == chunk_y
        adv = np.argmax(model.predict(np.asarray(x_adv), verbose=0), -1)
        expected.append(clean & (adv == chunk_y))
    row = rows[0]
    assert row["robust"] == pytest.approx(np.concatenate(expected).mean())
    assert row["clean"] == pytest.approx(0.9)  # y[0] was made wrong
    broken = sum(row["broken_by"].values())
    assert broken == round(10 * (row["clean"] - row["robust"]))
    assert set(row["broken_by"]) <= {"apgd_ce", "apgd_t"}


def test_docstring_examples():
    failures, tried = doctest.testmod(autoattack_eval)
    assert tried >= 4 and failures == 0


@pytest.mark.parametrize("version, square, shown", [
    ("standard", 2, "Square broke 2 of 100 images (2.0%): **flagged**"),
    ("standard", 1, "Square broke 1 of 100 images (1.0%)\n"),  # at the margin
    ("standard", 0, "Square broke no image that the gradient attacks missed."),
    ("fast", 0, None),  # no Square in the ensemble: no check
])
def test_the_masking_check_flags_square_above_the_margin(version, square, shown):
    row = dict(model="m", eps=0.3, images=100, clean=1.0, robust=0.5,
               broken_by={"apgd_ce": 50 - square, "square": square},
               wall_s=1.0, seconds_per_image=0.01, left_s=0.0)
    if not square:
        del row["broken_by"]["square"]
    text = autoattack_eval.markdown([row], dict(SETTINGS, version=version))
    if shown is None:
        assert "Masking check" not in text
    else:
        assert shown in text


def test_defines_its_flags_only_when_asked():
    """Importing the script defined no flag; ``define_flags`` defines them
    into the FlagValues it is given."""
    assert "chunk" not in flags.FLAGS
    flag_values = flags.FlagValues()
    autoattack_eval.define_flags(flag_values)
    flag_values(["autoattack_eval.py", "--models=a.keras,b.keras",
                 "--out=o", "--eps=0.1"])
    assert flag_values.models == ["a.keras", "b.keras"]
    assert (flag_values.chunk, flag_values.version) == (100, "standard")


def test_compare_with_earlier_results(saved, tmp_path):
    """The earlier worst case, the points off and the misses are those of
    the per-example arrays, recomputed here; other images are refused."""
    from keras_gradreg import Results
    from keras_gradreg import RobustnessReport
    paths, x, y = saved
    models = {pathlib.Path(p).stem: keras.models.load_model(p) for p in paths}
    report = RobustnessReport({"weak": models["weak"]}, ["fgsm"], [0.05, 0.5],
                              verbose=0)
    report.run((x, y)).save(str(tmp_path / "earlier"))
    earlier = Results.load(str(tmp_path / "earlier"))

    rows = autoattack_eval.run(paths, x, y, [0.05, 0.5], SETTINGS,
                               tmp_path / "aa", earlier)
    lines = _lines(tmp_path / "aa")
    for row in rows:
        if row["model"] != "weak":  # not in the earlier results
            assert "earlier_robust" not in row
            continue
        group = sorted((line for line in lines if line["model"] == "weak"
                        and line["eps"] == row["eps"]),
                       key=lambda line: line["start"])
        robust = np.concatenate([line["robust"] for line in group]) == 1
        worst = (earlier.correct("weak")
                 & earlier.correct("weak", "fgsm", row["eps"]))
        assert row["earlier_robust"] == pytest.approx(worst.mean())
        assert row["points_off"] == pytest.approx(
            100 * (worst.mean() - robust.mean()))
        assert row["missed"] == int(np.sum(robust & ~worst))
    table = (tmp_path / "aa" / autoattack_eval.SUMMARY).read_text()
    assert "earlier worst case | points off | missed |" in table
    assert "| other | 0.05 |" in table and " - | - | - |" in table
    # The same numbers by model: AutoAttack (earlier, change in points).
    weak = {row["eps"]: row for row in rows if row["model"] == "weak"}
    assert (f"| weak | 10 | {100 * weak[0.05]['clean']:.1f} | " + " | ".join(
        f"{100 * weak[e]['robust']:.1f} ({100 * weak[e]['earlier_robust']:.1f}"
        f", {round(-weak[e]['points_off'], 1) + 0.0:+.1f})"
        for e in (0.05, 0.5)) + " |"
            ) in table.split("## By model")[1]

    # Earlier results on other labels: the clean predictions differ.
    RobustnessReport({"weak": models["weak"]}, ["fgsm"], [0.05],
                     verbose=0).run((x, (y + 1) % 4)).save(
                         str(tmp_path / "other"))
    with pytest.raises(ValueError, match="not the same images"):
        autoattack_eval.compare(rows, lines,
                                Results.load(str(tmp_path / "other")))


def test_workers_take_each_unit_once(saved, tmp_path):
    """A worker skips units another worker claimed; a plain run afterwards
    does the rest; every unit is in the results once, as in one process."""
    paths, x, y = saved
    todo = list(autoattack_eval.units(10, 4, ["weak", "other"], [0.05]))
    # Worker 1 claimed the first unit and died before finishing it.
    assert autoattack_eval.claim_next(str(tmp_path), todo, SETTINGS, 1) == todo[0]
    autoattack_eval.run(paths, x, y, [0.05], SETTINGS, str(tmp_path), worker=0)
    claims = [json.loads(t) for t in
              (tmp_path / autoattack_eval.CLAIMS).read_text().splitlines()]
    assert [autoattack_eval.key(c) for c in claims] == todo
    assert {c["worker"] for c in claims[1:]} == {0}
    assert sorted(map(autoattack_eval.key, _lines(tmp_path))) == sorted(todo[1:])
    # Nothing left to claim; a plain run ignores claims and finishes.
    assert autoattack_eval.claim_next(str(tmp_path), todo, SETTINGS, 0) is None
    rows = autoattack_eval.run(paths, x, y, [0.05], SETTINGS, str(tmp_path))
    assert sorted(map(autoattack_eval.key, _lines(tmp_path))) == sorted(todo)
    alone = autoattack_eval.run(paths, x, y, [0.05], SETTINGS,
                                str(tmp_path / "alone"))
    assert [(r["model"], r["robust"]) for r in rows] == [
        (r["model"], r["robust"]) for r in alone]
