"""The write-ahead log: a directory of segments, appends, fsync policy, reads and upkeep.

:class:`Wal` owns the segment files of one directory: the active segment's descriptor,
rotation, the fsync policy and its flusher thread (group commit), the durable end and its
waiters, reads of record ranges, statistics, dropping old segments and resetting the log.
It never interprets payloads.

Locks: ``_lock`` guards the in-memory state and is held only briefly (never across a
system call that can block on the disk); ``_round_lock`` serialises fsync rounds and every
operation that closes descriptors or deletes files, so an fsync never meets a closed or
reused descriptor. Order: ``_round_lock`` before ``_lock``. ``append`` takes only
``_lock``; its callers serialise their calls to ``append``, ``reset`` and
``recover_after_failure``.

Raises ``WalIoError`` on I/O failure, ``BadRequest`` for records that may not be written
and ``CorruptionError`` (from ``open`` and reads) for damaged data.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import NoReturn

from pyrstmdb.errors import WalIoError
from pyrstmdb.storage.policy import FsyncPolicy

from .durability import Durability
from .fileio import APPEND_FLAGS, CREATE_FLAGS, FileIO, write_fully
from .flusher import Backlog, Flusher
from .layout import (
    DEFAULT_SEGMENT_SIZE,
    FIRST_SEGMENT_ID,
    HEADER_SIZE,
    POSITION_BITS,
    encode_offset,
    offset_position,
    offset_segment,
    parse_segment_name,
    segment_name,
)
from .model import RecoveryReport, SegmentInfo, WalEntry, WalStats
from .reading import plan_spans, stream_spans
from .record import check_items, encode_header, encode_record
from .recovery import recover
from .segment import Segment
from .writer import Placement, plan_batch, write_groups

log = logging.getLogger("pyrstmdb.wal")

#: Wait before retrying a failed background fsync under the lax policies.
RETRY_DELAY = 0.5


@dataclass(slots=True)
class _Round:
    """One fsync round's snapshot: what to sync and what it will make durable."""

    target: int
    sequence: int
    active_fd: int | None
    finished: list[tuple[int, int]]
    directory: bool
    dirty_since: float | None


@dataclass(slots=True)
class _Counters:
    writes: int = 0
    bytes_written: int = 0
    fsyncs: int = 0
    reads: int = 0
    bytes_read: int = 0


