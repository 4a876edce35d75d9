"""The documentation's own links: every relative link in README.md, CHANGELOG.md
and docs/*.md names a file of the repository, and every ``#anchor`` names a
heading of its file, with GitHub's rule for turning a heading into an anchor.
The API reference (docs/reference/) covers every public name of the package.

No TensorFlow here: these tests read markdown and parse Python source only.
"""

import ast
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

    >>> anchor("MNIST, 10 epochs, under AutoAttack (the standard ensemble)")
    'mnist-10-epochs-under-autoattack-the-standard-ensemble'
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
    assert anchor("Robustness per cost: the full grid (3 epochs; 21 recipes)") == (
        "robustness-per-cost-the-full-grid-3-epochs-21-recipes")
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


def _public_names(path: str) -> list:
    """The names in ``__all__`` of a Python file, read without importing it."""
    with open(path, encoding="utf-8") as file:
        tree = ast.parse(file.read())
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(
                getattr(target, "id", None) == "__all__"
                for target in node.targets):
            return [element.value for element in node.value.elts]
    raise AssertionError(f"{path} has no __all__")


def test_api_reference_covers_every_public_name():
    """Each name of ``keras_gradreg.__all__`` is rendered by a ``:::``
    directive of docs/reference/, itself or as a member of a module page."""
    reference = os.path.join(ROOT, "docs", "reference")
    directives = set()
    for name in os.listdir(reference):
        with open(os.path.join(reference, name), encoding="utf-8") as file:
            directives |= set(re.findall(r"^::: (\S+)", file.read(), re.M))
    modules = {"callbacks", "evaluation", "audio"}  # where the classes live
    members = set()
    for module in modules:
        path = os.path.join(ROOT, "keras_gradreg", module)
        path = (os.path.join(path, "__init__.py") if os.path.isdir(path)
                else path + ".py")
        if f"keras_gradreg.{module}" in directives:
            members |= set(_public_names(path))
    missing = [
        name for name in _public_names(
            os.path.join(ROOT, "keras_gradreg", "__init__.py"))
        if name != "__version__"
        and f"keras_gradreg.{name}" not in directives and name not in members]
    assert not missing, f"no API reference page renders {missing}"
