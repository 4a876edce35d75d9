"""The code base stays clean under ruff (rules in pyproject.toml)."""

import os
import shutil
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _ruff() -> list:
    """The ruff command of this environment, or a skip without one."""
    pytest.importorskip("ruff")
    beside = os.path.join(os.path.dirname(sys.executable), "ruff")
    found = beside if os.path.exists(beside) else shutil.which("ruff")
    if not found:
        pytest.skip("the ruff executable is not installed")
    return [found]


def test_ruff_finds_nothing():
    result = subprocess.run(
        _ruff() + ["check", "--output-format", "concise", "--no-cache", "."],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_ruff_would_catch_an_unused_import(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text("import os\n")
    result = subprocess.run(
        _ruff() + ["check", "--no-cache", "--config",
                   os.path.join(ROOT, "pyproject.toml"), str(bad)],
        capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 1 and "F401" in result.stdout