class Wal:
    """A write-ahead log in one directory. Create it with :meth:`Wal.open`."""

    recovery: RecoveryReport

    def __init__(
        self,
        directory: str,
        fileio: FileIO,
        segment_size: int,
        policy: FsyncPolicy,
        segments: list[Segment],
        last_sequence: int,
    ) -> None:
        self._dir = directory
        self._io = fileio
        self._limit = segment_size
        self._policy = policy
        self._lock = threading.Lock()
        self._wake = threading.Condition(self._lock)
        self._round_lock = threading.Lock()
        self._segments = segments
        self._fd = fileio.open(segments[-1].path, APPEND_FLAGS)
        self._unsynced_fds: list[tuple[int, int]] = []  # finished segments: (id, fd)
        self._dir_dirty = False
        self._head = self._active_head()
        self._next_sequence = last_sequence + 1
        self._dirty_since: float | None = None
        self._retry_at: float | None = None
        self._broken_tail = False
        self._closed = False
        self._counters = _Counters()
        self._durability = Durability(self._head, last_sequence, policy.waits_for_disk)
        self._failure_handler: Callable[[WalIoError], None] | None = None
        self._flusher: Flusher | None = None

    # ------------------------------------------------------------------ opening

    @classmethod
    def open(
        cls,
        directory: str | os.PathLike[str],
        *,
        segment_size: int = DEFAULT_SEGMENT_SIZE,
        policy: FsyncPolicy | None = None,
        fileio: FileIO | None = None,
    ) -> Wal:
        """Open (creating if needed) the log in ``directory``, recovering it first.

        Raises ``CorruptionError`` naming file and byte on real corruption, ``WalIoError``
        when the directory cannot be read or written.
        """
        if segment_size <= 0:
            raise ValueError(f"segment_size must be positive, got {segment_size}")
        policy = policy or FsyncPolicy()
        io = fileio or FileIO()
        path = os.fspath(directory)
        try:
            io.makedirs(path)
            recovered = recover(path, io)
            segments = recovered.segments or [_create_first_segment(io, path)]
            wal = cls(path, io, segment_size, policy, segments, recovered.report.last_sequence)
        except OSError as exc:
            raise WalIoError(f"cannot open WAL in {path}: {exc}") from exc
        wal.recovery = recovered.report
        wal._settle()
        return wal

    def _settle(self) -> None:
        """Make what recovery found durable, then start the flusher if the policy needs it."""
        try:
            self._io.fdatasync(self._fd)
            self._io.fsync_dir(self._dir)
        except OSError as exc:
            self._io.close(self._fd)
            raise WalIoError(f"cannot sync WAL in {self._dir}: {exc}") from exc
        if self._policy.kind != "never":
            self._flusher = Flusher(self._policy, self._wake, self._backlog, self._flush)
            self._flusher.start()

    # ------------------------------------------------------------------ positions

    @property
    def head(self) -> int:
        """The offset where the next record goes."""
        return self._head

    @property
    def durable_end(self) -> int:
        """Every record at an offset below this is on disk."""
        return self._durability.end

    @property
    def next_sequence(self) -> int:
        return self._next_sequence

    @property
    def first_offset(self) -> int:
        """The offset of the oldest record held (the head when there is none)."""
        with self._lock:
            for segment in self._segments:
                if segment.size > 0:
                    return encode_offset(segment.segment_id, 0)
            return self._head

    def _active_head(self) -> int:
        active = self._segments[-1]
        return encode_offset(active.segment_id, active.size)

    # ------------------------------------------------------------------ appending

    def append(self, items: Sequence[tuple[int, bytes]]) -> list[int]:
        """Write records (type code, payload); return their offsets.

        One ``write`` per segment touched. On failure the written bytes are removed, no
        sequence number is consumed and ``WalIoError`` is raised. The records are durable
        once :meth:`wait_durable` returns for them (or at once under the lax policies).
        """
        if not items:
            return []
        check_items(items)
        if self._closed or self._broken_tail or self._durability.error is not None:
            self._ensure_writable()
        active = self._segments[-1]
        if len(items) == 1:
            type_code, payload = items[0]
            size = HEADER_SIZE + len(payload)
            if active.size == 0 or active.size + size <= self._limit:
                return [self._append_one(active, type_code, payload, size)]
        batch = plan_batch(items, self._next_sequence, active.size, self._limit)
        placement = Placement()
        try:
            head = (active.segment_id, self._fd, active.size)
            write_groups(self._io, self._dir, head, items, batch, placement)
        except OSError as exc:
            self._undo(placement)
            raise WalIoError(f"WAL write failed: {exc}") from exc
        self._commit(placement, len(items), batch.total)
        return [encode_offset(segment_id, pos) for segment_id, pos in placement.positions]

    def _append_one(self, active: Segment, type_code: int, payload: bytes, size: int) -> int:
        """The common case: one record that fits in the active segment."""
        position = active.size
        record = encode_header(type_code, payload, self._next_sequence) + payload
        try:
            write_fully(self._io, self._fd, record)
        except OSError as exc:
            self._undo(Placement())
            raise WalIoError(f"WAL write failed: {exc}") from exc
        with self._lock:
            active.note_record(position)
            active.size = position + size
            self._head = offset = (active.segment_id << POSITION_BITS) | position
            self._head += size
            self._next_sequence += 1
            counters = self._counters
            counters.writes += 1
            counters.bytes_written += size
            if self._dirty_since is None:
                self._dirty_since = time.monotonic()
            if self._flusher is not None and self._wake_needed(False):
                self._wake.notify()
        return offset

    def _ensure_writable(self) -> None:
        if self._closed:
            raise WalIoError("the WAL is closed")
        if self._durability.error is not None:
            raise WalIoError(
                f"the WAL is in a failed state ({self._durability.error.message}); "
                "it must be recovered first"
            )
        if self._broken_tail:
            try:
                self._repair_tail()
            except OSError as exc:
                raise WalIoError(f"the WAL cannot remove a failed write: {exc}") from exc

    def _undo(self, placement: Placement) -> None:
        """Remove what a failed append wrote; on failure, leave the tail marked broken."""
        for _segment_id, path, fd in placement.new_segments:
            _quietly(self._io.close, fd)
            _quietly(self._io.unlink, path)
        try:
            self._repair_tail()
        except OSError as exc:
            self._broken_tail = True
            log.error("WAL: cannot remove the bytes of a failed write: %s", exc)

    def _repair_tail(self) -> None:
        """Cut the active segment to its committed size and delete files beyond it."""
        active = self._segments[-1]
        self._io.ftruncate(self._fd, active.size)
        for name in self._io.listdir(self._dir):
            segment_id = parse_segment_name(name)
            if segment_id is not None and segment_id > active.segment_id:
                self._io.unlink(os.path.join(self._dir, name))
        self._broken_tail = False

    def _commit(self, placement: Placement, count: int, size: int) -> None:
        with self._lock:
            for segment_id, path, fd in placement.new_segments:
                self._unsynced_fds.append((self._segments[-1].segment_id, self._fd))
                self._segments.append(Segment(segment_id, path))
                self._fd = fd
                self._dir_dirty = True
            self._place(placement)
            self._head = self._active_head()
            self._next_sequence += count
            self._counters.writes += count
            self._counters.bytes_written += size
            was_clean = self._dirty_since is None
            if was_clean:
                self._dirty_since = time.monotonic()
            if self._flusher is not None and self._wake_needed(bool(placement.new_segments)):
                self._wake.notify()

    def _place(self, placement: Placement) -> None:
        touched = self._segments[-1 - len(placement.new_segments) :]
        by_id = {segment.segment_id: segment for segment in touched}
        for segment_id, position in placement.positions:
            by_id[segment_id].note_record(position)
        for segment_id, end in placement.ends.items():
            by_id[segment_id].size = end

    def _wake_needed(self, rotated: bool) -> bool:
        kind = self._policy.kind
        if rotated or kind in ("every_write", "every_ms"):
            return True
        unsynced = self._next_sequence - 1 - self._durability.sequence
        return unsynced >= max(1, self._policy.amount)

    # ------------------------------------------------------------------ durability

    def wait_durable(self, offset: int, timeout: float | None = None) -> None:
        """Block until the record at ``offset`` is durable (at once unless every_write).

        Raises ``WalIoError`` if the fsync that should have covered it failed, or on timeout.
        """
        self._durability.wait(offset, timeout)

    def when_durable(self, offset: int, callback: Callable[[WalIoError | None], None]) -> None:
        """Call ``callback(None)`` when ``offset`` is durable or ``callback(error)`` on failure.

        Runs in the flusher thread, or at once in this thread when already decided.
        """
        self._durability.when(offset, callback)

    def add_durable_listener(self, fn: Callable[[int], None]) -> None:
        """Call ``fn(new_durable_end)`` after every advance of the durable end."""
        self._durability.add_listener(fn)

    def set_failure_handler(self, fn: Callable[[WalIoError], None]) -> None:
        """Call ``fn(error)`` from the flusher when a background fsync under every_write fails."""
        self._failure_handler = fn

    def sync(self) -> None:
        """Fsync everything written so far, in this thread."""
        if self._closed:
            raise WalIoError("the WAL is closed")
        if self._durability.error is not None:
            raise WalIoError("the WAL is in a failed state; it must be recovered first")
        self._sync_round(background=False, force=True)

    def _flush(self) -> None:
        self._sync_round(background=True, force=False)

    def _backlog(self) -> Backlog:
        """What awaits an fsync; called by the flusher with ``_lock`` held."""
        durability = self._durability
        return Backlog(
            unsynced_records=self._next_sequence - 1 - durability.sequence,
            unsynced=self._head > durability.end,
            chores=bool(self._unsynced_fds) or self._dir_dirty,
            dirty_since=self._dirty_since,
            failed=durability.error is not None or self._closed,
            retry_at=self._retry_at,
        )

    def _sync_round(self, *, background: bool, force: bool) -> None:
        with self._round_lock:
            plan = self._plan_round(force)
            if plan is None:
                return
            try:
                self._run_round(plan)
            except OSError as exc:
                self._round_failed(plan, exc, background)
            self._finish_round(plan)

    def _plan_round(self, force: bool) -> _Round | None:
        with self._lock:
            if self._closed:
                return None
            target = self._head
            unsynced = target > self._durability.end
            plan = _Round(
                target=target,
                sequence=self._next_sequence - 1,
                active_fd=self._fd if unsynced or force else None,
                finished=list(self._unsynced_fds),
                directory=self._dir_dirty,
                dirty_since=self._dirty_since,
            )
            if plan.active_fd is None and not plan.finished and not plan.directory:
                return None
            self._dir_dirty = False
            self._dirty_since = None
            return plan

    def _run_round(self, plan: _Round) -> None:
        for _segment_id, fd in plan.finished:
            self._io.fdatasync(fd)
            self._counters.fsyncs += 1
        if plan.directory:
            self._io.fsync_dir(self._dir)
            self._counters.fsyncs += 1
        if plan.active_fd is not None:
            self._io.fdatasync(plan.active_fd)
            self._counters.fsyncs += 1

    def _finish_round(self, plan: _Round) -> None:
        with self._lock:
            for item in plan.finished:
                self._unsynced_fds.remove(item)
            self._retry_at = None
        for _segment_id, fd in plan.finished:
            _quietly(self._io.close, fd)
        self._durability.advance(plan.target, plan.sequence)

    def _round_failed(self, plan: _Round, exc: OSError, background: bool) -> NoReturn:
        error = WalIoError(f"WAL fsync failed: {exc}")
        with self._lock:
            self._dir_dirty = self._dir_dirty or plan.directory
            if self._dirty_since is None:
                self._dirty_since = plan.dirty_since
        if self._policy.waits_for_disk:
            self._durability.fail(error, enter_failed_state=True)
            handler = self._failure_handler
            if background and handler is not None:
                try:
                    handler(error)
                except Exception:
                    log.exception("WAL failure handler failed")
        else:
            log.warning("WAL background fsync failed, will retry: %s", exc)
            self._retry_at = time.monotonic() + RETRY_DELAY
        raise error from exc

    # ------------------------------------------------------------------ reading

    def entries(self, from_offset: int = 0, end: int | None = None) -> Iterator[WalEntry]:
        """Records with ``from_offset <= offset < end`` (``end`` defaults to the head)."""
        with self._lock:
            stop = self._head if end is None else end
            spans = plan_spans(self._segments, from_offset, stop)
            self._counters.reads += 1
        return stream_spans(self._io, spans, self._count_read_bytes)

    def read(
        self, from_offset: int, limit: int | None, max_bytes: int
    ) -> tuple[list[WalEntry], int | None]:
        """Up to ``limit`` visible records from ``from_offset``, within ``max_bytes`` of payload.

        Visible means durable under every_write and written otherwise. At least one record
        is returned when any exists. The second value is where to continue, or ``None``.
        """
        with self._lock:
            visible = self._durability.end if self._policy.waits_for_disk else self._head
            spans = plan_spans(self._segments, from_offset, visible) if limit != 0 else []
            self._counters.reads += 1
        found: list[WalEntry] = []
        stream = stream_spans(self._io, spans, self._count_read_bytes)
        try:
            _collect(stream, found, limit, max_bytes)
        finally:
            stream.close()
        return found, (found[-1].offset + 1 if found else None)

    def _count_read_bytes(self, size: int) -> None:
        with self._lock:
            self._counters.bytes_read += size

    # ------------------------------------------------------------------ inspection

    def stats(self) -> WalStats:
        with self._lock:
            counters = self._counters
            return WalStats(
                entry_count=self._next_sequence - 1,
                segment_count=len(self._segments),
                total_size_bytes=sum(segment.size for segment in self._segments),
                latest_offset=self._head,
                writes=counters.writes,
                bytes_written=counters.bytes_written,
                fsyncs=counters.fsyncs,
                reads=counters.reads,
                bytes_read=counters.bytes_read,
            )

    def segments(self) -> list[SegmentInfo]:
        with self._lock:
            return [SegmentInfo(s.segment_id, s.path, s.size) for s in self._segments]

    # ------------------------------------------------------------------ upkeep

    def drop_segments_before(self, segment_id: int) -> tuple[int, int]:
        """Delete whole segments with a lower id (never the active one).

        Returns (segments deleted, bytes reclaimed measured on disk).
        """
        with self._round_lock:
            with self._lock:
                active_id = self._segments[-1].segment_id
                victims = [s for s in self._segments if s.segment_id < min(segment_id, active_id)]
            count = reclaimed = 0
            try:
                for victim in victims:
                    reclaimed += self._delete_segment(victim)
                    count += 1
                if count:
                    self._fsync_dir()
            except OSError as exc:
                raise WalIoError(f"cannot delete WAL segment: {exc}") from exc
            return count, reclaimed

    def _delete_segment(self, segment: Segment) -> int:
        """Unlink a non-active segment; return its size on disk."""
        try:
            size = self._io.path_size(segment.path)
        except OSError:
            size = segment.size
        self._io.unlink(segment.path)
        with self._lock:
            self._segments.remove(segment)
            fds = [item for item in self._unsynced_fds if item[0] == segment.segment_id]
            for item in fds:
                self._unsynced_fds.remove(item)
        for _segment_id, fd in fds:
            _quietly(self._io.close, fd)
        return size

    def _fsync_dir(self) -> None:
        self._io.fsync_dir(self._dir)
        self._counters.fsyncs += 1

    def reset(self, type_code: int, payload: bytes) -> int:
        """Delete every segment and start over with one record in a new segment.

        The new segment's id is the old highest + 1 and the record takes the next sequence,
        so offsets and sequences keep increasing. Returns the record's offset.
        """
        check_items([(type_code, payload)])
        self._ensure_writable()
        self.sync()
        with self._round_lock:
            fresh, fd = self._start_over(type_code, payload)
            with self._lock:
                old = self._segments
                old_fds = [self._fd, *(fd for _id, fd in self._unsynced_fds)]
                self._segments = [fresh]
                self._fd = fd
                self._unsynced_fds = []
                self._head = self._active_head()
                self._next_sequence += 1
                self._counters.writes += 1
                self._counters.bytes_written += fresh.size
            for old_fd in old_fds:
                _quietly(self._io.close, old_fd)
            self._durability.advance(self._head, self._next_sequence - 1)
            self._remove_old(old)
        return encode_offset(fresh.segment_id, 0)

    def _start_over(self, type_code: int, payload: bytes) -> tuple[Segment, int]:
        """Create the next segment holding one record, durable with its directory entry."""
        segment_id = self._segments[-1].segment_id + 1
        path = os.path.join(self._dir, segment_name(segment_id))
        record = encode_record(type_code, payload, self._next_sequence)
        try:
            fd = self._io.open(path, CREATE_FLAGS)
        except OSError as exc:
            raise WalIoError(f"cannot create WAL segment {path}: {exc}") from exc
        try:
            write_fully(self._io, fd, record)
            self._io.fdatasync(fd)
            self._counters.fsyncs += 1
            self._fsync_dir()
        except OSError as exc:
            _quietly(self._io.close, fd)
            _quietly(self._io.unlink, path)
            raise WalIoError(f"cannot write WAL segment {path}: {exc}") from exc
        fresh = Segment(segment_id, path, len(record))
        fresh.note_record(0)
        return fresh, fd

    def _remove_old(self, old: list[Segment]) -> None:
        """Delete the segments replaced by a reset, oldest first; keep any that remain."""
        try:
            for index, segment in enumerate(old):
                try:
                    self._io.unlink(segment.path)
                except FileNotFoundError:
                    pass
                except OSError:
                    with self._lock:
                        self._segments[:0] = old[index:]
                    raise
            self._fsync_dir()
        except OSError as exc:
            raise WalIoError(f"cannot delete old WAL segments: {exc}") from exc

    def recover_after_failure(self) -> None:
        """Discard everything after the durable end and leave the failed state.

        Without a failed fsync this only retries removing a failed write. Raises
        ``WalIoError`` if the files cannot be repaired (the failed state remains).
        """
        with self._round_lock:
            try:
                if self._durability.error is None:
                    if self._broken_tail:
                        self._repair_tail()
                    return
                self._discard_after(self._durability.end)
                self._repair_tail()
            except OSError as exc:
                raise WalIoError(f"cannot recover the WAL: {exc}") from exc
            self._durability.clear_failure()
            with self._wake:
                self._wake.notify()

    def _discard_after(self, end: int) -> None:
        keep_id = offset_segment(end)
        while self._segments[-1].segment_id > keep_id:
            self._drop_newest()
        size = offset_position(end)
        self._io.ftruncate(self._fd, size)
        self._io.fdatasync(self._fd)
        self._counters.fsyncs += 1
        if self._dir_dirty:
            self._fsync_dir()
        with self._lock:
            self._segments[-1].cut(size)
            self._dir_dirty = False
            self._head = self._active_head()
            self._next_sequence = self._durability.sequence + 1
            self._dirty_since = None

    def _drop_newest(self) -> None:
        """Delete the active segment and make the previous one active again."""
        victim, previous = self._segments[-1], self._segments[-2]
        reuse = [item for item in self._unsynced_fds if item[0] == previous.segment_id]
        fd = reuse[0][1] if reuse else self._io.open(previous.path, APPEND_FLAGS)
        try:
            self._io.unlink(victim.path)
        except FileNotFoundError:
            pass
        except OSError:
            if not reuse:
                _quietly(self._io.close, fd)
            raise
        old_fd = self._fd
        with self._lock:
            if reuse:
                self._unsynced_fds.remove(reuse[0])
            self._segments.pop()
            self._fd = fd
            self._dir_dirty = True
            self._head = self._active_head()
        _quietly(self._io.close, old_fd)

    # ------------------------------------------------------------------ closing

    def close(self) -> None:
        """Stop the flusher, fsync everything written, close the files. Idempotent.

        In the failed state the records after the durable end are discarded instead.
        Raises ``WalIoError`` if the final fsync fails (the files are closed anyway).
        """
        if self._closed:
            return
        if self._flusher is not None:
            self._flusher.stop()
        error: WalIoError | None = None
        try:
            if self._durability.error is not None or self._broken_tail:
                self.recover_after_failure()
            self._sync_round(background=False, force=True)
        except WalIoError as exc:
            error = exc
        with self._round_lock:
            with self._lock:
                self._closed = True
                fds = [self._fd, *(fd for _id, fd in self._unsynced_fds)]
                self._unsynced_fds = []
            for fd in fds:
                _quietly(self._io.close, fd)
        self._durability.fail(WalIoError("the WAL is closed"), enter_failed_state=True)
        if error is not None:
            raise error

    def __enter__(self) -> Wal:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def _collect(
    stream: Iterator[WalEntry], found: list[WalEntry], limit: int | None, max_bytes: int
) -> None:
    total = 0
    for entry in stream:
        size = len(entry.payload)
        if found and total + size > max_bytes:
            return
        found.append(entry)
        total += size
        if limit is not None and len(found) >= limit:
            return


def _create_first_segment(fileio: FileIO, directory: str) -> Segment:
    path = os.path.join(directory, segment_name(FIRST_SEGMENT_ID))
    fileio.close(fileio.open(path, CREATE_FLAGS))
    return Segment(FIRST_SEGMENT_ID, path)


def _quietly(call: Callable[..., object], *args: object) -> None:
    """Run a clean-up call whose failure can only be logged."""
    try:
        call(*args)
    except OSError as exc:
        log.debug("WAL clean-up call %s%r failed: %s", getattr(call, "__name__", call), args, exc)
