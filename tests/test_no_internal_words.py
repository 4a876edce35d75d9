"""The repository speaks only of the software: no tracked text file mentions
the sessions that built it, its workplace, or internal tracker numbers.

A line fails when it matches ``WORDS`` after the ``EXEMPT`` names are taken
out of it: Keras' ``clear_session`` and TensorBoard's HParams session API
(``session_start_info``, ``SESSION_START_INFO``, "HParams session"). Binary
files and images are skipped. No TensorFlow here: the test reads text only.
"""

import os
import re
import subprocess

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
WORDS = re.compile(r"(?i)\bsessions?\b|workplace|\bissue\s*#?\d+")
EXEMPT = ("clear_session", "session_start_info", "SESSION_START_INFO",
          "HParams session")
SKIP_SUFFIXES = (".png", ".jpg", ".jpeg", ".gif", ".svg", ".ico", ".pdf",
                 ".npz", ".npy", ".gz", ".zip", ".keras", ".h5", ".wav")
THIS_FILE = os.path.relpath(os.path.abspath(__file__), ROOT)


def offending_lines(path: str, text: str) -> list:
    """``"path:line: text"`` for each line of ``text`` that fails."""
    found = []
    for number, line in enumerate(text.splitlines(), 1):
        stripped = line
        for name in EXEMPT:
            stripped = stripped.replace(name, "")
        if WORDS.search(stripped):
            found.append(f"{path}:{number}: {line.strip()[:120]}")
    return found


def _tracked_files() -> list:
    try:
        listed = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT,
                                capture_output=True, check=True, timeout=60)
    except (OSError, subprocess.SubprocessError):
        pytest.skip("not a git checkout (or no git): nothing tracked to read")
    return [name for name in listed.stdout.decode().split("\0") if name]


def _text(path: str):
    """The file's text, or None for a binary file, an image or a gap."""
    if path.lower().endswith(SKIP_SUFFIXES):
        return None
    try:
        with open(os.path.join(ROOT, path), "rb") as file:
            data = file.read()
    except OSError:  # deleted in the work tree, not yet in the index
        return None
    if b"\0" in data:
        return None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return None


@pytest.mark.parametrize("line, fails", [
    ("Measured in session 16 at 25b64df.", True),
    ("Sessions 13-16's run", True),
    ("with this workplace's data beside it", True),
    ("## MNIST under AutoAttack (issue 14)", True),
    ("softplus with c 0.03, issue #15", True),
    ("keras.backend.clear_session()", False),
    ("from the HParams session API: session_start_info", False),
    ("SESSION_START_INFO_TAG", False),
    ("the issue of gradient masking", False),
    ("a sessionless request", False),
])
def test_the_rule(line, fails):
    assert bool(offending_lines("x.md", line)) is fails


def test_no_tracked_text_mentions_sessions_workplace_or_tracker_numbers():
    found = []
    for path in _tracked_files():
        if path == THIS_FILE:
            continue
        text = _text(path)
        if text is not None:
            found.extend(offending_lines(path, text))
    assert not found, (f"{len(found)} lines speak of how the project was made "
                       "rather than of the software:\n" + "\n".join(found))
