"""The append path: write records to the active segment (rotating as needed) and commit.

Bytes are written first, with one ``write`` per segment touched; only when every write
succeeded are sequence numbers, positions and counters advanced, under the state lock.
After a failure the written bytes are cut away again and ``WalIoError`` is raised; if they
cannot be cut, the log refuses appends until a later attempt succeeds.

Under ``every_write`` no append waits for the disk: the bytes are queued (``state.pending``)
and the next fsync round writes them, in order, right before its ``fdatasync``. Nothing
is acknowledged before that round anyway, the appending thread never blocks in ``write``
(nor behind the journal of a concurrent fsync), and a round carrying N records makes one
``write`` instead of N. A failed write then fails the round like a failed fsync.

After records were discarded (recovery from a failed fsync) the next append starts a new
segment, so an offset once handed out never names a different record later.

When a round failed because the file system had no room, appends are refused at once
(``WalIoError``, no offset handed out, nothing queued) until a probe write of
:data:`SPACE_PROBE_BYTES` to a scratch file succeeds; an append runs that probe at most
every :data:`SPACE_PROBE_INTERVAL` seconds. So a full disk costs one failed round (and one
cut-back), not one per write, and writes resume by themselves once space is freed.

Callers serialise appends; the flusher may run concurrently.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Sequence
from typing import Final

from pyrstmdb.errors import WalIoError

from .fileio import has_room, write_fully
from .layout import (
    HEADER_SIZE,
    MAX_PAYLOAD,
    POSITION_BITS,
    TYPE_CODES,
    encode_offset,
    parse_segment_name,
)
from .record import check_items, encode_header
from .segment import Segment
from .state import LogState, quietly
from .writer import Placement, plan_batch, write_groups

log = logging.getLogger("pyrstmdb.wal")

#: After a round failed for lack of space: the least time between two space probes.
SPACE_PROBE_INTERVAL: Final = 0.2
#: How many bytes a space probe must be able to write before appends resume.
SPACE_PROBE_BYTES: Final = 64 * 1024
#: The probe's scratch file, in the log's directory (not a segment name).
SPACE_PROBE_NAME: Final = ".space-probe"


def append(state: LogState, items: Sequence[tuple[int, bytes]]) -> list[int]:
    """Write records (type code, payload) and return their offsets."""
    if not items:
        return []
    if len(items) != 1 or items[0][0] not in TYPE_CODES or len(items[0][1]) > MAX_PAYLOAD:
        check_items(items)  # the one-record case needs no loop to be checked
    with state.write_lock:
        if (
            state.closed
            or state.broken_tail
            or state.durability.error is not None
            or state.space_probe_at is not None
        ):
            ensure_writable(state)
        active = state.segments[-1]
        if state.fresh_next:
            offsets = _append_batch(state, active, items, fresh=True)
            state.fresh_next = False
            return offsets
        if len(items) == 1:
            type_code, payload = items[0]
            size = HEADER_SIZE + len(payload)
            if active.size == 0 or active.size + size <= state.segment_size:
                return [_append_one(state, active, type_code, payload, size)]
        return _append_batch(state, active, items)


def append_one(state: LogState, type_code: int, payload: bytes) -> int:
    """Write one record and return its offset (the hot path of every single write)."""
    size = HEADER_SIZE + len(payload)
    if type_code not in TYPE_CODES or size > HEADER_SIZE + MAX_PAYLOAD:
        check_items([(type_code, payload)])
    with state.write_lock:
        active = state.segments[-1]
        if (
            state.closed
            or state.broken_tail
            or state.fresh_next
            or state.durability.error is not None
            or state.space_probe_at is not None
            or (active.size != 0 and active.size + size > state.segment_size)
        ):
            return append(state, [(type_code, payload)])[0]
        return _append_one(state, active, type_code, payload, size)


def ensure_writable(state: LogState) -> None:
    """Raise ``WalIoError`` unless the log can take appends (retrying a pending repair)."""
    if state.closed:
        raise WalIoError("the WAL is closed")
    error = state.durability.error
    if error is not None:
        raise WalIoError(
            f"the WAL is in a failed state ({error.message}); it must be recovered first"
        )
    if state.broken_tail:
        try:
            repair_tail(state)
        except OSError as exc:
            raise WalIoError(f"the WAL cannot remove a failed write: {exc}") from exc
    if state.space_probe_at is not None:
        _ensure_room(state)


def _ensure_room(state: LogState) -> None:
    """After a round failed for lack of space: refuse unless a probe write succeeds."""
    now = time.monotonic()
    probe_at = state.space_probe_at
    if probe_at is not None and now >= probe_at:
        path = os.path.join(state.directory, SPACE_PROBE_NAME)
        try:
            room = has_room(state.io, path, SPACE_PROBE_BYTES)
        except OSError as exc:
            log.warning("WAL: the space probe failed: %s", exc)
            room = False
        if room:
            state.space_probe_at = None
            log.info("WAL: space is available again; writes resume")
            return
        state.space_probe_at = now + SPACE_PROBE_INTERVAL
    raise WalIoError(
        f"no space left on the device holding the WAL ({state.directory}); "
        "writes resume once space is freed"
    )


def _append_one(state: LogState, active: Segment, type_code: int, payload: bytes, size: int) -> int:
    """One record that fits in the active segment (write lock held)."""
    position = active.size
    record = encode_header(type_code, payload, state.next_sequence) + payload
    deferred = state.defer_writes
    if not deferred:
        try:
            write_fully(state.io, state.fd, record)
        except OSError as exc:
            _undo(state, Placement())
            raise WalIoError(f"WAL write failed: {exc}") from exc
    offset = (active.segment_id << POSITION_BITS) | position
    with state.lock:
        if deferred:
            state.queue(state.fd, record)
        active.note_record(position)
        active.size = position + size
        state.head = offset + size
        state.next_sequence += 1
        counters = state.counters
        counters.writes += 1
        counters.bytes_written += size
        _after_write(state, rotated=False)
    return offset


def _append_batch(
    state: LogState, active: Segment, items: Sequence[tuple[int, bytes]], *, fresh: bool = False
) -> list[int]:
    batch = plan_batch(items, state.next_sequence, active.size, state.segment_size, fresh=fresh)
    placement = Placement(deferred=[] if state.defer_writes else None)
    try:
        head = (active.segment_id, state.fd, active.size)
        write_groups(state.io, state.directory, head, items, batch, placement)
    except OSError as exc:
        _undo(state, placement)
        raise WalIoError(f"WAL write failed: {exc}") from exc
    with state.lock:
        for fd, data in placement.deferred or ():
            state.queue(fd, data)
        for segment_id, path, fd in placement.new_segments:
            state.unsynced_fds.append((state.segments[-1].segment_id, state.fd))
            state.segments.append(Segment(segment_id, path))
            state.fd = fd
            state.dir_dirty = True
        _place(state, placement)
        state.head = state.active_head()
        state.next_sequence += len(items)
        state.counters.writes += len(items)
        state.counters.bytes_written += batch.total
        _after_write(state, rotated=bool(placement.new_segments))
    if placement.new_segments and state.policy.kind == "never":
        _close_spare_descriptors(state)
    return [encode_offset(segment_id, pos) for segment_id, pos in placement.positions]


#: Under ``never`` nothing syncs finished segments; keep at most this many of their
#: descriptors open (closing one leaves its write-back to the kernel).
NEVER_KEEPS_OPEN = 8


def _close_spare_descriptors(state: LogState) -> None:
    """Close the oldest finished segments' descriptors beyond the limit.

    The round lock keeps any fsync round from holding a plan that still lists them.
    """
    with state.round_lock:
        with state.lock:
            extra = max(0, len(state.unsynced_fds) - NEVER_KEEPS_OPEN)
            spare = [fd for _id, fd in state.unsynced_fds[:extra]]
            del state.unsynced_fds[:extra]
        for fd in spare:
            state.close_quietly(fd)


def _place(state: LogState, placement: Placement) -> None:
    touched = state.segments[-1 - len(placement.new_segments) :]
    by_id = {segment.segment_id: segment for segment in touched}
    for segment_id, position in placement.positions:
        by_id[segment_id].note_record(position)
    for segment_id, end in placement.ends.items():
        by_id[segment_id].size = end


def _after_write(state: LogState, *, rotated: bool) -> None:
    """Note unsynced data and wake the flusher when the policy wants it (lock held)."""
    was_clean = state.dirty_since is None
    if was_clean:
        state.dirty_since = time.monotonic()
    kick = state.kick
    if kick is not None:  # an event loop runs the rounds (``offload``)
        if state.kick_armed:
            state.kick_armed = False
            if not kick():
                state.kick = None  # its loop is gone: the flusher takes over
                rotated = True
        if not rotated:
            return
    wake_at = state.flusher_wake_at
    if wake_at is None:  # no flusher, or it is awake: a running round re-checks anyway
        return
    kind = state.policy.kind
    if not (rotated or (kind == "every_ms" and was_clean)):
        if kind != "every_write" and kind != "every_n":
            return
        unsynced = state.next_sequence - 1 - state.durability.sequence
        if unsynced < (wake_at if kind == "every_write" else max(wake_at, state.policy.amount)):
            return
    state.flusher_wake_at = None  # one notification per sleep is enough
    state.wake.notify()


def _undo(state: LogState, placement: Placement) -> None:
    """Remove what a failed append wrote; on failure, leave the tail marked broken."""
    for _segment_id, path, fd in placement.new_segments:
        quietly(state.io.close, fd)
        quietly(state.io.unlink, path)
    if placement.deferred is not None:
        return  # nothing was written to the active segment (its queued bytes stay queued)
    try:
        repair_tail(state)
    except OSError as exc:
        state.broken_tail = True
        log.error("WAL: cannot remove the bytes of a failed write: %s", exc)


def repair_tail(state: LogState) -> None:
    """Cut the active segment to its committed size and delete segment files beyond it."""
    active = state.segments[-1]
    state.io.ftruncate(state.fd, active.size)
    for name in state.io.listdir(state.directory):
        segment_id = parse_segment_name(name)
        if segment_id is not None and segment_id > active.segment_id:
            state.io.unlink(os.path.join(state.directory, name))
    state.broken_tail = False
