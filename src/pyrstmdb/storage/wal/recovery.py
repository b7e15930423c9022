"""Recovery of a WAL directory: cut a torn tail, refuse real corruption (STORAGE §6.2).

:func:`recover` runs inside ``Wal.open``; :func:`repair_torn_tail` does the same offline and
:func:`verify` only reports. Every segment is read whole and decoded in id order.

* A torn tail is damage in the last segment holding data (later segments, if any, are
  empty) with no valid record after it. It is copied to ``<segment>.broken`` (a numeric
  suffix is added when that exists), the segment is truncated after its last valid record,
  and file and directory are fsynced. A warning goes to the ``pyrstmdb.wal`` logger.
* Anything else raises ``CorruptionError`` naming the file and byte: damage followed by a
  valid record, damage in an earlier segment, a sequence number not above its predecessor,
  or a missing segment between two present ones.

I/O failures surface as ``OSError`` from :func:`recover` (``Wal.open`` translates them)
and as ``WalIoError`` from the offline functions.
"""

from __future__ import annotations

import itertools
import logging
import os
from dataclasses import dataclass

from pyrstmdb.errors import CorruptionError, WalIoError

from .fileio import APPEND_FLAGS, CREATE_FLAGS, FileIO, write_fully
from .layout import BROKEN_SUFFIX, parse_segment_name, segment_name
from .model import RecoveryReport, VerifyReport
from .segment import Analysis, Segment, analyze, read_whole

log = logging.getLogger("pyrstmdb.wal")


@dataclass(frozen=True, slots=True)
class Recovered:
    """The outcome of :func:`recover`: the report and the segments found, in id order."""

    report: RecoveryReport
    segments: list[Segment]


@dataclass(frozen=True, slots=True)
class _Cut:
    path: str
    position: int
    size: int
    copy: str


def segment_ids(fileio: FileIO, directory: str) -> list[int]:
    """The ids of the segment files in ``directory``, ascending; other files are ignored."""
    ids = (parse_segment_name(name) for name in fileio.listdir(directory))
    return sorted(segment_id for segment_id in ids if segment_id is not None)


def recover(directory: str, fileio: FileIO) -> Recovered:
    """Check every segment, cut a torn tail, and return what the log holds."""
    ids = segment_ids(fileio, directory)
    _check_contiguous(directory, ids)
    paths = [os.path.join(directory, segment_name(i)) for i in ids]
    tail = _tail_index(fileio, paths)
    segments: list[Segment] = []
    last_sequence = 0
    records = 0
    cut: _Cut | None = None
    for index, (segment_id, path) in enumerate(zip(ids, paths, strict=True)):
        data = read_whole(fileio, path)
        found = analyze(data, last_sequence, tail=index == tail)
        if found.problem is not None:
            if not found.torn:
                raise CorruptionError(found.reason, path, found.problem.position)
            cut = _cut_tail(fileio, directory, path, data, found)
        segments.append(Segment(segment_id, path, found.valid_end, found.marks))
        last_sequence = found.last_sequence
        records += found.records
    report = RecoveryReport(
        segments=len(ids),
        records=records,
        last_sequence=last_sequence,
        torn_bytes=cut.size if cut else 0,
        torn_segment=cut.path if cut else None,
        broken_copy=cut.copy if cut else None,
    )
    return Recovered(report, segments)


def repair_torn_tail(directory: str | os.PathLike[str]) -> RecoveryReport:
    """Offline repair: cut a torn tail exactly as opening the log would.

    Raises ``CorruptionError`` on real corruption and ``WalIoError`` on I/O failure.
    """
    try:
        return recover(os.fspath(directory), FileIO()).report
    except OSError as exc:
        raise WalIoError(f"cannot repair WAL directory {os.fspath(directory)}: {exc}") from exc


def verify(directory: str | os.PathLike[str]) -> VerifyReport:
    """Read-only check of every segment: records counted, first problem located.

    A torn tail is reported (segment, position, bytes) but not cut. Raises ``WalIoError``
    when the directory or a segment cannot be read.
    """
    path = os.fspath(directory)
    try:
        return _verify(path, FileIO())
    except OSError as exc:
        raise WalIoError(f"cannot verify WAL directory {path}: {exc}") from exc


