"""Writing a file so that readers see the old one or the new one, never half.

Example:
    >>> import os, tempfile
    >>> path = os.path.join(tempfile.mkdtemp(), "note.txt")
    >>> write_atomically(path, lambda temporary: open(temporary, "w").write("hi"))
    >>> open(path).read(), os.listdir(os.path.dirname(path))
    ('hi', ['note.txt'])
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from typing import Callable


def write_atomically(path: str, write: Callable[[str], object]) -> None:
    """Writes ``path`` through ``write(temporary_path)``, then renames.

    The temporary file lies in the same folder (so ``os.replace`` is an
    atomic rename) and keeps the extension (Keras wants ``.keras``): an
    interrupt or error leaves the old ``path`` intact and no temporary file
    behind.
    """
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    stem, extension = os.path.splitext(os.path.basename(path))
    handle, temporary = tempfile.mkstemp(
        prefix=f".{stem}.", suffix=f".partial{extension}", dir=folder
    )
    os.close(handle)
    try:
        write(temporary)
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.remove(temporary)
        raise
