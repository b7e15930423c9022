"""Upkeep of the segment directory: dropping old segments and resetting the log.

``drop_segments_before`` deletes whole segments below an id (never the active one) and
reports the bytes really reclaimed. ``reset`` replaces every segment by a new one holding a
single record, writing and syncing the new segment before deleting the old ones, so a crash
in between leaves either the old log plus that record or the new log alone.

Both hold the round lock (no fsync may meet a closed descriptor) and raise ``WalIoError``
when a file cannot be created, written or deleted; the in-memory segment list always
matches the files that remain.
"""

from __future__ import annotations

import os

from pyrstmdb.errors import WalIoError

from .fileio import CREATE_FLAGS, write_fully
from .layout import encode_offset, segment_name
from .record import encode_record
from .segment import Segment
from .state import LogState, quietly
from .syncing import fsync_directory


def drop_segments_before(state: LogState, segment_id: int) -> tuple[int, int]:
    """Delete segments with a lower id than ``segment_id``; return (count, bytes)."""
    with state.round_lock:
        with state.lock:
            limit = min(segment_id, state.active.segment_id)
            victims = [s for s in state.segments if s.segment_id < limit]
        count = reclaimed = 0
        try:
            for victim in victims:
                reclaimed += _delete_segment(state, victim)
                count += 1
            if count:
                fsync_directory(state)
        except OSError as exc:
            raise WalIoError(f"cannot delete WAL segment: {exc}") from exc
        return count, reclaimed


def _delete_segment(state: LogState, segment: Segment) -> int:
    """Unlink a segment that is not the active one; return its size on disk."""
    try:
        size = state.io.path_size(segment.path)
    except OSError:
        size = segment.size
    # Leave the list first: a reader that planned before this still finds the file or
    # ends its stream early, and one planning after sees history start later.
    with state.lock:
        state.segments.remove(segment)
        fd = state.take_unsynced_fd(segment.segment_id)
    try:
        state.io.unlink(segment.path)
    except OSError:
        with state.lock:
            state.segments.insert(0, segment)
        raise
    if fd is not None:
        state.close_quietly(fd)
    return size


def reset(state: LogState, type_code: int, payload: bytes) -> int:
    """Start over in segment (highest id + 1) with one durable record; delete the rest.

    The caller has made everything written so far durable and holds off appends.
    """
    with state.round_lock:
        fresh, fd = _start_over(state, type_code, payload)
        with state.lock:
            old = state.segments
            old_fds = [state.fd, *(fd for _id, fd in state.unsynced_fds)]
            state.segments = [fresh]
            state.fd = fd
            state.unsynced_fds = []
            state.head = state.active_head()
            state.next_sequence += 1
            state.counters.writes += 1
            state.counters.bytes_written += fresh.size
        for old_fd in old_fds:
            state.close_quietly(old_fd)
        state.durability.advance(state.head, state.next_sequence - 1)
        _remove_old(state, old)
    return encode_offset(fresh.segment_id, 0)


def _start_over(state: LogState, type_code: int, payload: bytes) -> tuple[Segment, int]:
    """Create the next segment holding one record, durable with its directory entry."""
    segment_id = state.active.segment_id + 1
    path = os.path.join(state.directory, segment_name(segment_id))
    record = encode_record(type_code, payload, state.next_sequence)
    try:
        fd = state.io.open(path, CREATE_FLAGS)
    except OSError as exc:
        raise WalIoError(f"cannot create WAL segment {path}: {exc}") from exc
    try:
        write_fully(state.io, fd, record)
        state.io.fdatasync(fd)
        state.counters.fsyncs += 1
        fsync_directory(state)
    except OSError as exc:
        quietly(state.io.close, fd)
        quietly(state.io.unlink, path)
        raise WalIoError(f"cannot write WAL segment {path}: {exc}") from exc
    fresh = Segment(segment_id, path, len(record))
    fresh.note_record(0)
    return fresh, fd


def _remove_old(state: LogState, old: list[Segment]) -> None:
    """Delete the segments replaced by a reset, oldest first; keep any that remain."""
    try:
        for index, segment in enumerate(old):
            try:
                state.io.unlink(segment.path)
            except FileNotFoundError:
                pass
            except OSError:
                with state.lock:
                    state.segments[:0] = old[index:]
                raise
        fsync_directory(state)
    except OSError as exc:
        raise WalIoError(f"cannot delete old WAL segments: {exc}") from exc
