"""The release's metadata agree: the package version has a dated CHANGELOG
section in Keep a Changelog form, and the build reads that version."""

import configparser
import pathlib
import re

import keras_gradreg

ROOT = pathlib.Path(__file__).resolve().parents[1]


def test_changelog_has_a_dated_section_for_the_version():
    text = (ROOT / "CHANGELOG.md").read_text()
    version = re.escape(keras_gradreg.__version__)
    assert re.search(rf"^## \[{version}\] - \d{{4}}-\d{{2}}-\d{{2}}$", text,
                     re.MULTILINE), keras_gradreg.__version__
    headings = re.findall(r"^## \[([^\]]+)\]", text, re.MULTILINE)
    assert headings[0] == "Unreleased" and len(set(headings)) == len(headings)
    for kind in re.findall(r"^### (.+)$", text, re.MULTILINE):
        assert kind in ("Added", "Changed", "Deprecated", "Removed", "Fixed",
                        "Security"), kind


def test_setup_cfg_takes_the_version_from_the_package():
    config = configparser.ConfigParser()
    config.read(ROOT / "setup.cfg")
    assert config["metadata"]["version"] == "attr: keras_gradreg.__version__"
