"""One process at a time on an output: an exclusive ``filelock.FileLock`` on ``<file>.lock`` whose file is removed
when its holder lets go, so that no 0-byte ``.lock`` stays beside an output once a run has ended.

Why by hand: filelock's Unix ``FileLock`` keeps its file on release on purpose ("the file stays in place on release
so waiters share the same inode"); its ``preserve_lock_file`` option only governs Windows' post-release unlink, and
``SoftFileLock`` (which deletes its marker) is not released by the system when its process dies, so a killed run
would lock its output for good. ``is_singleton`` only shares one lock object within a process. ``on_acquired``
(filelock >= 3.30; this package accepts 3.12) could run the same inode check, so the descriptor is read from the
lock's context instead (``_lock_fd``), and where a filelock version hides it the file is kept, as before.

The race removal opens, and how it is closed: the holder removes the file *while it still holds it*, so no other run
can be holding it then; a run that opened the old file just before, and locks it just after, holds a lock on a file
no longer at the path, which would let a third run lock a new file there at the same time. After each lock taken
(``_holds_current``) the held descriptor is compared (device, inode) with the file now at the path, and the path is
locked again when they differ. Newer filelocks make the same check themselves and then report the lock as not taken
(``Timeout`` with ``timeout=0``): a refusal is therefore trusted only when the file at the path is the same before
and after the attempt; otherwise the attempt is made again.
"""

from __future__ import annotations

import os
from pathlib import Path

from filelock import FileLock, Timeout

ATTEMPTS = 100  # a file removed and made again this many times in a row is not a race but a fault


class LockRemovedTooOften(RuntimeError):
    """The lock file kept being removed between opening and locking it."""


class RemovedOnRelease:
    """An exclusive, non-waiting lock on ``path`` whose file is removed when released."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self._lock = FileLock(self.path, timeout=0)

    @property
    def is_locked(self) -> bool:
        return self._lock.is_locked

    def acquire(self) -> bool:
        """Take the lock: True once held (on the file now at the path), False when another run holds it."""
        for _ in range(ATTEMPTS):
            before = _identity(self.path)
            try:
                self._lock.acquire()
            except Timeout:
                if before is not None and _identity(self.path) == before:
                    return False  # the same file stayed at the path all along: another run holds it
                continue  # the file was removed or replaced while we tried: a run just ended, try again
            if _holds_current(self._lock, self.path):
                return True
            self._lock.release()  # the file we locked was removed from the path: lock the path again
        raise LockRemovedTooOften(f"could not take the lock {self.path}: it keeps being removed and made again")

    def release(self) -> None:
        """Remove the lock file (only the one we hold, while we hold it), then let go of the lock."""
        if not self._lock.is_locked:
            return
        try:
            if _lock_fd(self._lock) is not None and _holds_current(self._lock, self.path):
                self.path.unlink(missing_ok=True)
        finally:
            self._lock.release()


def _identity(path: Path) -> tuple[int, int] | None:
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return None
    return st.st_dev, st.st_ino


def _lock_fd(lock: FileLock) -> int | None:
    """The descriptor a held filelock locks (filelock keeps it in its context); None where a version hides it."""
    fd = getattr(getattr(lock, "_context", None), "lock_file_fd", None)
    return fd if isinstance(fd, int) else None


def _holds_current(lock: FileLock, path: Path) -> bool:
    """Whether the held ``lock`` locks the file now at ``path`` (not one removed from it). True where filelock's
    descriptor cannot be read (an older filelock): its lock file is then never removed, as before."""
    fd = _lock_fd(lock)
    if fd is None or not lock.is_locked:
        return fd is None
    try:
        held = os.fstat(fd)
    except OSError:
        return False
    return (held.st_dev, held.st_ino) == _identity(path)
