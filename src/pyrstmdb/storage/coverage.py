"""Do the checkpoint and the log together reach back to the first record ever written?

Compaction writes a checkpoint, then deletes the segments before the one holding
the checkpoint's position; FLUSH_ALL deletes every segment and starts the log
with a ``checkpoint`` record. So a log whose oldest segment is not the first
(``0000000000000001.wal``) is whole only when it starts with that record or a
checkpoint reaches its oldest segment, and the log must reach the checkpoint's
position (a checkpoint beyond the end of the log means its segment is gone).
Anything else means records were lost: opening refuses, and ``rstmdb check``
reports the directory damaged. Pure.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

from pyrstmdb.storage.wal.layout import (
    FIRST_SEGMENT_ID,
    encode_offset,
    offset_segment,
    segment_name,
)


class Gap(NamedTuple):
    """Missing history: what is missing, and the segment file to name."""

    message: str
    segment_id: int


class LogSpan(NamedTuple):
    """What the log holds: its oldest segment file (``None``: none) and its end offset."""

    oldest_segment: int | None
    end: int


def history_gap(
    log: LogSpan, starts_with_reset: Callable[[], bool], checkpoint_offset: int | None
) -> Gap | None:
    """Why the history is incomplete, or ``None`` when nothing is missing.

    ``starts_with_reset()`` tells whether the log's first record is FLUSH_ALL's
    ``checkpoint`` (asked only when the oldest segment is not the first);
    ``checkpoint_offset`` is the position of the newest usable checkpoint, if any.
    """
    if checkpoint_offset is not None and log.end < checkpoint_offset:
        covered = offset_segment(checkpoint_offset)
        return Gap(
            f"the log ends at offset {log.end}, before the checkpoint's position "
            f"{checkpoint_offset}: WAL segment {segment_name(covered)} and the records "
            "after the checkpoint are missing",
            covered,
        )
    oldest = log.oldest_segment
    if oldest is None or oldest <= FIRST_SEGMENT_ID or starts_with_reset():
        return None
    start = encode_offset(oldest, 0)
    if checkpoint_offset is None:
        first = encode_offset(FIRST_SEGMENT_ID, 0)
        return Gap(
            f"checkpoint missing: the log starts at segment {segment_name(oldest)} "
            f"(offset {start}) and no checkpoint-*.ckpt in snapshots/ covers offsets "
            f"{first} to {start}",
            oldest,
        )
    covered = offset_segment(checkpoint_offset)
    if oldest > covered:
        return Gap(
            f"WAL segments {segment_name(covered)} to {segment_name(oldest - 1)} "
            f"between the checkpoint (offset {checkpoint_offset}) and the log are missing",
            oldest,
        )
    return None
