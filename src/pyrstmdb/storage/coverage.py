"""Do the checkpoint and the log together reach back to the first record ever written?

Compaction writes a checkpoint, then deletes the segments before the one holding
the checkpoint's position; FLUSH_ALL deletes every segment and starts the log
with a ``checkpoint`` record. So a log whose oldest segment is not the first
(``0000000000000001.wal``) is whole only when it starts with that record or a
checkpoint reaches its oldest segment. Anything else means records were lost:
opening refuses, and ``rstmdb check`` reports the directory damaged. Pure.
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
    """Missing history: what is missing, and the segment where the log starts."""

    message: str
    segment_id: int


def history_gap(
    oldest_segment: int | None,
    starts_with_reset: Callable[[], bool],
    checkpoint_offset: int | None,
) -> Gap | None:
    """Why the history is incomplete, or ``None`` when nothing is missing.

    ``oldest_segment`` is the id of the oldest segment file (``None``: no segment),
    ``starts_with_reset()`` whether its first record is FLUSH_ALL's ``checkpoint`` (only
    asked when the oldest segment is not the first),
    ``checkpoint_offset`` the position of the newest usable checkpoint, if any.
    """
    if oldest_segment is None or oldest_segment <= FIRST_SEGMENT_ID or starts_with_reset():
        return None
    start = encode_offset(oldest_segment, 0)
    if checkpoint_offset is None:
        first = encode_offset(FIRST_SEGMENT_ID, 0)
        return Gap(
            f"checkpoint missing: the log starts at segment {segment_name(oldest_segment)} "
            f"(offset {start}) and no checkpoint-*.ckpt in snapshots/ covers offsets "
            f"{first} to {start}",
            oldest_segment,
        )
    covered = offset_segment(checkpoint_offset)
    if oldest_segment > covered:
        return Gap(
            f"WAL segments {segment_name(covered)} to {segment_name(oldest_segment - 1)} "
            f"between the checkpoint (offset {checkpoint_offset}) and the log are missing",
            oldest_segment,
        )
    return None
