"""The repository speaks only of the software: no tracked text file narrates
how the project was made (its working periods, the place it was made in) or
cites internal tracker numbers.

A line fails when it matches ``WORDS`` after the ``EXEMPT`` names are taken
out of it: Keras' ``clear_session`` and TensorBoard's HParams session API
(``session_start_info``, ``SESSION_START_INFO``, "HParams session"). Binary
files and images are skipped, and the words themselves are spelled in pieces
here so that this file follows its own rule. No TensorFlow here: the test reads
text only.
"""

import os
import re
import subprocess

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PERIOD, PLACE, TICKET = "ses" + "sion", "work" + "place", "iss" + "ue"  # refused words
WORDS = re.compile(rf"(?i)\b{PERIOD}s?\b|{PLACE}|\b{TICKET}\s*#?\d+")
EXEMPT = ("clear_session", "session_start_info", "SESSION_START_INFO",
          "HParams session")
SKIP_SUFFIXES = (".png", ".jpg", ".jpeg", ".gif", ".svg", ".ico", ".pdf",
                 ".npz", ".npy", ".gz", ".zip", ".keras", ".h5", ".wav")


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
    (f"Measured in {PERIOD} 16 at 25b64df.", True),
    (f"{PERIOD.title()}s 13-16's run", True),
    (f"with this {PLACE}'s data beside it", True),
    (f"## MNIST under AutoAttack ({TICKET} 14)", True),
    (f"softplus with c 0.03, {TICKET} #15", True),
    ("keras.backend.clear_session()", False),
    ("from the HParams session API: session_start_info", False),
    ("SESSION_START_INFO_TAG", False),
    ("the issue of gradient masking", False),
    ("a sessionless request", False),
])
def test_the_rule(line, fails):
    assert bool(offending_lines("x.md", line)) is fails


def test_no_tracked_text_narrates_how_the_project_was_made():
    found = []
    for path in _tracked_files():
        text = _text(path)
        if text is not None:
            found.extend(offending_lines(path, text))
    assert not found, (f"{len(found)} lines speak of how the project was made "
                       "rather than of the software:\n" + "\n".join(found))
