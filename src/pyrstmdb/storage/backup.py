"""Consistent backups of a live data directory: what a backup holds and reading it.

A backup is the newest checkpoint plus the WAL from the checkpoint's segment up to
the durable end at the moment the backup began (a :class:`Pin`)::

    BACKUP_BEGIN ─▶ Core.pause_compaction(pin): sync the log, wait for a running
                    compaction, then record (checkpoint file, segments, durable end)
    BACKUP_READ  ─▶ read_chunk(pin, file, offset, length): bytes below the pinned size
    BACKUP_END, or the client leaving ─▶ Core.resume_compaction()

Why the pinned bytes cannot change while writes go on: a segment is only appended to
(a failed fsync round cuts the log back to the durable end, never below it), and
segments and checkpoints are deleted or replaced only by compaction and FLUSH_ALL,
which ``Core`` refuses with :class:`CompactionPaused` while a backup is in progress.
The active segment is copied only up to the pinned end, so nothing written later is
included; a server opened on the copy recovers exactly that prefix.

Per-instance snapshots (``snap-*.snap``) are exports, not state, and are not part of
a backup. Raises ``BadRequest`` for a read outside the pin, ``WalIoError`` when a
pinned file cannot be read.
"""

from __future__ import annotations

import os
import threading
import time
import uuid
from dataclasses import dataclass
from typing import Any

from pyrstmdb.errors import BadRequest, Conflict, InternalError, NotFound, WalIoError
from pyrstmdb.storage.disk import DiskStore
from pyrstmdb.storage.snapshot import checkpoint_files
from pyrstmdb.storage.wal import offset_position, offset_segment, segment_name

#: The most one BACKUP_READ returns (4 MiB: about 5.6 MB of base64, well under a frame).
MAX_CHUNK = 4 * 1024 * 1024


class CompactionPaused(Conflict):
    """Compaction or FLUSH_ALL was asked for while a backup holds them off."""


@dataclass(frozen=True, slots=True)
class PinnedFile:
    """One file of a backup: its name inside the data directory and the bytes it keeps."""

    name: str  # "wal/<16 hex>.wal" or "snapshots/checkpoint-<16 hex>.ckpt"
    path: str
    size: int


@dataclass(frozen=True, slots=True)
class Pin:
    """What one backup holds: files with the sizes they had when it began."""

    backup_id: str
    created_at: int
    end_offset: int
    checkpoint_offset: int | None
    files: tuple[PinnedFile, ...]

    def file(self, name: str) -> PinnedFile:
        for pinned in self.files:
            if pinned.name == name:
                return pinned
        raise BadRequest(f"invalid request: backup has no file {name!r}", {"file": name})

    def to_dict(self) -> dict[str, Any]:
        """The BACKUP_BEGIN result."""
        return {
            "backup_id": self.backup_id,
            "created_at": self.created_at,
            "end_offset": self.end_offset,
            "checkpoint_offset": self.checkpoint_offset,
            "files": [{"name": f.name, "size": f.size} for f in self.files],
            "total_bytes": sum(f.size for f in self.files),
            "chunk_bytes": MAX_CHUNK,
        }


def pin_backup(store: DiskStore) -> Pin:
    """The files of a backup of ``store`` as they are now.

    Call with compaction held off and the log synced (``Core.pause_compaction``):
    everything below the durable end is then in the files.
    """
    end = store.wal.durable_end
    files: list[PinnedFile] = []
    checkpoints = checkpoint_files(store.snapshot_dir)
    checkpoint_offset = checkpoints[-1][0] if checkpoints else None
    if checkpoints:
        name = checkpoints[-1][1]
        path = os.path.join(store.snapshot_dir, name)
        files.append(PinnedFile(f"snapshots/{name}", path, os.path.getsize(path)))
    first = 0 if checkpoint_offset is None else offset_segment(checkpoint_offset)
    last = offset_segment(end)
    segments = [s for s in store.wal.segments() if first <= s.segment_id <= last]
    if not segments or segments[-1].segment_id != last:
        raise InternalError(f"the segment holding the durable end ({segment_name(last)}) is gone")
    for segment in segments:
        size = segment.size if segment.segment_id < last else offset_position(end)
        files.append(PinnedFile(f"wal/{segment_name(segment.segment_id)}", segment.path, size))
    return Pin(str(uuid.uuid4()), time.time_ns() // 1_000_000, end, checkpoint_offset, tuple(files))


def read_chunk(pin: Pin, name: str, offset: int, length: int) -> bytes:
    """Up to ``length`` (at most :data:`MAX_CHUNK`) bytes of a pinned file from ``offset``.

    Fewer bytes only at the pinned end of the file; none at it.
    """
    pinned = pin.file(name)
    if offset > pinned.size:
        raise BadRequest(
            f"invalid request: offset {offset} is past the end of {name} ({pinned.size} bytes)",
            {"file": name, "size": pinned.size},
        )
    wanted = min(length, MAX_CHUNK, pinned.size - offset)
    try:
        fd = os.open(pinned.path, os.O_RDONLY)
    except OSError as err:
        raise WalIoError(f"cannot read {name} for the backup: {err.strerror or err}") from err
    try:
        parts: list[bytes] = []
        got = 0
        while got < wanted:
            part = os.pread(fd, wanted - got, offset + got)
            if not part:
                raise WalIoError(f"{name} is shorter than when the backup began")
            parts.append(part)
            got += len(part)
    except OSError as err:
        raise WalIoError(f"cannot read {name} for the backup: {err.strerror or err}") from err
    finally:
        os.close(fd)
    return b"".join(parts)


class BackupSet:
    """The backups one client holds (by id); closed for good when the client leaves."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pins: dict[str, Pin] = {}
        self._closed = False

    def add(self, pin: Pin) -> bool:
        """Hold ``pin``; False when the client has already left."""
        with self._lock:
            if self._closed:
                return False
            self._pins[pin.backup_id] = pin
            return True

    def get(self, backup_id: str) -> Pin:
        with self._lock:
            pin = self._pins.get(backup_id)
        if pin is None:
            raise NotFound(f"no backup {backup_id!r} on this connection", {"backup_id": backup_id})
        return pin

    def remove(self, backup_id: str) -> Pin | None:
        with self._lock:
            return self._pins.pop(backup_id, None)

    def close(self) -> list[Pin]:
        """Forget every backup (the client left); returns those that were held."""
        with self._lock:
            self._closed = True
            pins = list(self._pins.values())
            self._pins.clear()
        return pins

    def __len__(self) -> int:
        with self._lock:
            return len(self._pins)
