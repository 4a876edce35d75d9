"""AutoAttack and its parts in the registry, the report and the command
line's table: the headline column, a report in L2, and the masking checks in
every norm."""

import numpy as np
import pytest

from keras_gradreg import RobustnessReport
from keras_gradreg import attacks
from keras_gradreg import evaluation
from keras_gradreg.cli import format_table

from _autoattack import _accuracy  # tests/ is on sys.path
from _autoattack import _mlp


def test_registry_names_and_autoattack_headline_column(tmp_path):
    for name in ("apgd_t", "fab_t", "square", "autoattack"):
        assert attacks.ATTACKS[name] is getattr(attacks, name)
    assert evaluation.ATTACKS is attacks.ATTACKS
    model = _mlp((4,), 4)
    x = np.random.default_rng(0).uniform(0, 1, (8, 4)).astype("float32")
    y = np.argmax(model(x), 1)
    report = RobustnessReport(
        {"m": model},
        {"fgsm": "fgsm", "autoattack": ("autoattack", {"version": "fast",
                                                       "steps": 4})},
        [0.1], verbose=0,
    )
    assert list(report.attacks) == ["autoattack", "fgsm"]
    results = report.run((x, y))
    markdown = open(report.save(str(tmp_path))["md"]).read()
    header = next(line for line in markdown.splitlines() if "Natural" in line)
    assert header.index("autoattack") < header.index("fgsm")
    table = format_table({"clean": 1.0, "autoattack": {"0.1": 0.5},
                          "fgsm": {"0.1": 0.75}}, ("0.1",))
    assert [len(line) for line in table.splitlines()[1:]] == [18, 18, 18]
    assert 0 <= results.accuracy("m", "autoattack", 0.1) <= results.accuracy(
        "m", "fgsm", 0.1)


def test_report_in_l2_passes_its_norm_and_records_it(tmp_path):
    model = _mlp((6,), 5, seed=2)
    x = np.random.default_rng(1).uniform(0, 1, (16, 6)).astype("float32")
    y = np.argmax(model(x), 1)
    report = RobustnessReport(
        {"m": model},
        {"fgsm": "fgsm", "pgd": ("pgd", {"seed": 3}),
         "autoattack": ("autoattack", {"version": "fast", "steps": 4,
                                       "seed": 3})},
        [0.3], verbose=0, norm="l2",
    )
    results = report.run((x, y))
    assert results.norm == "l2" and results.settings["norm"] == "l2"
    assert results.settings["attacks"]["pgd"]["kwargs"]["norm"] == "l2"
    direct = attacks.pgd(model, x, y, 0.3, seed=3, norm="l2")
    assert results.accuracy("m", "pgd", 0.3) == _accuracy(model, direct, y)
    markdown = open(report.save(str(tmp_path))["md"]).read()
    assert "L2 attacks" in markdown and "L-inf" not in markdown
    assert evaluation.Results.load(str(tmp_path)).norm == "l2"
    with pytest.raises(ValueError, match=r"'cw' supports the norms \['linf'\]"):
        RobustnessReport({"m": model}, ["fgsm", "cw"], [0.3], norm="l2")
    with pytest.raises(ValueError, match="one threat model"):
        RobustnessReport({"m": model}, {"pgd": ("pgd", {"norm": "l1"})},
                         [0.3], norm="l2")
    linf = RobustnessReport({"m": model}, ["fgsm"], [0.1], verbose=0)
    assert linf.attacks["fgsm"][1] == {}  # L-inf passes no norm


def test_masking_checks_run_in_every_norm():
    """The checks read the report's attacks in its norm: Square's black-box
    check in L2 (inside AutoAttack), none in L1, where AutoAttack runs no
    Square."""
    model = _mlp((6,), 5, seed=2)
    x = np.random.default_rng(1).uniform(0, 1, (16, 6)).astype("float32")
    y = np.argmax(model(x), 1)
    spec = {"fgsm": "fgsm", "autoattack": ("autoattack", {
        "version": "standard", "steps": 4, "queries": 20, "seed": 0})}
    kinds = {}
    for norm, eps in (("l2", 0.3), ("l1", 1.0)):
        results = RobustnessReport({"m": model}, spec, [eps], verbose=0,
                                   norm=norm).run((x, y))
        kinds[norm] = {check["check"] for check in results.masking_checks}
        assert "iterative_at_least_fgsm" in kinds[norm]
        assert results.accuracy("m", "autoattack", eps) <= results.accuracy(
            "m", "fgsm", eps)
    assert "black_box_beats_white_box" in kinds["l2"]
    assert "black_box_beats_white_box" not in kinds["l1"]
