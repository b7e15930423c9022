"""The write-ahead log of one directory: the :class:`Wal` interface.

``Wal`` opens (recovering first) a directory of segments and offers appends, durability
waits, reads of record ranges, statistics and upkeep. It never interprets payloads. The
work is done by small modules acting on the shared :class:`~.state.LogState`:
``appender`` (writes and rotation), ``syncing`` and ``flusher`` (fsync rounds, group
commit), ``reading`` (ranges), ``upkeep`` (drop, reset) and ``rollback`` (leaving the
failed state, truncation).

Raises ``WalIoError`` on I/O failure, ``BadRequest`` for records that may not be written
and ``CorruptionError`` (from ``open`` and reads) for damaged data.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterator, Sequence
from functools import partial

from pyrstmdb.errors import WalIoError
from pyrstmdb.storage.policy import FsyncPolicy

from . import appender, rollback, syncing, upkeep
from .durability import Durability
from .fileio import APPEND_FLAGS, CREATE_FLAGS, READ_FLAGS, FileIO
from .flusher import Flusher
from .layout import DEFAULT_SEGMENT_SIZE, FIRST_SEGMENT_ID, encode_offset, segment_name
from .model import RecoveryReport, SegmentInfo, WalEntry, WalStats
from .offload import RoundOffload
from .reading import plan_spans, stream_batches, stream_spans
from .record import check_items
from .recovery import Recovered, recover
from .segment import Segment
from .state import LogState

_DEFAULT_POLICY = FsyncPolicy()


class Wal:
    """A write-ahead log in one directory. Create it with :meth:`Wal.open`.

    ``append``, ``reset`` and ``recover_after_failure`` are serialised internally (callers
    usually serialise them as well); reads, statistics, ``wait_durable`` and
    ``when_durable`` may be called from any thread. Durability callbacks, listeners and
    the failure handler run in the flusher thread (or at once in the caller's); they
    should be quick and must not append. The failure handler runs outside every WAL lock
    and may call ``recover_after_failure`` directly.
    """

    recovery: RecoveryReport

    def __init__(self, state: LogState, recovery: RecoveryReport) -> None:
        self._state = state
        self.recovery = recovery
        self._flusher: Flusher | None = None
        self._verified_end = 0  # records below were CRC-checked by the open scan
        #: :meth:`append` for one record (type code, payload) -> offset; the hottest call,
        #: bound without an extra Python frame.
        self.append_one: Callable[[int, bytes], int] = partial(appender.append_one, state)

    @classmethod
    def open(
        cls,
        directory: str | os.PathLike[str],
        *,
        segment_size: int = DEFAULT_SEGMENT_SIZE,
        policy: FsyncPolicy = _DEFAULT_POLICY,
        fileio: FileIO | None = None,
    ) -> Wal:
        """Open (creating if needed) the log in ``directory``, recovering it first.

        Starts the flusher thread unless the policy is ``never``. Raises
        ``CorruptionError`` naming file and byte on real corruption, ``WalIoError`` when
        the directory cannot be read or written.
        """
        if segment_size <= 0:
            raise ValueError(f"segment_size must be positive, got {segment_size}")
        io = fileio or FileIO()
        path = os.fspath(directory)
        try:
            io.makedirs(path)
            recovered = recover(path, io)
            state = _open_state(path, io, segment_size, policy, recovered)
        except OSError as exc:
            raise WalIoError(f"cannot open WAL in {path}: {exc}") from exc
        wal = cls(state, recovered.report)
        wal._verified_end = state.head  # every record below was checked by the open scan
        wal._start_flusher()
        return wal

    def _start_flusher(self) -> None:
        state = self._state
        if state.policy.kind == "never":
            return
        self._flusher = Flusher(
            state.policy,
            state.wake,
            lambda: syncing.backlog(state),
            lambda: syncing.sync_round(state, background=True, force=False),
            state.set_flusher_wake_at,
        )
        self._flusher.start()

    # ------------------------------------------------------------------ positions

    @property
    def head(self) -> int:
        """The offset where the next record goes."""
        return self._state.head

    @property
    def durable_end(self) -> int:
        """Every record at an offset below this is on disk."""
        return self._state.durability.end

    @property
    def next_sequence(self) -> int:
        return self._state.next_sequence

    @property
    def first_offset(self) -> int:
        """The offset of the oldest record held (the head when there is none)."""
        state = self._state
        with state.lock:
            for segment in state.segments:
                if segment.size > 0:
                    return encode_offset(segment.segment_id, 0)
            return state.head

    # ------------------------------------------------------------------ writing

    def append(self, items: Sequence[tuple[int, bytes]]) -> list[int]:
        """Write records (type code, payload); return their offsets.

        One ``write`` per segment touched. On failure the written bytes are removed, no
        sequence number is consumed and ``WalIoError`` is raised; ``BadRequest`` for a bad
        type code or a payload over 16 MiB, before anything is written. The records are
        durable once :meth:`wait_durable` returns for them.
        """
        return appender.append(self._state, items)

    def wait_durable(self, offset: int, timeout: float | None = None) -> None:
        """Block until the record at ``offset`` is durable (at once unless every_write).

        Raises ``WalIoError`` if the fsync that should have covered it failed, or on timeout.
        On the thread of an event loop that runs the rounds (``offload``), a round runs
        here first: that loop cannot run one while this thread blocks.
        """
        state = self._state
        durability = state.durability
        if (
            state.kick is not None
            and offset >= durability.end
            and durability.error is None
            and state.kick_thread == threading.get_ident()
        ):
            syncing.sync_round(state, background=True, force=False)
        durability.wait(offset, timeout)

    def when_durable(self, offset: int, callback: Callable[[WalIoError | None], None]) -> None:
        """Call ``callback(None)`` when ``offset`` is durable or ``callback(error)`` on failure.

        Runs in the flusher thread, or at once in this thread when already decided.
        """
        self._state.durability.when(offset, callback)

    def add_durable_listener(self, fn: Callable[[int], None]) -> None:
        """Call ``fn(new_durable_end)`` after every advance of the durable end."""
        self._state.durability.add_listener(fn)

    def set_failure_handler(self, fn: Callable[[WalIoError], None]) -> None:
        """Call ``fn(error)`` from the flusher when an fsync under every_write fails."""
        self._state.failure_handler = fn

    @property
    def failed(self) -> bool:
        """True from a failed fsync under every_write until :meth:`recover_after_failure`."""
        return self._state.durability.error is not None

    def recover_after_failure(self) -> None:
        """Discard everything after the durable end and leave the failed state."""
        rollback.recover_after_failure(self._state)
        self._verified_end = min(self._verified_end, self._state.head)

    def truncate_to(self, offset: int) -> None:
        """Discard every record at or after ``offset`` (a record the log holds).

        For startup, before the log is in use: the head, the durable end and the next
        sequence number move back. Raises ``ValueError`` for an offset that is not a held
        record and ``WalIoError`` if the files cannot be cut.
        """
        rollback.truncate_to(self._state, offset)
        self._verified_end = min(self._verified_end, self._state.head)

    def offload(self) -> RoundOffload | None:
        """A handle for running ``every_write`` rounds from an event loop (``offload``).

        ``None`` unless the policy is ``every_write`` and the log does real file I/O (an
        injected ``FileIO`` keeps every sync in the flusher thread, where it can see them).
        """
        state = self._state
        if not state.policy.waits_for_disk or type(state.io) is not FileIO:
            return None
        return RoundOffload(state)

    def sync(self) -> None:
        """Fsync everything written so far, in this thread."""
        state = self._state
        if state.closed:
            raise WalIoError("the WAL is closed")
        if state.durability.error is not None:
            raise WalIoError("the WAL is in a failed state; it must be recovered first")
        syncing.sync_round(state, background=False, force=True)

    # ------------------------------------------------------------------ reading

    def entries(self, from_offset: int = 0, end: int | None = None) -> Iterator[WalEntry]:
        """Records with ``from_offset <= offset < end`` (``end`` defaults to the head).

        Read from disk segment by segment in bounded chunks; counts one read. Records still
        queued by deferred appends are written (with an fsync round) first.
        """
        state = self._state
        stop = self._written_upto(end)
        with state.lock:
            spans = plan_spans(state.segments, from_offset, stop)
            state.counters.reads += 1
        return stream_spans(state.io, spans, self._count_read_bytes)

    def entry_batches(
        self, from_offset: int = 0, end: int | None = None
    ) -> Iterator[list[WalEntry]]:
        """The same records as :meth:`entries`, in lists of one read chunk each (for replay).

        Records the open scan already checked are not CRC-checked again.
        """
        state = self._state
        stop = self._written_upto(end)
        with state.lock:
            spans = plan_spans(state.segments, from_offset, stop, self._verified_end)
            state.counters.reads += 1
        return stream_batches(state.io, spans, self._count_read_bytes)

    def _written_upto(self, end: int | None) -> int:
        """``end`` (default: the head), once the records below it are in the files.

        Under every_write records may still be queued; a sync round writes them. In the
        failed state nothing more is written and the answer stops at the durable end.
        """
        state = self._state
        stop = state.head if end is None else end
        if stop > state.durability.end:
            self._write_queued()
        return min(stop, state.durability.end) if state.pending else stop

    def _write_queued(self) -> None:
        """Run a round now if appends are queued (unless failed: then nothing is written)."""
        state = self._state
        if state.pending and state.durability.error is None and not state.closed:
            syncing.sync_round(state, background=False, force=False)

    def read(
        self, from_offset: int, limit: int | None, max_bytes: int
    ) -> tuple[list[WalEntry], int | None]:
        """Up to ``limit`` visible records from ``from_offset``, within ``max_bytes`` of payload.

        Visible means durable under every_write and written otherwise. At least one record
        is returned when any exists. The second value is where to continue, or ``None``.
        """
        state = self._state
        with state.lock:
            visible = state.durability.end if state.policy.waits_for_disk else state.head
            spans = plan_spans(state.segments, from_offset, visible) if limit != 0 else []
            state.counters.reads += 1
        found: list[WalEntry] = []
        stream = stream_spans(state.io, spans, self._count_read_bytes)
        try:
            _collect(stream, found, limit, max_bytes)
        finally:
            stream.close()
        return found, (found[-1].offset + 1 if found else None)

    def _count_read_bytes(self, size: int) -> None:
        with self._state.lock:
            self._state.counters.bytes_read += size

    # ------------------------------------------------------------------ inspection

    def stats(self) -> WalStats:
        """WAL_STATS figures; sizes are the real current sizes of the segment files."""
        state = self._state
        with state.lock:
            counters = state.counters
            return WalStats(
                entry_count=state.next_sequence - 1,
                segment_count=len(state.segments),
                total_size_bytes=sum(segment.size for segment in state.segments),
                latest_offset=state.head,
                writes=counters.writes,
                bytes_written=counters.bytes_written,
                fsyncs=counters.fsyncs,
                reads=counters.reads,
                bytes_read=counters.bytes_read,
            )

    def segments(self) -> list[SegmentInfo]:
        with self._state.lock:
            return [SegmentInfo(s.segment_id, s.path, s.size) for s in self._state.segments]

    # ------------------------------------------------------------------ upkeep

    def drop_segments_before(self, segment_id: int) -> tuple[int, int]:
        """Delete whole segments with a lower id (never the active one); fsync the directory.

        Returns (segments deleted, bytes reclaimed measured on disk). Bytes still queued for
        a segment about to go are written first.
        """
        self._write_queued()
        return upkeep.drop_segments_before(self._state, segment_id)

    def reset(self, type_code: int, payload: bytes) -> int:
        """Delete every segment and start over with one durable record in a new segment.

        The new segment's id is the old highest + 1 and the record takes the next sequence,
        so offsets and sequences keep increasing. Returns the record's offset.
        """
        check_items([(type_code, payload)])
        with self._state.write_lock:
            appender.ensure_writable(self._state)
            self.sync()
            return upkeep.reset(self._state, type_code, payload)

    def close(self) -> None:
        """Stop the flusher, fsync everything written, close the files. Idempotent.

        In the failed state the records after the durable end are discarded instead.
        Raises ``WalIoError`` if the final fsync fails (the files are closed anyway).
        """
        state = self._state
        if state.closed:
            return
        if self._flusher is not None:
            self._flusher.stop()  # before taking locks: its failure handler may need them
        with state.write_lock:
            if state.closed:
                return
            error = _final_sync(state)
            with state.round_lock:
                with state.lock:
                    state.closed = True
                    state.kick = None
                    fds = [state.fd, *(fd for _id, fd in state.unsynced_fds)]
                    state.unsynced_fds = []
                for fd in fds:
                    state.close_quietly(fd)
        state.durability.fail(WalIoError("the WAL is closed"), enter_failed_state=True)
        if error is not None:
            raise error

    def __enter__(self) -> Wal:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def _final_sync(state: LogState) -> WalIoError | None:
    """Fsync everything written (discarding the undurable part after a failure)."""
    try:
        if state.durability.error is not None or state.broken_tail:
            rollback.recover_after_failure(state)
        syncing.sync_round(state, background=False, force=True)
    except WalIoError as exc:
        return exc
    return None


def _open_state(
    directory: str, io: FileIO, segment_size: int, policy: FsyncPolicy, recovered: Recovered
) -> LogState:
    """Open the active segment, make what recovery found durable, and build the state."""
    segments = recovered.segments or [_create_first_segment(io, directory)]
    for segment in segments[:-1]:  # cheap when clean; a previous run may not have synced
        _sync_file(io, segment.path)
    fd = io.open(segments[-1].path, APPEND_FLAGS)
    try:
        io.fdatasync(fd)
        io.fsync_dir(directory)
    except OSError:
        io.close(fd)
        raise
    last = recovered.report.last_sequence
    active = segments[-1]
    head = encode_offset(active.segment_id, active.size)
    return LogState(
        directory=directory,
        io=io,
        policy=policy,
        segment_size=segment_size,
        segments=segments,
        fd=fd,
        durability=Durability(head, last, policy.waits_for_disk),
        next_sequence=last + 1,
    )


def _sync_file(io: FileIO, path: str) -> None:
    fd = io.open(path, READ_FLAGS)
    try:
        io.fdatasync(fd)
    finally:
        io.close(fd)


def _create_first_segment(io: FileIO, directory: str) -> Segment:
    path = os.path.join(directory, segment_name(FIRST_SEGMENT_ID))
    io.close(io.open(path, CREATE_FLAGS))
    return Segment(FIRST_SEGMENT_ID, path)


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
