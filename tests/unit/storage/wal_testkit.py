"""Shared helpers for the WAL tests: a fault-injecting, fsync-recording FileIO and builders."""

from __future__ import annotations

import errno
import os
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from pyrstmdb.errors import WalIoError
from pyrstmdb.storage.wal import FileIO, Wal, encode_offset, segment_name
from pyrstmdb.storage.wal.record import encode_record


@dataclass
class Fault:
    op: str
    err: int
    times: int  # how many calls fail (-1: every call until disarmed)
    skip: int  # calls that succeed before the first failure


@dataclass(frozen=True)
class SyncRecord:
    """A completed fsync: which file (inode) and how many bytes it had when the call began."""

    inode: int
    size: int


class FaultyIO(FileIO):
    """A FileIO that fails chosen calls and records every completed data fsync."""

    def __init__(self) -> None:
        self._faults: list[Fault] = []
        self._guard = threading.Lock()
        self.calls: dict[str, int] = {}
        self.syncs: list[SyncRecord] = []
        self.dir_syncs = 0
        self.partial_writes = True  # a failing write first writes half of its data

    def arm(self, op: str, err: int = errno.ENOSPC, *, times: int = 1, skip: int = 0) -> None:
        with self._guard:
            self._faults.append(Fault(op, err, times, skip))

    def disarm(self) -> None:
        with self._guard:
            self._faults.clear()

    def _fail(self, op: str) -> int | None:
        with self._guard:
            self.calls[op] = self.calls.get(op, 0) + 1
            for fault in self._faults:
                if fault.op != op:
                    continue
                if fault.skip > 0:
                    fault.skip -= 1
                    continue
                if fault.times == 0:
                    continue
                fault.times -= 1 if fault.times > 0 else 0
                return fault.err
        return None

    def _check(self, op: str) -> None:
        err = self._fail(op)
        if err is not None:
            raise OSError(err, f"injected {os.strerror(err)} in {op}")

    def open(self, path: str, flags: int, mode: int = 0o644) -> int:
        self._check("open")
        return super().open(path, flags, mode)

    def write(self, fd: int, data: bytes | bytearray | memoryview) -> int:
        err = self._fail("write")
        if err is not None:
            if self.partial_writes and len(data) > 1:
                super().write(fd, data[: len(data) // 2])
            raise OSError(err, f"injected {os.strerror(err)} in write")
        return super().write(fd, data)

    def fdatasync(self, fd: int) -> None:
        self._sync(fd, "fdatasync")

    def fsync(self, fd: int) -> None:
        self._sync(fd, "fsync")

    def _sync(self, fd: int, op: str) -> None:
        info = os.fstat(fd)
        self._check(op)
        if op == "fsync":
            super().fsync(fd)
        else:
            super().fdatasync(fd)
        with self._guard:
            self.syncs.append(SyncRecord(info.st_ino, info.st_size))

    def ftruncate(self, fd: int, length: int) -> None:
        self._check("ftruncate")
        super().ftruncate(fd, length)

    def unlink(self, path: str) -> None:
        self._check("unlink")
        super().unlink(path)

    def fsync_dir(self, path: str) -> None:
        self._check("fsync_dir")
        super().fsync_dir(path)
        with self._guard:
            self.dir_syncs += 1

    def synced_size(self, path: str | Path) -> int:
        """The largest size of this file covered by a completed fsync so far."""
        inode = os.stat(path).st_ino
        with self._guard:
            return max((s.size for s in self.syncs if s.inode == inode), default=-1)

    def data_syncs(self) -> int:
        with self._guard:
            return len(self.syncs)


@dataclass
class SegmentBuilder:
    """Writes segment files by hand (for recovery tests)."""

    directory: Path
    next_sequence: int = 1
    sizes: dict[int, int] = field(default_factory=dict)

    def record(self, payload: bytes = b'{"k":1}', type_code: int = 3) -> bytes:
        data = encode_record(type_code, payload, self.next_sequence)
        self.next_sequence += 1
        return data

    def write(self, segment_id: int, *chunks: bytes) -> Path:
        path = self.directory / segment_name(segment_id)
        with open(path, "ab") as handle:
            for chunk in chunks:
                handle.write(chunk)
        self.sizes[segment_id] = path.stat().st_size
        return path

    def records(self, segment_id: int, count: int, payload: bytes = b'{"k":1}') -> Path:
        return self.write(segment_id, *(self.record(payload) for _ in range(count)))


def seg_path(directory: Path, segment_id: int) -> Path:
    return directory / segment_name(segment_id)


def offset(segment_id: int, position: int) -> int:
    return encode_offset(segment_id, position)


def payload(i: int, size: int = 40) -> bytes:
    """A distinct JSON-ish payload of about ``size`` bytes."""
    head = b'{"i":%d,"pad":"' % i
    tail = b'"}'
    return head + b"x" * max(0, size - len(head) - len(tail)) + tail


def eventually(check: Callable[[], bool], timeout: float = 5.0) -> bool:
    """Poll ``check`` until it holds or ``timeout`` seconds pass; its last answer."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.002)
    return check()


def append_when_room(
    log: Wal, items: Sequence[tuple[int, bytes]], timeout: float = 5.0
) -> list[int]:
    """Append, retrying while the log refuses for lack of space (it probes again shortly)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return log.append(items)
        except WalIoError as err:
            if "no space" not in err.message or time.monotonic() > deadline:
                raise
        time.sleep(0.01)
