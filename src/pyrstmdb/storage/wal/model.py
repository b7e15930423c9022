"""The values the WAL hands out: entries, statistics, segment listings and reports.

Plain immutable data; no I/O, raises nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple


class WalEntry(NamedTuple):
    """One record read back from the log; the payload is opaque bytes."""

    sequence: int
    offset: int
    type_code: int
    payload: bytes


@dataclass(frozen=True)
class WalStats:
    """The WAL_STATS figures (STORAGE §7); sizes are the real current file sizes."""

    entry_count: int
    segment_count: int
    total_size_bytes: int
    latest_offset: int
    writes: int
    bytes_written: int
    fsyncs: int
    reads: int
    bytes_read: int


@dataclass(frozen=True)
class RecoveryReport:
    """What opening (or repairing) a WAL directory found and did.

    ``torn_segment`` is the path of the segment whose torn tail was cut, ``torn_bytes``
    how many bytes were cut and ``broken_copy`` where those bytes were saved.
    """

    segments: int
    records: int
    last_sequence: int
    torn_bytes: int
    torn_segment: str | None
    broken_copy: str | None


@dataclass(frozen=True)
class SegmentInfo:
    """One segment file held by the log."""

    segment_id: int
    path: str
    size: int


@dataclass(frozen=True)
class VerifyReport:
    """The result of a read-only check of a WAL directory.

    ``problem`` describes the first real corruption (with ``problem_path`` and
    ``problem_position``); a torn tail is reported separately because opening the log
    cuts it without losing an acknowledged write.
    """

    segments: int
    records: int
    last_sequence: int
    total_bytes: int
    torn_segment: str | None
    torn_position: int | None
    torn_bytes: int
    problem: str | None
    problem_path: str | None
    problem_position: int | None

    @property
    def ok(self) -> bool:
        """True when the directory opens without refusing (a torn tail is allowed)."""
        return self.problem is None

    @property
    def clean(self) -> bool:
        """True when there is neither corruption nor a torn tail."""
        return self.problem is None and self.torn_segment is None
