"""The durable store: WAL segments plus checkpoints in a data directory.

Layout (STORAGE §1)::

    <data_dir>/wal/<16 hex>.wal          records (storage.wal)
    <data_dir>/snapshots/checkpoint-*.ckpt, index.json, snap-<uuid>.snap   (storage.snapshot)

Records are encoded as their STORAGE §3.3 JSON entry. The records of an atomic
batch are appended together; every one but the last carries
``"batch_continues": true``, and an incomplete batch at the end of the log
(a crash in the middle of its write) is cut at open like a torn tail, so an
atomic batch is all-or-nothing across crashes too.

Opening loads the newest checkpoint and replays the records after it. A
checkpoint older than a FLUSH_ALL (whose ``checkpoint`` record starts the log)
is ignored; a log that no longer reaches back to the checkpoint is refused.

Raises ``CorruptionError`` (naming file and byte) for damaged data,
``WalIoError`` for I/O failures, ``BadRequest`` for unencodable records.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import orjson

from pyrstmdb.engine.records import CHECKPOINT, TYPE_CODES, Record, from_entry
from pyrstmdb.errors import BadRequest, CorruptionError, WalIoError
from pyrstmdb.results import CompactResult, IoStats, WalReadResult, WalRecord, WalStatsResult
from pyrstmdb.storage.coverage import LogSpan, history_gap
from pyrstmdb.storage.dirlock import DirLock
from pyrstmdb.storage.policy import FsyncPolicy
from pyrstmdb.storage.snapshot import (
    InstanceSnapshots,
    checkpoint_files,
    load_latest_checkpoint,
    remove_files,
    remove_leftovers,
    write_checkpoint,
)
from pyrstmdb.storage.store import (
    READ_BUDGET_BYTES,
    RECORD_OVERHEAD,
    CheckpointData,
    Logged,
    ReplayFn,
)
from pyrstmdb.storage.wal import (
    FileIO,
    Wal,
    WalEntry,
    offset_position,
    offset_segment,
    segment_name,
)
from pyrstmdb.storage.wal.offload import RoundOffload

log = logging.getLogger("pyrstmdb.storage")

BATCH_CONTINUES = "batch_continues"
_DELETED = 9  # index of ``deleted`` in a checkpoint instance row
_LAST_OFFSET = 6  # index of ``last_wal_offset``
_new_logged = tuple.__new__
_dumps = orjson.dumps

#: ``progress(records, bytes_done, bytes_total)``: called by replay after each read chunk.
ReplayProgress = Callable[[int, int, int], None]


def _encode(record: Record, continues: bool = False) -> tuple[int, bytes]:
    entry = record.to_entry()
    if continues:
        entry[BATCH_CONTINUES] = True
    try:
        return TYPE_CODES[type(record)], _dumps(entry)
    except TypeError as err:
        raise BadRequest(f"invalid request: value is not JSON: {err}") from None


def _lock(data_dir: str) -> DirLock:
    try:
        os.makedirs(data_dir, exist_ok=True)
    except OSError as err:
        raise WalIoError(f"cannot create data directory {data_dir}: {err}") from err
    try:
        return DirLock.acquire(data_dir)
    except OSError as err:
        raise WalIoError(f"cannot lock data directory {data_dir}: {err}") from err


def _open_wal(data_dir: str, policy: FsyncPolicy, segment_size: int, fileio: FileIO | None) -> Wal:
    """Create the directories, remove leftovers of interrupted writes, open the log."""
    wal_dir = os.path.join(data_dir, "wal")
    snapshot_dir = os.path.join(data_dir, "snapshots")
    try:
        os.makedirs(wal_dir, exist_ok=True)
        os.makedirs(snapshot_dir, exist_ok=True)
        removed = remove_leftovers(snapshot_dir)
    except OSError as err:
        raise WalIoError(f"cannot prepare data directory {data_dir}: {err}") from err
    for name, size in removed:
        log.warning(
            "removed %s (%d bytes), left behind by an interrupted checkpoint or snapshot write",
            os.path.join(snapshot_dir, name),
            size,
        )
    return Wal.open(wal_dir, segment_size=segment_size, policy=policy, fileio=fileio)


class DiskStore:
    """``Store`` over a data directory (see module docstring)."""

    def __init__(self, data_dir: str, wal: Wal, policy: FsyncPolicy, lock: DirLock) -> None:
        self.data_dir = data_dir
        self._lock = lock
        self.snapshot_dir = os.path.join(data_dir, "snapshots")
        self._wal = wal
        self.waits_for_disk = policy.waits_for_disk
        self._snapshots = InstanceSnapshots(self.snapshot_dir)
        self._covered: dict[str, int] = {}
        self.replay_progress: ReplayProgress | None = None

    @classmethod
    def open(
        cls,
        data_dir: str,
        *,
        policy: FsyncPolicy | None = None,
        segment_size: int = 64 * 1024 * 1024,
        fileio: FileIO | None = None,
    ) -> DiskStore:
        """Lock ``data_dir`` for this process, tidy it and open its log.

        Raises ``DataDirectoryLocked`` when another opener holds the directory.
        """
        policy = policy or FsyncPolicy()
        lock = _lock(data_dir)
        try:
            wal = _open_wal(data_dir, policy, segment_size, fileio)
            try:
                return cls(data_dir, wal, policy, lock)
            except BaseException:
                wal.close()
                raise
        except BaseException:
            lock.release()
            raise

    # -- positions -------------------------------------------------------------
    @property
    def head(self) -> int:
        return self._wal.head

    @property
    def visible_end(self) -> int:
        return self._wal.durable_end if self.waits_for_disk else self._wal.head

    @property
    def history_start(self) -> int:
        return self._wal.first_offset

    @property
    def wal(self) -> Wal:
        return self._wal

    # -- opening -----------------------------------------------------------------
    def load_checkpoint(self) -> CheckpointData | None:
        checkpoint = self._usable_checkpoint()
        if checkpoint is not None:
            self._covered = {row[0]: row[_LAST_OFFSET] for row in checkpoint.instances}
        return checkpoint

    def _usable_checkpoint(self) -> CheckpointData | None:
        checkpoint = load_latest_checkpoint(self.snapshot_dir)
        if checkpoint is not None:
            reset_at = self._reset_offset()
            if reset_at is not None and reset_at >= checkpoint.offset:
                log.info("ignoring checkpoint from before the last FLUSH_ALL")
                names = [name for _, name in checkpoint_files(self.snapshot_dir)]
                remove_files(self.snapshot_dir, names)
                checkpoint = None
        segments = self._wal.segments()
        gap = history_gap(
            LogSpan(segments[0].segment_id if segments else None, self._wal.head),
            lambda: self._reset_offset() is not None,
            None if checkpoint is None else checkpoint.offset,
        )
        if gap is not None:
            path = os.path.join(self.data_dir, "wal", segment_name(gap.segment_id))
            raise CorruptionError(gap.message, path, 0)
        return checkpoint

    def _reset_offset(self) -> int | None:
        """The offset of FLUSH_ALL's ``checkpoint`` record when it starts the log."""
        first = self._wal.first_offset
        entry = next(self._wal.entries(first, first + 1), None)
        return entry.offset if entry is not None and entry.type_code == CHECKPOINT else None

    def _decode(self, entry: WalEntry, default_ts: int) -> Record | None:
        try:
            return from_entry(entry.type_code, orjson.loads(entry.payload), default_ts)
        except (orjson.JSONDecodeError, ValueError) as err:
            raise self.unreadable(entry.offset, err) from None

    def replay(self, apply: ReplayFn, start: int, end: int | None) -> int:
        limit = end if end is not None else 1 << 64
        held: list[tuple[int, Any, int]] = []  # an atomic batch still waiting for its end
        loads = orjson.loads
        count = 0
        offset = start
        progress = self.replay_progress
        before = self._bytes_before() if progress is not None else {}
        first = before.get(offset_segment(start), 0) + offset_position(start)
        total = sum(info.size for info in self._wal.segments()) - first if before else 0
        try:
            for batch in self._wal.entry_batches(start, end):
                if progress is not None and batch:
                    at = batch[0].offset
                    done = before.get(offset_segment(at), 0) + offset_position(at) - first
                    progress(count, done, total)
                for _sequence, offset, code, payload in batch:
                    if offset >= limit:
                        return count
                    body = loads(payload)
                    if type(body) is dict and BATCH_CONTINUES in body:
                        held.append((code, body, offset))
                        continue
                    if held:
                        count += self._apply_held(apply, held)
                    apply(code, body, offset)
                    count += 1
        except (orjson.JSONDecodeError, ValueError) as err:
            raise self.unreadable(offset, err) from None
        if progress is not None:
            progress(count + len(held), total, total)
        if held and end is None:
            self._cut_incomplete_batch(held[0][2], len(held))
        return count

    def _bytes_before(self) -> dict[int, int]:
        """Per segment id, the bytes of the segments before it (replay progress)."""
        before: dict[int, int] = {}
        seen = 0
        for info in self._wal.segments():
            before[info.segment_id] = seen
            seen += info.size
        return before

    @staticmethod
    def _apply_held(apply: ReplayFn, held: list[tuple[int, Any, int]]) -> int:
        for code, body, offset in held:
            apply(code, body, offset)
        count = len(held)
        held.clear()
        return count

    def unreadable(self, offset: int, err: Exception) -> CorruptionError:
        """The error for a record at ``offset`` whose payload cannot be read."""
        return CorruptionError(
            f"unreadable record payload ({err})",
            os.path.join(self.data_dir, "wal", segment_name(offset_segment(offset))),
            offset_position(offset),
        )

    def _cut_incomplete_batch(self, offset: int, records: int) -> None:
        log.warning(
            "the log ends inside an atomic batch (%d of its records written before a crash); "
            "cutting them at %s byte %d",
            records,
            segment_name(offset_segment(offset)),
            offset_position(offset),
        )
        self._wal.truncate_to(offset)

    # -- writing -----------------------------------------------------------------
    def append(self, records: Sequence[Record], atomic: bool = False) -> list[int]:
        last = len(records) - 1
        items = [_encode(r, atomic and i < last) for i, r in enumerate(records)]
        return self._wal.append(items)

    def append_one(self, record: Record) -> int:
        return self._wal.append_one(*_encode(record))

    def wait_visible(self, offset: int) -> None:
        self._wal.wait_durable(offset)

    def add_visible_listener(self, fn: Callable[[int], None]) -> None:
        self._wal.add_durable_listener(fn)

    def set_failure_handler(self, fn: Callable[[WalIoError], None]) -> None:
        self._wal.set_failure_handler(fn)

    def recover_after_failure(self) -> None:
        self._wal.recover_after_failure()

    @property
    def failed(self) -> bool:
        return self._wal.failed

    def sync(self) -> None:
        self._wal.sync()

    def fsync_offload(self) -> RoundOffload | None:
        return self._wal.offload()

    # -- reading -----------------------------------------------------------------
    def read(self, from_offset: int, limit: int | None) -> WalReadResult:
        entries, _ = self._wal.read(from_offset, limit, READ_BUDGET_BYTES)
        records: list[WalRecord] = []
        used = 0
        for entry in entries:
            used += len(entry.payload) + RECORD_OVERHEAD
            if records and used > READ_BUDGET_BYTES:
                break
            records.append(WalRecord(entry.sequence, entry.offset, orjson.loads(entry.payload)))
        next_offset = records[-1].offset + 1 if records else None
        return WalReadResult(records, next_offset)

    def logged_from(self, from_offset: int, end: int) -> Iterator[Logged]:
        default_ts = time.time_ns() // 1_000_000
        for entry in self._wal.entries(from_offset, end):
            record = self._decode(entry, default_ts)
            if record is not None:
                yield Logged(entry.sequence, entry.offset, record)

    def stats(self) -> WalStatsResult:
        s = self._wal.stats()
        return WalStatsResult(
            s.entry_count,
            s.segment_count,
            s.total_size_bytes,
            s.latest_offset,
            IoStats(s.bytes_written, s.bytes_read, s.writes, s.reads, s.fsyncs),
        )

    # -- snapshots and compaction ------------------------------------------------------
    def compact(self, data: CheckpointData, force: bool) -> CompactResult:
        """Write a checkpoint of ``data`` and delete the segments it covers.

        ``data.offset`` must be durable (the caller syncs first). Every instance
        whose state changed since the previous checkpoint counts as a snapshot
        created; deleted instances stay in the checkpoint (their ids remain
        taken) but lose their per-instance snapshot files.
        """
        covered = {row[0]: row[_LAST_OFFSET] for row in data.instances}
        created = sum(1 for key, off in covered.items() if self._covered.get(key) != off)
        try:
            write_checkpoint(self.snapshot_dir, data, time.time_ns() // 1_000_000)
        except WalIoError as err:
            raise WalIoError(
                f"compaction failed writing its checkpoint: {err.message}; no segment was deleted",
                err.details,
            ) from err
        except OSError as err:
            raise WalIoError(f"compaction failed removing older checkpoints: {err}") from err
        self._covered = covered
        deleted_ids = [row[0] for row in data.instances if row[_DELETED]]
        self._snapshots.forget(deleted_ids)
        segments, reclaimed = self._wal.drop_segments_before(offset_segment(data.offset))
        return CompactResult(
            snapshots_created=created,
            segments_deleted=segments,
            bytes_reclaimed=reclaimed,
            total_snapshots=len(covered),
            wal_segments=len(self._wal.segments()),
        )

    def write_instance_snapshot(self, body: dict[str, Any]) -> tuple[str, int, str]:
        size, checksum = self._snapshots.write(body)
        return body["snapshot_id"], size, checksum

    def reset(self, record: Record) -> int:
        code, payload = _encode(record)
        offset = self._wal.reset(code, payload)
        remove_files(self.snapshot_dir, [name for _, name in checkpoint_files(self.snapshot_dir)])
        self._snapshots.clear()
        self._covered = {}
        return offset

    def close(self) -> None:
        """Close the log, then give the directory up (even if closing failed)."""
        try:
            self._wal.close()
        finally:
            self._lock.release()