class _Findings:
    """Accumulates what :func:`verify` sees, keeping the first problem only."""

    def __init__(self) -> None:
        self.records = 0
        self.last_sequence = 0
        self.total_bytes = 0
        self.torn: tuple[str, int, int] | None = None
        self.problem: tuple[str, str, int] | None = None

    def corrupt(self, message: str, path: str, position: int) -> None:
        if self.problem is None:
            self.problem = (message, path, position)

    def add(self, path: str, size: int, found: Analysis) -> None:
        self.records += found.records
        self.total_bytes += size
        self.last_sequence = max(self.last_sequence, found.last_sequence)
        if found.problem is None:
            return
        if found.torn:
            self.torn = (path, found.valid_end, size - found.valid_end)
        else:
            self.corrupt(found.reason, path, found.problem.position)


def _verify(directory: str, fileio: FileIO) -> VerifyReport:
    ids = segment_ids(fileio, directory)
    paths = [os.path.join(directory, segment_name(i)) for i in ids]
    findings = _Findings()
    for previous, current, path in zip(ids, ids[1:], paths[1:], strict=False):
        if current != previous + 1:
            findings.corrupt(f"segment {segment_name(previous + 1)} is missing", path, 0)
    tail = _tail_index(fileio, paths)
    for index, path in enumerate(paths):
        data = read_whole(fileio, path)
        findings.add(path, len(data), analyze(data, findings.last_sequence, tail=index == tail))
    torn = findings.torn
    problem = findings.problem
    return VerifyReport(
        segments=len(ids),
        records=findings.records,
        last_sequence=findings.last_sequence,
        total_bytes=findings.total_bytes,
        torn_segment=torn[0] if torn else None,
        torn_position=torn[1] if torn else None,
        torn_bytes=torn[2] if torn else 0,
        problem=problem[0] if problem else None,
        problem_path=problem[1] if problem else None,
        problem_position=problem[2] if problem else None,
    )


def _check_contiguous(directory: str, ids: list[int]) -> None:
    for previous, current in itertools.pairwise(ids):
        if current != previous + 1:
            missing = segment_name(previous + 1)
            path = os.path.join(directory, segment_name(current))
            raise CorruptionError(f"segment {missing} is missing before this one", path, 0)


def _tail_index(fileio: FileIO, paths: list[str]) -> int:
    """The index of the last segment holding any bytes (the only one that may be torn)."""
    for index in range(len(paths) - 1, -1, -1):
        if fileio.path_size(paths[index]) > 0:
            return index
    return len(paths) - 1


def _cut_tail(fileio: FileIO, directory: str, path: str, data: bytes, found: Analysis) -> _Cut:
    """Save the torn bytes beside the segment, truncate it, and make both durable."""
    position = found.valid_end
    copy = _free_copy_path(fileio, path)
    fd = fileio.open(copy, CREATE_FLAGS)
    try:
        write_fully(fileio, fd, data[position:])
        fileio.fsync(fd)
    finally:
        fileio.close(fd)
    fd = fileio.open(path, APPEND_FLAGS)
    try:
        fileio.ftruncate(fd, position)
        fileio.fsync(fd)
    finally:
        fileio.close(fd)
    fileio.fsync_dir(directory)
    size = len(data) - position
    problem = found.problem
    log.warning(
        "WAL segment %s: cut a torn tail of %d bytes at byte %d (%s); saved as %s",
        path,
        size,
        position,
        problem.kind if problem else "damage",
        copy,
    )
    return _Cut(path, position, size, copy)


def _free_copy_path(fileio: FileIO, path: str) -> str:
    candidate = path + BROKEN_SUFFIX
    number = 0
    while fileio.exists(candidate):
        number += 1
        candidate = f"{path}{BROKEN_SUFFIX}.{number}"
    return candidate
