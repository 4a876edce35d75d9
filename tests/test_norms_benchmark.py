"""Tests of benchmarks/norms.py: its recipes, the dual-norm rule for c, and the table
it draws from the measured lines."""

import doctest
import json
import pathlib

from _scripts import load_script  # noqa: E402  (tests/ is on sys.path)

ROOT = pathlib.Path(__file__).resolve().parents[1]
norms = load_script(ROOT / "benchmarks" / "norms.py")


def _line(model, norm, eps, robust, clean=90.0, images=40):
    return {"model": model, "norm": norm, "eps": eps, "robust": robust,
            "clean": clean, "images": images}


def test_docstring_examples():
    assert doctest.testmod(norms).failed == 0


def test_each_threat_models_dual_penalty_norm_has_a_recipe():
    for threat, dual in norms.DUAL.items():
        name = f"logit_{dual}_c{norms.dual_c(threat):g}"
        assert norms.RECIPES[name].kwargs["norm"] == dual
    assert norms.DUAL == {"linf": "l1", "l2": "l2", "l1": "linf"}


def test_the_table_orders_rows_as_the_recipes_and_the_last_line_wins():
    lines = [_line("logit_l1_c0.03", "linf", 0.1, 50.0),
             _line("natural", "l2", 1.0, 10.0, clean=99.0),
             _line("logit_l1_c0.03", "linf", 0.1, 42.5)]
    rows = norms.table(lines).splitlines()
    assert rows[0].startswith("| model | images | clean | Linf 0.1 | Linf 0.2 | L2 1 |")
    assert rows[2] == "| natural | 40 | 99.0 | - | - | 10.0 | - | - | - | - |"
    assert rows[3] == "| logit_l1_c0.03 | 40 | 90.0 | 42.5 | - | - | - | - | - | - |"


def test_the_measured_lines_draw_the_results_table():
    measured = ROOT / "benchmarks" / "measured" / "norms.jsonl"
    lines = [json.loads(text) for text in measured.read_text().splitlines() if text]
    table = norms.table(lines)
    assert table.strip() in (ROOT / "docs" / "RESULTS.md").read_text()
