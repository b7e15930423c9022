"""Leaving the failed state: discard everything after the durable end.

After an fsync failed under ``every_write`` nothing past the durable end can be trusted
(the kernel may have dropped the pages it could not write), and none of it was
acknowledged. :func:`recover_after_failure` deletes the segments created after the durable
end, truncates the segment holding it, fsyncs file and directory, rewinds the head and the
next sequence number, and clears the failed state. It holds the round lock throughout and
raises ``WalIoError`` if a file cannot be repaired, leaving the log failed (a later call
retries from where this one stopped).
"""

from __future__ import annotations

from pyrstmdb.errors import WalIoError

from .appender import repair_tail
from .fileio import APPEND_FLAGS
from .layout import offset_position, offset_segment
from .state import LogState
from .syncing import fsync_directory


def recover_after_failure(state: LogState) -> None:
    """Discard everything after the durable end and leave the failed state.

    Without a failed fsync this only retries removing the bytes of a failed write.
    """
    with state.write_lock, state.round_lock:
        try:
            if state.durability.error is None:
                if state.broken_tail:
                    repair_tail(state)
                return
            _discard_after(state, state.durability.end)
            repair_tail(state)
        except OSError as exc:
            raise WalIoError(f"cannot recover the WAL: {exc}") from exc
        state.durability.clear_failure()
        with state.wake:
            state.wake.notify()


def _discard_after(state: LogState, end: int) -> None:
    keep_id = offset_segment(end)
    while state.active.segment_id > keep_id:
        _drop_newest(state)
    size = offset_position(end)
    state.io.ftruncate(state.fd, size)
    state.io.fdatasync(state.fd)
    state.counters.fsyncs += 1
    if state.dir_dirty:
        fsync_directory(state)
    with state.lock:
        state.active.cut(size)
        state.dir_dirty = False
        state.head = state.active_head()
        state.next_sequence = state.durability.sequence + 1
        state.dirty_since = None


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
