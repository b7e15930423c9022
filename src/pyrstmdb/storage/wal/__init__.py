"""The write-ahead log: segment files of framed records, fsync policies, recovery.

``Wal.open(directory)`` recovers the directory (a torn tail is cut, real corruption is
refused with ``CorruptionError``) and returns a log that appends opaque payloads, makes
them durable by policy (``every_write`` shares fsyncs between concurrent writers), reads
ranges back and reports statistics. ``verify`` and ``repair_torn_tail`` work offline.
"""

from __future__ import annotations

from .fileio import FileIO
from .layout import (
    DEFAULT_SEGMENT_SIZE,
    HEADER_SIZE,
    MAX_PAYLOAD,
    TYPE_CODES,
    TYPE_NAMES,
    encode_offset,
    offset_position,
    offset_segment,
    parse_segment_name,
    segment_name,
)
from .log import Wal
from .model import RecoveryReport, SegmentInfo, VerifyReport, WalEntry, WalStats
from .recovery import repair_torn_tail, verify

__all__ = [
    "DEFAULT_SEGMENT_SIZE",
    "HEADER_SIZE",
    "MAX_PAYLOAD",
    "TYPE_CODES",
    "TYPE_NAMES",
    "FileIO",
    "RecoveryReport",
    "SegmentInfo",
    "VerifyReport",
    "Wal",
    "WalEntry",
    "WalStats",
    "encode_offset",
    "offset_position",
    "offset_segment",
    "parse_segment_name",
    "repair_torn_tail",
    "segment_name",
    "verify",
]
