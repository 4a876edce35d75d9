"""Replacing outputs so that readers see the old ones or the new, never a mix.

* :func:`write_atomically`: one file, written beside itself and renamed.
* :class:`Output`: a folder (or a file) written completely in a hidden
  scratch folder beside it, then swapped in by one rename: on Linux and
  macOS an atomic exchange of the two directory entries, so a kill at any
  point leaves either the whole old output or the whole new one. A lock
  file beside the scratch folder is held while its process lives; the next
  :class:`Output` of the same path removes scratch folders whose process
  is gone (:func:`remove_stale`).
* :func:`fault_point`: where the tests kill the process (environment
  variable ``KGR_FAULT_AFTER``).

Example:
    >>> import os, tempfile
    >>> path = os.path.join(tempfile.mkdtemp(), "note.txt")
    >>> write_atomically(path, lambda temporary: open(temporary, "w").write("hi"))
    >>> open(path).read(), os.listdir(os.path.dirname(path))
    ('hi', ['note.txt'])
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import os
import shutil
import signal
import sys
import tempfile
from typing import Callable, Iterable, Optional

try:
    import fcntl
except ImportError:  # Windows: no locks, so stale scratch stays
    fcntl = None

FAULT_ENV = "KGR_FAULT_AFTER"
"""Names a :func:`fault_point` at which the process kills itself."""



def fault_point(step: str) -> None:
    """Kills this process with SIGKILL at ``step`` if ``KGR_FAULT_AFTER``
    names it: ``step`` for its first time, ``step#n`` for its n-th.

    A test hook: the command's tests kill it at each step of a write (as a
    power cut or ``kill -9`` would) and check what is left on disk.
    """
    wanted = os.environ.get(FAULT_ENV)
    if not wanted or not wanted.startswith(step):
        return
    _FAULT_COUNTS[step] = _FAULT_COUNTS.get(step, 0) + 1
    if wanted in (step, f"{step}#{_FAULT_COUNTS[step]}") and (
            wanted != step or _FAULT_COUNTS[step] == 1):
        sys.stdout.flush()
        os.kill(os.getpid(), signal.SIGKILL)


_FAULT_COUNTS: dict = {}


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


# Outputs replaced as one unit -------------------------------------------------


def scratch_prefix(path: str) -> str:
    """The name prefix of ``path``'s scratch folders (hidden, beside it)."""
    return f".{os.path.basename(os.path.abspath(path))}.partial-"


LOCK_SUFFIX = ".lock"
"""A scratch folder ``S`` has the lock file ``S.lock`` beside it: created
(and locked) before the folder and removed after it."""


def remove_stale(path: str) -> list:
    """Removes the scratch folders of ``path`` that no live process holds.

    Only lock files beside ``path`` named ``<scratch_prefix>*.lock`` count,
    and of those only the ones that can be locked (their process is gone):
    each goes with its folder. Without ``fcntl`` (Windows) nothing is
    removed. Returns the folders removed.
    """
    parent = os.path.dirname(os.path.abspath(path))
    prefix = scratch_prefix(path)
    removed = []
    if fcntl is None or not os.path.isdir(parent):
        return removed
    for name in sorted(os.listdir(parent)):
        if not (name.startswith(prefix) and name.endswith(LOCK_SUFFIX)):
            continue
        lock_path = os.path.join(parent, name)
        lock = _try_lock(lock_path)
        if lock is None:
            continue
        try:
            folder = lock_path[:-len(LOCK_SUFFIX)]
            aside = folder + _ASIDE  # see _swap's fallback
            if os.path.isdir(aside) and not os.path.lexists(path):
                os.rename(aside, path)
            elif os.path.isdir(aside):
                shutil.rmtree(aside, ignore_errors=True)
            if os.path.isdir(folder) and not os.path.islink(folder):
                shutil.rmtree(folder, ignore_errors=True)
                removed.append(folder)
            os.remove(lock_path)
        finally:
            os.close(lock)
    return removed


def _try_lock(lock_path: str) -> Optional[int]:
    """An fd holding the lock of ``lock_path``, or None if another process
    holds it (or it cannot be opened)."""
    try:
        fd = os.open(lock_path, os.O_RDWR)
    except OSError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        return None
    return fd


