"""Discarding the end of the log: leaving the failed state, and truncating at startup.

After an fsync failed under ``every_write`` nothing past the durable end can be trusted
(the kernel may have dropped the pages it could not write), and none of it was
acknowledged. :func:`recover_after_failure` empties the segments created after the durable
end (they stay, so segment ids stay contiguous), truncates the segment holding it, fsyncs
files and directory, rewinds the head and the next sequence number, moves the durable end
to the head (nothing lies between them) and clears the failed state. The next append then
opens a new segment, so the offsets of the discarded records are never handed out again.
A cut never lengthens a file: a segment shorter than its durable end lost durable bytes,
and padding it with zeros would hide that. It holds the round lock throughout and raises
``WalIoError`` if a file cannot be repaired, leaving the log failed (a later call retries
from where this one stopped).

:func:`truncate_to` uses the same steps to cut the log at a chosen record, for a storage
layer that finds an incomplete group of records at the end of the log when it starts.
"""

from __future__ import annotations

from pyrstmdb.errors import WalIoError

from .appender import repair_tail
from .fileio import APPEND_FLAGS, READ_FLAGS, read_exactly
from .layout import HEADER, HEADER_SIZE, MAGIC_BYTES, offset_position, offset_segment
from .segment import Segment
from .state import LogState
from .syncing import fsync_directory


def recover_after_failure(state: LogState) -> None:
    """Discard everything after the durable end and leave the failed state.

    Without a failed fsync this only retries removing the bytes of a failed write.
    """
    with state.write_lock, state.round_lock:
        if state.closed:
            raise WalIoError("the WAL is closed")
        try:
            if state.durability.error is None:
                if state.broken_tail:
                    repair_tail(state)
                return
            with state.lock:
                state.pending = []  # queued after the failed round's snapshot: discarded too
            _discard_failed(state, state.durability.end, state.durability.sequence + 1)
            repair_tail(state)
        except OSError as exc:
            raise WalIoError(f"cannot recover the WAL: {exc}") from exc
        state.fresh_next = True
        # The head may now start an emptied segment after the durable end; nothing lies
        # between them, so they are made equal again (nothing looks unsynced).
        state.durability.settle(state.head)
        state.durability.clear_failure()
        with state.wake:
            state.wake.notify()


def truncate_to(state: LogState, offset: int) -> None:
    """Discard every record at or after ``offset``, which must be a record the log holds.

    Meant for startup (e.g. cutting an incomplete group of records at the end of the log):
    the durable end moves back with the head and waiters for discarded records fail.
    Raises ``ValueError`` for an offset that is not a held record, ``WalIoError`` if the
    files cannot be cut.
    """
    with state.write_lock, state.round_lock:
        if offset == state.head:
            return
        sequence = _sequence_at(state, offset)
        try:
            _discard_after(state, offset, sequence)
        except OSError as exc:
            raise WalIoError(f"cannot truncate the WAL: {exc}") from exc
        state.durability.rewind(offset, sequence - 1)


def _sequence_at(state: LogState, offset: int) -> int:
    """The sequence number of the record starting at ``offset`` (ValueError if none)."""
    segment_id, position = offset_segment(offset), offset_position(offset)
    with state.lock:
        held = {s.segment_id: s for s in state.segments}.get(segment_id)
        if held is None or offset >= state.head or position >= held.size:
            raise ValueError(f"WAL offset {offset} is not a record held by the log")
        path = held.path
    try:
        fd = state.io.open(path, READ_FLAGS)
        try:
            header = read_exactly(state.io, fd, HEADER_SIZE, position)
        finally:
            state.io.close(fd)
    except OSError as exc:
        raise WalIoError(f"cannot read the WAL: {exc}") from exc
    if len(header) < HEADER_SIZE or not header.startswith(MAGIC_BYTES):
        raise ValueError(f"WAL offset {offset} is not the start of a record")
    return int(HEADER.unpack(header)[6])


def _discard_after(state: LogState, end: int, next_sequence: int) -> None:
    """Discard everything from ``end`` on, deleting the segments after the one holding it."""
    keep_id = offset_segment(end)
    while state.active.segment_id > keep_id:
        _drop_newest(state)
    _cut_segment(state, state.active, offset_position(end))
    _rewind(state, next_sequence)


def _discard_failed(state: LogState, end: int, next_sequence: int) -> None:
    """Discard everything from ``end`` on, keeping every segment file that held some of it.

    Later segments are emptied rather than deleted, so the next (fresh) segment gets an id
    above every offset handed out before; segment ids stay contiguous.
    """
    keep_id = offset_segment(end)
    for segment in list(state.segments):
        if segment.segment_id >= keep_id:
            size = offset_position(end) if segment.segment_id == keep_id else 0
            _cut_segment(state, segment, size)
    _rewind(state, next_sequence)


def _cut_segment(state: LogState, segment: Segment, size: int) -> None:
    """Truncate one segment to ``size`` bytes and make that durable.

    Never lengthens a file: one shorter than ``size`` lost durable bytes, and padding it
    with zeros would only hide that (``WalIoError``; the log stays as it is).
    """
    active = segment is state.active
    if active:
        fd = state.fd
    else:
        with state.lock:
            kept = state.take_unsynced_fd(segment.segment_id)
        fd = kept if kept is not None else state.io.open(segment.path, APPEND_FLAGS)
    try:
        held = state.io.file_size(fd)
        if held < size:
            raise WalIoError(
                f"WAL segment {segment.path} holds {held} bytes, fewer than the {size} "
                "its durable records need; it is not extended"
            )
        state.io.ftruncate(fd, size)
        state.io.fdatasync(fd)
        state.counters.fsyncs += 1
    finally:
        if not active:
            state.close_quietly(fd)
    with state.lock:
        segment.cut(size)


def _rewind(state: LogState, next_sequence: int) -> None:
    """After cutting: make the directory durable and move head and sequence back."""
    if state.dir_dirty:
        fsync_directory(state)
    with state.lock:
        state.dir_dirty = False
        state.head = state.active_head()
        state.next_sequence = next_sequence
        state.dirty_since = None
        state.rewinds += 1


def _drop_newest(state: LogState) -> None:
    """Delete the active segment and make the previous one active again."""
    victim, previous = state.segments[-1], state.segments[-2]
    with state.lock:
        kept = state.take_unsynced_fd(previous.segment_id)
    fd = kept if kept is not None else state.io.open(previous.path, APPEND_FLAGS)
    try:
        state.io.unlink(victim.path)
    except FileNotFoundError:
        pass
    except OSError:
        with state.lock:
            state.unsynced_fds.append((previous.segment_id, fd))
        raise
    old_fd = state.fd
    with state.lock:
        state.segments.pop()
        state.fd = fd
        state.dir_dirty = True
        state.head = state.active_head()
    state.close_quietly(old_fd)
