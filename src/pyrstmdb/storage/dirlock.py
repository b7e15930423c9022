"""One process per data directory: an exclusive lock on ``<data_dir>/LOCK``.

Whoever opens a data directory for writing (the server, an embedded
``Database(path)``, ``rstmdb check --repair``) takes ``flock(LOCK_EX |
LOCK_NB)`` on the file ``LOCK`` inside it and writes its process id there. A
second opener fails at once with ``DataDirectoryLocked`` naming the directory
and that id. The kernel drops the lock when the descriptor is closed, which
also happens when the holder dies, so a SIGKILLed server leaves no stale lock:
the file and its old PID stay behind but mean nothing without the lock. The
descriptor is close-on-exec, so child processes never inherit the lock.

An open file description holds the lock, not a process: opening the same
directory twice in one process is refused too (the message says so).

:func:`probe` only looks: it tells whether the directory is held right now and
by whom, without creating anything (``rstmdb check`` on a live directory).
"""

from __future__ import annotations

import fcntl
import os
from dataclasses import dataclass

from pyrstmdb.errors import DataDirectoryLocked

LOCK_NAME = "LOCK"


@dataclass(frozen=True, slots=True)
class Holder:
    """A process holding a data directory; ``pid`` is ``None`` if not written yet."""

    pid: int | None


def _read_pid(fd: int) -> int | None:
    try:
        text = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None


class DirLock:
    """The held lock of one data directory; :meth:`release` (or closing) gives it up."""

    def __init__(self, path: str, fd: int) -> None:
        self.path = path
        self._fd = fd

    @classmethod
    def acquire(cls, data_dir: str) -> DirLock:
        """Lock ``data_dir`` (which must exist) for this process.

        Raises ``DataDirectoryLocked`` when another holder has it, ``OSError`` when the
        lock file cannot be created or locked.
        """
        path = os.path.join(data_dir, LOCK_NAME)
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            pid = _read_pid(fd)
            os.close(fd)
            raise DataDirectoryLocked(data_dir, pid) from None
        except BaseException:
            os.close(fd)
            raise
        try:
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{os.getpid()}\n".encode("ascii"), 0)
        except BaseException:
            os.close(fd)
            raise
        return cls(path, fd)

    @property
    def held(self) -> bool:
        return self._fd >= 0

    def release(self) -> None:
        """Give the lock up (idempotent). The PID is cleared first, then the file closed."""
        fd, self._fd = self._fd, -1
        if fd < 0:
            return
        try:
            os.ftruncate(fd, 0)
        except OSError:
            pass  # the lock goes with the descriptor all the same
        finally:
            os.close(fd)

    def __enter__(self) -> DirLock:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def probe(data_dir: str) -> Holder | None:
    """Who holds ``data_dir`` now, or ``None``; creates nothing, takes nothing for long.

    The check takes a shared lock for an instant: it fails exactly when an exclusive
    holder exists.
    """
    try:
        fd = os.open(os.path.join(data_dir, LOCK_NAME), os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        return None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return Holder(_read_pid(fd))
        fcntl.flock(fd, fcntl.LOCK_UN)
        return None
    finally:
        os.close(fd)
