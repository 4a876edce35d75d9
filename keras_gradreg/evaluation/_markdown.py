"""Markdown tables, the one helper behind every table the package writes."""

from __future__ import annotations

from typing import List, Sequence


def markdown_table(header: Sequence[str],
                   rows: Sequence[Sequence[str]]) -> List[str]:
    """The lines of a Markdown table: the header, the rule, one per row.

    Args:
        header: The column titles.
        rows: The cells of each row, as strings, as many as ``header``.

    Returns:
        The table's lines, without line ends.

    Raises:
        ValueError: If a row has another number of cells than ``header``.

    Example:
        >>> from keras_gradreg.evaluation import markdown_table
        >>> print("\\n".join(markdown_table(["model", "clean"], [["a", "98.1"]])))
        | model | clean |
        |---|---|
        | a | 98.1 |
    """
    header = [str(cell) for cell in header]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in rows:
        cells = [str(cell) for cell in row]
        if len(cells) != len(header):
            raise ValueError(f"a row of {len(cells)} cells under a header of "
                             f"{len(header)}: {cells}")
        lines.append("| " + " | ".join(cells) + " |")
    return lines
