"""Salvage a damaged log: keep its longest consistent prefix, move the rest aside.

For a log that opening refuses, for instance one two processes wrote at once
(``sequence 1 after 1``). The kept prefix ends before the first of: bytes that
are not a valid record (magic, type, length, checksum, a torn write), a
sequence number not above its predecessor, a payload that is not a readable
entry, or a missing segment. An atomic batch the prefix would end inside is
left out whole, so the prefix replays exactly as written.

Nothing is deleted. The bytes of the cut segment from the cut on are copied to
``<segment>.salvaged`` before the segment is truncated, and every later segment
is renamed to ``<segment>.salvaged`` (``.salvaged.N`` when taken); the log
ignores both. A cut before the checkpoint's position is refused: the checkpoint
would then describe records the log no longer has.

:func:`plan` only reads; :func:`apply` changes the directory and must run under
the data directory's lock. ``OSError`` comes through from file operations.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

import orjson

from pyrstmdb.engine.records import from_entry
from pyrstmdb.storage.wal.fileio import APPEND_FLAGS, CREATE_FLAGS, FileIO, write_fully
from pyrstmdb.storage.wal.layout import (
    HEADER,
    HEADER_SIZE,
    encode_offset,
    segment_name,
)
from pyrstmdb.storage.wal.record import Decoder
from pyrstmdb.storage.wal.recovery import segment_ids
from pyrstmdb.storage.wal.segment import find_valid_record, read_whole

SALVAGED_SUFFIX = ".salvaged"
_BATCH_CONTINUES = "batch_continues"


class SalvageRefused(Exception):
    """The log cannot be salvaged safely; the message says why."""


@dataclass(frozen=True, slots=True)
class Plan:
    """Where the consistent prefix ends and what lies beyond it.

    The prefix is every record before byte ``cut_position`` of ``cut_path`` (plus the
    segments before it); ``later`` are the whole segments after it.
    """

    reason: str
    cut_path: str
    cut_position: int
    cut_size: int
    later: list[str]
    kept_records: int
    kept_bytes: int
    dropped_records: int
    dropped_bytes: int

    @property
    def dropped_files(self) -> int:
        return len(self.later) + (1 if self.cut_position < self.cut_size else 0)


@dataclass(slots=True)
class _Scan:
    """Walks the segments in order until the first inconsistency."""

    wal_dir: str
    paths: list[str] = field(default_factory=list)
    sizes: list[int] = field(default_factory=list)
    last_sequence: int = 0
    records: int = 0
    held: list[tuple[int, int]] = field(default_factory=list)  # (segment index, position)
    reason: str = ""
    stop: tuple[int, int] | None = None  # (segment index, position)

    def feed(self, index: int, segment_id: int, data: bytes) -> bool:
        """Check one segment; returns False once the prefix ends in it."""
        self.paths.append(os.path.join(self.wal_dir, segment_name(segment_id)))
        self.sizes.append(len(data))
        decoder = Decoder(data, 0, len(data), self.last_sequence)
        for entry in decoder.collect(encode_offset(segment_id, 0), 0):
            position = entry.offset - encode_offset(segment_id, 0)
            try:
                body = orjson.loads(entry.payload)
                from_entry(entry.type_code, body)
            except (orjson.JSONDecodeError, ValueError) as err:
                return self._end(index, position, f"unreadable record payload ({err})")
            self.records += 1
            if body.get(_BATCH_CONTINUES):
                self.held.append((index, position))
            else:
                self.held.clear()
        self.last_sequence = decoder.last_sequence
        found = decoder.problem
        if found is not None:
            return self._end(index, found.position, f"{found.kind} ({found.detail})")
        return True

    def _end(self, index: int, position: int, reason: str) -> bool:
        self.reason = f"{reason} at {self.paths[index]} byte {position}"
        self.stop = (index, position)
        return False

    def missing(self, index: int, name: str) -> None:
        """The segment after ``index`` is missing: the prefix ends with that segment."""
        self.reason = f"segment {name} is missing"
        self.stop = (index, self.sizes[index])


def _count_records(data: bytes) -> int:
    """Whole, checksum-valid records found anywhere in ``data`` (for the report)."""
    count = 0
    position = find_valid_record(data, 0)
    while position is not None:
        count += 1
        length = HEADER.unpack_from(data, position)[4]
        position = find_valid_record(data, position + HEADER_SIZE + int(length))
    return count


def _scan(wal_dir: str, fileio: FileIO) -> tuple[_Scan, list[int]]:
    ids = segment_ids(fileio, wal_dir)
    scan = _Scan(wal_dir)
    for index, segment_id in enumerate(ids):
        if index and segment_id != ids[index - 1] + 1:
            scan.missing(index - 1, segment_name(ids[index - 1] + 1))
            break
        path = os.path.join(wal_dir, segment_name(segment_id))
        if not scan.feed(index, segment_id, read_whole(fileio, path)):
            break
    return scan, ids


def plan(wal_dir: str, checkpoint_offset: int | None) -> Plan | None:
    """What salvaging ``wal_dir`` would keep and drop; ``None`` when it is consistent.

    Raises ``SalvageRefused`` when the cut would fall before ``checkpoint_offset``.
    """
    fileio = FileIO()
    scan, ids = _scan(wal_dir, fileio)
    if scan.stop is None:
        return None
    index, position = scan.held[0] if scan.held else scan.stop
    kept_records = scan.records - len(scan.held)
    cut_offset = encode_offset(ids[index], position)
    if checkpoint_offset is not None and cut_offset < checkpoint_offset:
        raise SalvageRefused(
            f"the log is inconsistent ({scan.reason}) before the checkpoint's position "
            f"{checkpoint_offset}; salvaging would contradict the checkpoint"
        )
    cut_path = os.path.join(wal_dir, segment_name(ids[index]))
    later = [os.path.join(wal_dir, segment_name(i)) for i in ids[index + 1 :]]
    dropped_bytes = 0
    dropped_records = 0
    for path, start in [(cut_path, position), *((p, 0) for p in later)]:
        data = read_whole(fileio, path)[start:]
        dropped_bytes += len(data)
        dropped_records += _count_records(data)
    return Plan(
        reason=scan.reason,
        cut_path=cut_path,
        cut_position=position,
        cut_size=fileio.path_size(cut_path),
        later=later,
        kept_records=kept_records,
        kept_bytes=sum(fileio.path_size(p) for p in scan.paths[:index]) + position,
        dropped_records=dropped_records,
        dropped_bytes=dropped_bytes,
    )


def _free_name(fileio: FileIO, path: str) -> str:
    candidate = path + SALVAGED_SUFFIX
    number = 0
    while fileio.exists(candidate):
        number += 1
        candidate = f"{path}{SALVAGED_SUFFIX}.{number}"
    return candidate


def apply(plan: Plan, wal_dir: str) -> list[tuple[str, str]]:
    """Move everything after the prefix aside; returns ``(what, saved as)`` pairs.

    Later segments are renamed newest first, then the cut segment's tail is copied and
    cut, so an interrupted salvage leaves a log that a second run finishes.
    """
    fileio = FileIO()
    moved: list[tuple[str, str]] = []
    for path in reversed(plan.later):
        target = _free_name(fileio, path)
        os.rename(path, target)
        moved.append((os.path.basename(path), target))
    fileio.fsync_dir(wal_dir)
    if plan.cut_position < plan.cut_size:
        moved.append(_move_tail(fileio, wal_dir, plan))
    moved.reverse()
    return moved


def _move_tail(fileio: FileIO, wal_dir: str, plan: Plan) -> tuple[str, str]:
    data = read_whole(fileio, plan.cut_path)
    target = _free_name(fileio, plan.cut_path)
    fd = fileio.open(target, CREATE_FLAGS)
    try:
        write_fully(fileio, fd, data[plan.cut_position :])
        fileio.fsync(fd)
    finally:
        fileio.close(fd)
    fd = fileio.open(plan.cut_path, APPEND_FLAGS)
    try:
        fileio.ftruncate(fd, plan.cut_position)
        fileio.fsync(fd)
    finally:
        fileio.close(fd)
    fileio.fsync_dir(wal_dir)
    name = os.path.basename(plan.cut_path)
    return f"{name} bytes {plan.cut_position}..{len(data)}", target
