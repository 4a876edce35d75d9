"""The documentation's own links: every relative link in README.md, CHANGELOG.md
and docs/*.md names a file of the repository, and every ``#anchor`` names a
heading of its file, with GitHub's rule for turning a heading into an anchor.

No TensorFlow here: these tests read markdown only.
"""

import os
import re

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DOCS = ["README.md", "CHANGELOG.md", "benchmarks/README.md"] + sorted(
    os.path.join("docs", name) for name in os.listdir(os.path.join(ROOT, "docs"))
    if name.endswith(".md"))

# [text](target) and ![alt](target); a target ends at whitespace or ")".
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)\)")
FENCE = re.compile(r"^(```|~~~)")


def _prose(text: str) -> str:
    """``text`` without its fenced code blocks (links there are code)."""
    lines, inside = [], False
    for line in text.splitlines():
        if FENCE.match(line.strip()):
            inside = not inside
            continue
        if not inside:
            lines.append(line)
    return "\n".join(lines)


def anchor(heading: str) -> str:
    """GitHub's anchor of a heading: lower case, markup and punctuation
    dropped (hyphens and underscores kept), spaces to hyphens.

    >>> anchor("MNIST, 10 epochs with FGSM-RS, under AutoAttack (issue 14)")
    'mnist-10-epochs-with-fgsm-rs-under-autoattack-issue-14'
    """
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # links: their text
    text = text.strip().lower().replace("`", "").replace("*", "")
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def anchors(path: str) -> set:
    """The anchors of a markdown file's headings (repeats get ``-1``, ``-2``)."""
    with open(path, encoding="utf-8") as file:
        text = _prose(file.read())
    seen, found = {}, set()
    for line in text.splitlines():
        match = re.match(r"^#{1,6}\s+(.*?)\s*#*\s*$", line)
        if match:
            name = anchor(match.group(1))
            count = seen.get(name, 0)
            seen[name] = count + 1
            found.add(name if count == 0 else f"{name}-{count}")
    return found


def links(path: str):
    """The relative link targets of a markdown file, outside code blocks."""
    with open(path, encoding="utf-8") as file:
        text = _prose(file.read())
    for target in LINK.findall(text):
        if not re.match(r"^[a-z][a-z0-9+.-]*:", target):  # http:, mailto:
            yield target


def test_anchor_follows_githubs_rule():
    assert anchor("Install and run") == "install-and-run"
    assert anchor("Throughput on the paper's MNIST CNN, 2 quiet CPU cores") == (
        "throughput-on-the-papers-mnist-cnn-2-quiet-cpu-cores")
    assert anchor("Robustness per cost: the full grid (issue 15; in progress)") == (
        "robustness-per-cost-the-full-grid-issue-15-in-progress")
    assert anchor("`GradRegModel` and *friends*") == "gradregmodel-and-friends"


def test_a_broken_link_is_found(tmp_path):
    page = tmp_path / "page.md"
    page.write_text("# Title\n\n[ok](#title) [bad](#nowhere) [file](missing.md)\n"
                    "```\n[in code](#ignored)\n```\n")
    assert list(links(str(page))) == ["#title", "#nowhere", "missing.md"]
    assert anchors(str(page)) == {"title"}


@pytest.mark.parametrize("doc", DOCS)
def test_relative_links_and_anchors_resolve(doc):
    path = os.path.join(ROOT, doc)
    if not os.path.exists(path):
        pytest.skip(f"{doc} is not in this checkout")
    broken = []
    for target in links(path):
        file_part, _, fragment = target.partition("#")
        target_path = (os.path.normpath(os.path.join(os.path.dirname(path),
                                                     file_part))
                       if file_part else path)
        if not os.path.exists(target_path):
            broken.append(f"{target}: no file {os.path.relpath(target_path, ROOT)}")
        elif fragment and target_path.endswith(".md") and (
                fragment not in anchors(target_path)):
            broken.append(f"{target}: no heading with that anchor")
    assert not broken, f"{doc}: " + "; ".join(broken)