class Output:
    """An output folder or file that a command replaces as one unit.

    :meth:`prepare` (before any work, so that an unwritable place fails
    early) removes stale scratch folders, creates a locked scratch folder
    beside ``path`` and checks that it can be written; the command writes
    into :attr:`target`; :meth:`commit` swaps it in with one rename;
    :meth:`discard` removes the scratch.

    Args:
        path: The output.
        folder: Whether the output is a folder (written as the scratch
            folder itself) or a file (written inside it).
        keep: For a folder: whether an entry of the old folder that the
            new one lacks is carried into it (default: every one).
    """

    def __init__(self, path: str, folder: bool = True,
                 keep: Optional[Callable[[str], bool]] = None):
        self.path = os.path.realpath(path)
        self.folder = folder
        self._keep = keep
        self.scratch: Optional[str] = None
        self._lock: Optional[int] = None
        self._lock_path: Optional[str] = None
        self._made: list = []

    @property
    def target(self) -> str:
        """Where the command writes the new output."""
        if self.scratch is None:
            raise RuntimeError("Output.prepare() has not run.")
        if self.folder:
            return self.scratch
        return os.path.join(self.scratch, os.path.basename(self.path))

    def prepare(self, needed_bytes: int = 0) -> None:
        """Creates the locked scratch folder and checks it is writable.

        Raises:
            OSError: If the place cannot be written, or has fewer than
                ``needed_bytes`` free.
        """
        parent = os.path.dirname(self.path)
        missing = parent
        while not os.path.exists(missing):
            self._made.insert(0, missing)
            missing = os.path.dirname(missing)
        if not os.path.isdir(missing):
            raise NotADirectoryError(errno.ENOTDIR, "Not a directory",
                                     missing)
        if self.folder and os.path.isdir(self.path) and not os.access(
                self.path, os.W_OK | os.X_OK):
            raise PermissionError(errno.EACCES, "Permission denied",
                                  self.path)
        try:
            os.makedirs(parent, exist_ok=True)
            remove_stale(self.path)
            self._lock, self._lock_path = tempfile.mkstemp(
                prefix=scratch_prefix(self.path), suffix=LOCK_SUFFIX,
                dir=parent)
            if fcntl is not None:
                fcntl.flock(self._lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            self.scratch = self._lock_path[:-len(LOCK_SUFFIX)]
            os.mkdir(self.scratch)
            fault_point("scratch")
            _probe(self.scratch)
            free = shutil.disk_usage(self.scratch).free
            if free < needed_bytes:
                raise OSError(errno.ENOSPC, f"No space left on device "
                              f"({free} bytes free, {needed_bytes} needed)",
                              parent)
        except BaseException:
            self.discard()
            raise

    def commit(self) -> None:
        """Puts the new output in place of the old with one rename."""
        fault_point("swap")
        if not self.folder:
            os.replace(self.target, self.path)
        elif os.path.isdir(self.path) and not os.path.islink(self.path):
            self._carry_over()
            _swap(self.scratch, self.path)  # the scratch holds the old one
        else:
            if os.path.lexists(self.path):
                os.remove(self.path)
            os.rename(self.scratch, self.path)
        fault_point("swapped")
        self._made = []
        self.discard()

    def discard(self) -> None:
        """Removes the scratch folder and its lock, and the folders that
        :meth:`prepare` created."""
        if self.scratch is not None and os.path.isdir(self.scratch):
            shutil.rmtree(self.scratch, ignore_errors=True)
        self.scratch = None
        if self._lock is not None:
            with contextlib.suppress(OSError):
                os.remove(self._lock_path)
            os.close(self._lock)
            self._lock = None
        for folder in reversed(self._made):
            with contextlib.suppress(OSError):
                os.rmdir(folder)
        self._made = []

    def _carry_over(self) -> None:
        """Links (or copies) the old folder's other entries into the new."""
        written = set(os.listdir(self.scratch))
        for name in _others(self.path, written, self._keep):
            source = os.path.join(self.path, name)
            copy = os.path.join(self.scratch, name)
            if os.path.islink(source):
                os.symlink(os.readlink(source), copy)
            elif os.path.isdir(source):
                shutil.copytree(source, copy, symlinks=True,
                                copy_function=_link_or_copy)
            else:
                _link_or_copy(source, copy)


def _others(folder: str, written: set, keep) -> Iterable[str]:
    for name in sorted(os.listdir(folder)):
        if name not in written and (keep is None or keep(name)):
            yield name


def _link_or_copy(source: str, target: str) -> None:
    try:
        os.link(source, target)
    except OSError:
        shutil.copy2(source, target)


def _probe(folder: str) -> None:
    """Writes, syncs and removes a small file: fails on a read-only or
    full file system."""
    probe = os.path.join(folder, ".probe")
    with open(probe, "wb") as handle:
        handle.write(b"\0" * 65536)
        handle.flush()
        os.fsync(handle.fileno())
    os.remove(probe)


_ASIDE = ".old"


def _swap(new: str, old: str) -> None:
    """Exchanges two directory entries atomically where the system can
    (Linux ``renameat2``, macOS ``renamex_np``); elsewhere renames the old
    aside first: a kill between the renames leaves ``old`` missing, and
    :func:`remove_stale` puts it back)."""
    if _exchange(new, old):
        return
    aside = new + _ASIDE
    os.rename(old, aside)
    os.rename(new, old)
    os.rename(aside, new)


def _exchange(a: str, b: str) -> bool:
    try:
        libc = ctypes.CDLL(None, use_errno=True)
    except OSError:
        return False
    paths = os.fsencode(a), os.fsencode(b)
    if hasattr(libc, "renameat2"):  # Linux: AT_FDCWD, RENAME_EXCHANGE
        result = libc.renameat2(-100, paths[0], -100, paths[1], 2)
    elif hasattr(libc, "renamex_np"):  # macOS: RENAME_SWAP
        result = libc.renamex_np(paths[0], paths[1], 2)
    else:
        return False
    if result == 0:
        return True
    code = ctypes.get_errno()
    if code in (errno.ENOSYS, errno.EINVAL, errno.ENOTSUP):
        return False  # this file system cannot: rename aside
    raise OSError(code, os.strerror(code), b)
