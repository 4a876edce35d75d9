"""A griffe extension: reads a Google-style ``Example:`` section as ``Examples:``.

keras-gradreg's docstrings title their doctests ``Example:`` (one example
each). Griffe's Google parser knows only ``Examples:`` as a section of code
examples and renders ``Example:`` as an admonition of plain text, which
joins the ``>>>`` lines into one paragraph. This extension renames the
section before the docstring is parsed, so the API reference shows each
example as a code block.
"""

import re

import griffe

_EXAMPLE = re.compile(r"^(\s*)Example:\s*$", re.MULTILINE)


class ExampleSections(griffe.Extension):
    """Renames ``Example:`` section headers to ``Examples:``."""

    def on_instance(self, *, obj, **kwargs) -> None:
        docstring = obj.docstring
        if docstring is not None and "Example:" in docstring.value:
            docstring.value = _EXAMPLE.sub(r"\1Examples:", docstring.value)
