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
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    temporary = temporary_beside(path)
    try:
        write(temporary)
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.remove(temporary)
        raise


def temporary_beside(path: str) -> str:
    """A new empty file in ``path``'s folder, to be renamed to ``path``.

    Its name is hidden and keeps the extension; its permissions are those
    of any new file (``0o666`` less the umask), not ``mkstemp``'s ``0o600``,
    so that the file renamed into place is readable as a plain ``open``
    would have left it.
    """
    stem, extension = os.path.splitext(os.path.basename(path))
    handle, temporary = tempfile.mkstemp(
        prefix=f".{stem}.", suffix=f".partial{extension}",
        dir=os.path.dirname(os.path.abspath(path)),
    )
    os.close(handle)
    os.chmod(temporary, 0o666 & ~_umask())
    return temporary


def _umask() -> int:
    """The process's umask (reading it means setting it: set it back)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask
