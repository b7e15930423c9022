"""The operating-system boundary of the WAL.

Every system call the WAL makes on files and directories goes through a :class:`FileIO`
object, so tests can subclass it to fail chosen calls (``ENOSPC``, ``EIO``) or to record
what was synced. The default implementation calls :mod:`os` directly and raises whatever
``OSError`` the system reports; callers translate those into ``WalIoError``.
"""

from __future__ import annotations

import errno
import os

_fdatasync = getattr(os, "fdatasync", os.fsync)
_CLOEXEC = getattr(os, "O_CLOEXEC", 0)
_DIRECTORY = getattr(os, "O_DIRECTORY", 0)

#: Flags for a new segment or copy: created exclusively, written at the end.
CREATE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND
#: Flags for continuing to write an existing segment.
APPEND_FLAGS = os.O_WRONLY | os.O_APPEND
READ_FLAGS = os.O_RDONLY
#: Flags for the space probe: a scratch file, emptied when it exists.
PROBE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_TRUNC
#: The errors that mean "the file system has no room" (device full, quota reached).
NO_SPACE_ERRORS = frozenset({errno.ENOSPC, errno.EDQUOT})


class FileIO:
    """Thin wrappers around the file system calls the WAL uses."""

    def open(self, path: str, flags: int, mode: int = 0o644) -> int:
        return os.open(path, flags | _CLOEXEC, mode)

    def write(self, fd: int, data: bytes | bytearray | memoryview) -> int:
        return os.write(fd, data)

    def pread(self, fd: int, size: int, position: int) -> bytes:
        return os.pread(fd, size, position)

    def file_size(self, fd: int) -> int:
        return os.fstat(fd).st_size

    def fsync(self, fd: int) -> None:
        os.fsync(fd)

    def fdatasync(self, fd: int) -> None:
        _fdatasync(fd)

    def ftruncate(self, fd: int, length: int) -> None:
        os.ftruncate(fd, length)

    def close(self, fd: int) -> None:
        os.close(fd)

    def listdir(self, path: str) -> list[str]:
        return os.listdir(path)

    def exists(self, path: str) -> bool:
        return os.path.lexists(path)

    def path_size(self, path: str) -> int:
        return os.stat(path).st_size

    def unlink(self, path: str) -> None:
        os.unlink(path)

    def rename(self, source: str, target: str) -> None:
        os.rename(source, target)

    def makedirs(self, path: str) -> None:
        os.makedirs(path, exist_ok=True)

    def fsync_dir(self, path: str) -> None:
        """Make creations, deletions and renames inside ``path`` durable."""
        fd = os.open(path, os.O_RDONLY | _DIRECTORY | _CLOEXEC)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def read_exactly(fileio: FileIO, fd: int, size: int, position: int) -> bytes:
    """Read ``size`` bytes at ``position`` (fewer only when the file ends first)."""
    data = fileio.pread(fd, size, position)
    if len(data) == size or not data:
        return data
    parts = [data]
    got = len(data)
    while got < size:
        more = fileio.pread(fd, size - got, position + got)
        if not more:
            break
        parts.append(more)
        got += len(more)
    return b"".join(parts)


def write_fully(fileio: FileIO, fd: int, data: bytes | bytearray) -> None:
    """Write all of ``data`` with one call, continuing only after a short write."""
    done = fileio.write(fd, data)
    if done == len(data):
        return
    view = memoryview(data)
    while done < len(data):
        written = fileio.write(fd, view[done:])
        if written <= 0:
            raise OSError(f"write made no progress at byte {done} of {len(data)}")
        done += written


def has_room(fileio: FileIO, path: str, size: int) -> bool:
    """Whether ``size`` bytes can be written now: write them to a scratch file at ``path``
    and delete it again. ``False`` when the file system has no room; other failures raise
    ``OSError``."""
    try:
        fd = fileio.open(path, PROBE_FLAGS)
        try:
            write_fully(fileio, fd, bytes(size))
        finally:
            try:
                fileio.close(fd)
            finally:
                fileio.unlink(path)
    except OSError as exc:
        if exc.errno in NO_SPACE_ERRORS:
            return False
        raise
    return True
