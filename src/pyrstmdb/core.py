"""The one write path: decide → append → apply → publish.

``Core`` owns the in-memory ``State``, the ``Store`` and the database lock.
Every operation returns ``(result, wait_offset)``: the caller must not hand
the result out before the record at ``wait_offset`` is visible (durable under
``every_write``); ``-1`` means nothing to wait for. ``Database`` waits by
blocking, the server by awaiting (``aio.DurabilityWaiter``), so both share this code.

* Writes: under the lock, ``engine.machine.decide_*`` checks the command
  against the state, the store appends the record (``write()`` only; the
  fsync happens later in the store's flusher), ``engine.machine.apply``
  updates memory. An idempotent replay logs nothing and returns the first
  result, waiting for it if it is still pending.
* Reads wait for the latest record of what they read, so nobody observes a
  change that a crash could still take back.
* Publication: records become visible in log order; commit listeners (the
  subscription hub) receive them in that order, once each.
* Failure: if the store reports that an fsync failed, the state is rebuilt
  from what is durable, so memory again equals disk. The discarded offset
  range is remembered (the log never reuses it), so a wait for one of its
  records fails however late it starts.
* Visibility watchers are called, from any thread, whenever the visible end
  advances or memory was rolled back; an event loop uses them to resolve its
  own waits (``aio.DurabilityWaiter``) with one wake-up per fsync round.
"""

from __future__ import annotations

import gc
import logging
import threading
import uuid
from bisect import bisect_left
from collections import deque
from collections.abc import Callable, Iterator
from typing import Any, cast

from pyrstmdb.engine import machine
from pyrstmdb.engine.commands import (
    ApplyEvent,
    BatchOp,
    CreateInstance,
    DeleteInstance,
    ListInstances,
    PutMachine,
    WriteCommand,
    parse_batch_op,
)
from pyrstmdb.engine.definition import compile_definition
from pyrstmdb.engine.idempotency import IdempotencyCache
from pyrstmdb.engine.records import Checkpoint, Record
from pyrstmdb.engine.state import HistoryEntry, Instance, Staged, State, View
from pyrstmdb.errors import BadRequest, RstmdbError, WalIoError
from pyrstmdb.results import (
    ApplyEventResult,
    BatchItem,
    BatchResult,
    CompactResult,
    CreateInstanceResult,
    DeleteInstanceResult,
    FlushAllResult,
    GetInstanceResult,
    GetMachineResult,
    HistoryResult,
    InstanceSummary,
    ListInstancesResult,
    ListMachinesResult,
    MachineVersions,
    PutMachineResult,
    SnapshotResult,
    WalReadResult,
    WalStatsResult,
    WriteResult,
    history_entry,
)
from pyrstmdb.storage.store import CheckpointData, Logged, Store
from pyrstmdb.storage.wal.offload import RoundOffload

log = logging.getLogger("pyrstmdb.database")

Published = tuple[int, Record]
CommitListener = Callable[[list[Published]], None]
NO_WAIT = -1
#: Told the visible end and the roll-back count after every change of either.
VisibilityWatcher = Callable[[int, int], None]
#: How many roll-backs' discarded ranges are remembered (waits arrive within moments).
DISCARDED_KEPT = 64


def _decide(view: View, cmd: WriteCommand, now: int) -> Any:
    if type(cmd) is ApplyEvent:
        return machine.decide_apply(view, cmd, now)
    if type(cmd) is CreateInstance:
        return machine.decide_create(view, cmd, now, _new_id)
    assert type(cmd) is DeleteInstance
    return machine.decide_delete(view, cmd, now)


def _new_id() -> str:
    return str(uuid.uuid4())


_RESULT_TYPES = (ApplyEventResult, CreateInstanceResult, DeleteInstanceResult)


class Core:
    def __init__(
        self,
        store: Store,
        *,
        clock: Callable[[], int],
        max_machine_versions: int = 0,
        idempotency_ttl_ms: int = 86_400_000,
        idempotency_max_keys: int = 1_000_000,
        history_per_instance: int = 100,
    ) -> None:
        self._store = store
        self._history_limit = history_per_instance
        self._clock = clock
        self._max_versions = max_machine_versions
        self._idem_settings = (idempotency_ttl_ms, idempotency_max_keys)
        self._lock = threading.RLock()  # re-entered when a sync in a locked section fails
        self._publish_lock = threading.Lock()
        self._listeners: list[CommitListener] = []
        #: Appended records not yet visible, in offset order (appended under the lock,
        #: taken from the front under the publish lock).
        self._unpublished: list[Published] = []
        self._waits = store.waits_for_disk
        self._needs_recovery = False
        self._rollbacks = 0  # bumped whenever memory is rolled back to the durable log
        #: (start, end, error) of the offsets discarded by recent roll-backs, newest last
        self._discarded: deque[tuple[int, int, WalIoError]] = deque(maxlen=DISCARDED_KEPT)
        self._watchers: tuple[VisibilityWatcher, ...] = ()
        self._maintenance = threading.Lock()  # compaction, snapshots and flush, one at a time
        self.state = self._load()
        self._published_end = store.visible_end  # everything below was visible at open
        if self._waits:
            store.add_visible_listener(self._on_visible)
            store.set_failure_handler(self._on_failure)

    # -- opening and rebuilding ------------------------------------------------
    def _load(self, end: int | None = None) -> State:
        # Replay allocates millions of long-lived objects; the cyclic collector would
        # rescan them over and over, so it pauses until the state is built.
        paused = gc.isenabled()
        gc.disable()
        try:
            state = self._build_state(end)
        finally:
            if paused:
                gc.enable()
        gc.freeze()  # the rebuilt state is long-lived: keep it out of later collections
        return state

    def _build_state(self, end: int | None) -> State:
        state = State(IdempotencyCache(*self._idem_settings), self._history_limit)
        checkpoint = self._store.load_checkpoint()
        if checkpoint is not None:
            restore_checkpoint(state, checkpoint)
        replay_entry = machine.replay_entry
        default_ts = self._clock()

        def apply(type_code: int, entry: Any, offset: int) -> None:
            replay_entry(state, type_code, entry, offset, default_ts)

        start = 0 if checkpoint is None else checkpoint.offset
        count = self._store.replay(apply, start, end)
        state.idempotency.expire(self._clock())
        if count:
            log.info("replayed %d log records", count)
        return state

    def _on_failure(self, err: WalIoError) -> None:
        with self._lock:
            # Another path (a sync in a caller's thread) may have rolled back and recovered
            # while this handler waited for the lock: what is written since is healthy.
            if self._store.failed:
                self._roll_back(err)

    def _roll_back(self, err: WalIoError) -> None:
        """Make memory equal the durable log again (the lock is held)."""
        log.error("WAL fsync failed (%s); rolling back to the last durable record", err)
        # Noted before the log is repaired, so no wait can start in between unaware.
        start, end = self._store.visible_end, self._store.head
        if end > start:
            self._discarded.append((start, end, err))
        try:
            self._store.recover_after_failure()
            self._needs_recovery = False
        except WalIoError as again:
            log.error("WAL recovery failed: %s; writes are refused until it succeeds", again)
            self._needs_recovery = True
        self._rollbacks += 1
        visible = self._store.visible_end
        with self._publish_lock:
            self._unpublished = [p for p in self._unpublished if p[0] < visible]
        self.state = self._load(end=visible)
        self._notify_watchers()

    def _ensure_writable(self) -> None:
        if self._needs_recovery:
            self._store.recover_after_failure()
            self._needs_recovery = False

    # -- publication -----------------------------------------------------------
    def add_commit_listener(self, fn: CommitListener) -> int:
        """Register ``fn``; returns the offset from which it receives every record.

        Records below it were published before; the caller reads them from the log.
        Appended records are only kept for publication while a listener exists, so the
        first listener first waits until everything appended is visible.
        """
        with self._lock:
            if self._waits and not self._listeners and self._store.head > self._store.visible_end:
                self._sync()
            with self._publish_lock:
                self._listeners.append(fn)
                return self._published_end if self._waits else self._store.head

    def remove_commit_listener(self, fn: CommitListener) -> None:
        with self._lock:
            if fn in self._listeners:
                self._listeners.remove(fn)

    def _append(self, records: list[Record], atomic: bool = False) -> list[int]:
        self._ensure_writable()
        offsets = self._store.append(records, atomic)
        if self._listeners:
            self._unpublished.extend(zip(offsets, records, strict=True))
        return offsets

    def _append_one(self, record: Record) -> int:
        if self._needs_recovery:
            self._ensure_writable()
        offset = self._store.append_one(record)
        if self._listeners:  # until a listener exists, nobody needs the records themselves
            self._unpublished.append((offset, record))
        return offset

    def _on_visible(self, end: int) -> None:
        """The store made records below ``end`` visible (called in its fsync thread)."""
        self._publish_upto(end)
        self._notify_watchers()

    def _notify_watchers(self) -> None:
        end, rollbacks = self._store.visible_end, self._rollbacks
        for fn in self._watchers:
            try:
                fn(end, rollbacks)
            except Exception:  # a watcher must never break the fsync thread
                log.exception("visibility watcher failed")

    @property
    def waits_for_disk(self) -> bool:
        """Whether records become visible only once durable (``every_write``)."""
        return self._waits

    def add_visibility_watcher(self, fn: VisibilityWatcher) -> None:
        """Call ``fn(visible_end, rollbacks)`` (from any thread) after the visible end
        advances or a roll-back; only when :attr:`waits_for_disk` (else nothing waits)."""
        with self._lock:
            self._watchers = (*self._watchers, fn)

    def remove_visibility_watcher(self, fn: VisibilityWatcher) -> None:
        with self._lock:
            self._watchers = tuple(w for w in self._watchers if w != fn)  # bound methods

    def _after_write(self) -> None:
        """Publish what the write made visible (under every_write the fsync round does)."""
        if self._listeners and not self._waits:
            self._publish_upto(self._store.visible_end)

    def _publish_upto(self, end: int) -> None:
        with self._publish_lock:
            pending = self._unpublished
            # Appends after this point have offsets at or past ``end``: they stay behind.
            stop = bisect_left(pending, end, key=_published_offset)
            batch = pending[:stop]
            del pending[:stop]
            if end > self._published_end:
                self._published_end = end
            if batch and self._listeners:
                for fn in list(self._listeners):
                    try:
                        fn(batch)
                    except Exception:  # a listener must never break the write path
                        log.exception("commit listener failed")

    # -- waiting -----------------------------------------------------------------
    @property
    def store(self) -> Store:
        return self._store

    def fsync_offload(self) -> RoundOffload | None:
        """A handle for an event loop to run the durability rounds (``aio``), if supported."""
        return self._store.fsync_offload()

    @property
    def visible_end(self) -> int:
        """Every record below this offset is visible (durable under ``every_write``)."""
        return self._store.visible_end

    @property
    def rollbacks(self) -> int:
        """How many times memory was rolled back to the durable log."""
        return self._rollbacks

    def discarded(self, offset: int) -> WalIoError | None:
        """The error that discarded the record at ``offset``; ``None`` if it was not."""
        if not self._discarded:
            return None
        for start, end, err in self._discarded:
            if start <= offset < end:
                return err
        return None

    def wait(self, offset: int) -> None:
        """Block until the record at ``offset`` is visible; ``WalIoError`` if it never will be."""
        if not self._waits or offset < 0:
            return
        self._raise_if_discarded(offset)
        if offset >= self._store.visible_end:
            self._store.wait_visible(offset)
            self._raise_if_discarded(offset)

    def _raise_if_discarded(self, offset: int) -> None:
        err = self.discarded(offset)
        if err is not None:
            raise WalIoError(err.message) from err

    def _pending_all(self) -> int:
        head = self._store.head
        return head - 1 if head > self._store.visible_end else NO_WAIT

    # -- writes ----------------------------------------------------------------
    def put_machine(self, cmd: PutMachine) -> tuple[PutMachineResult, int]:
        with self._lock:
            record, compiled, known = machine.decide_put_machine(
                self.state, cmd, self._clock(), self._max_versions
            )
            if record is None:
                assert known is not None
                return known, self._pending_all()
            (offset,) = self._append([record])
            result = machine.apply_machine(self.state, compiled)
        self._after_write()
        return result, offset

    def apply_event(self, cmd: ApplyEvent) -> tuple[ApplyEventResult, int]:
        with self._lock:
            out = machine.decide_apply(self.state, cmd, self._clock())
            if isinstance(out, ApplyEventResult):
                return out, out.wal_offset
            offset = self._append_one(out)
            result = machine.apply_event_record(self.state, out, offset)
        if self._listeners and not self._waits:  # else the fsync round publishes
            self._publish_upto(self._store.visible_end)
        return result, offset

    def write(self, cmd: WriteCommand) -> tuple[WriteResult, int]:
        """Any single write command (create, apply, delete)."""
        with self._lock:
            out = _decide(self.state, cmd, self._clock())
            if isinstance(out, _RESULT_TYPES):
                return out, out.wal_offset
            offset = self._append_one(out)
            result: WriteResult = machine.apply(self.state, out, offset)
        self._after_write()
        return result, offset

    def batch(self, ops: list[BatchOp], mode: str) -> tuple[BatchResult, int]:
        if mode == "atomic":
            return self._atomic_batch(ops)
        items: list[BatchItem] = []
        wait = NO_WAIT
        for op in ops:
            try:
                result, offset = self.write(parse_batch_op(op))
            except RstmdbError as err:
                items.append(BatchItem("error", None, err.to_dict()))
                continue
            items.append(BatchItem("ok", result, None))
            wait = max(wait, offset)
        return BatchResult(items), wait

    def _stage(self, ops: list[BatchOp], now: int) -> list[tuple[WriteCommand, Any]]:
        staged = Staged(self.state)
        decisions: list[tuple[WriteCommand, Any]] = []
        for index, op in enumerate(ops):
            try:
                cmd = parse_batch_op(op)
                out = _decide(staged, cmd, now)
            except RstmdbError as err:
                raise _atomic_failure(index, op, err) from None
            if not isinstance(out, _RESULT_TYPES):
                machine.apply(staged, out, -(index + 1))
            decisions.append((cmd, out))
        return decisions

    def _atomic_batch(self, ops: list[BatchOp]) -> tuple[BatchResult, int]:
        with self._lock:
            now = self._clock()
            decisions = self._stage(ops, now)
            records = [out for _, out in decisions if not isinstance(out, _RESULT_TYPES)]
            offsets = iter(self._append(records, atomic=True) if records else ())
            items: list[BatchItem] = []
            wait = NO_WAIT
            for cmd, out in decisions:
                if isinstance(out, _RESULT_TYPES):
                    result = _decide(self.state, cmd, now)  # replays see the real offsets
                else:
                    result = machine.apply(self.state, out, next(offsets))
                wait = max(wait, result.wal_offset)
                items.append(BatchItem("ok", result, None))
        self._after_write()
        return BatchResult(items), wait

    def flush_all(self) -> FlushAllResult:
        with self._maintenance:
            self._sync()
            return self._flush_locked()

    def _flush_locked(self) -> FlushAllResult:
        with self._lock:
            self._ensure_writable()
            try:
                self._store.reset(Checkpoint(self._clock()))
            except WalIoError as err:
                if self._waits:
                    self._roll_back(err)
                raise
            instances, machines = self.state.clear()
            self._unpublished.clear()
        return FlushAllResult(True, instances, machines)

    # -- reads -----------------------------------------------------------------
    def get_machine(self, name: str, version: int) -> tuple[GetMachineResult, int]:
        definition = self.state.machine(name, version)
        if definition is None:
            raise machine.machine_not_found(name, version)
        result = GetMachineResult(definition.normalized, definition.checksum)
        return result, self._pending_all()

    def list_machines(self) -> tuple[ListMachinesResult, int]:
        with self._lock:
            items = [
                MachineVersions(name, sorted(versions))
                for name, versions in sorted(self.state.machines.items())
            ]
            wait = self._pending_all()
        return ListMachinesResult(items), wait

    def latest_version(self, name: str) -> int | None:
        versions = self.state.versions(name)
        return versions[-1] if versions else None

    def get_instance(self, instance_id: str) -> tuple[GetInstanceResult, int]:
        instance = self.live_instance(instance_id)
        result = GetInstanceResult(
            instance.machine,
            instance.version,
            instance.state,
            instance.ctx,
            instance.last_event_id,
            instance.last_wal_offset,
        )
        return result, instance.last_wal_offset

    def get_history(
        self, instance_id: str, limit: int, before_offset: int | None
    ) -> tuple[HistoryResult, int]:
        """The newest ``limit`` kept entries older than ``before_offset``, oldest first.

        Deleted instances keep their history; an id never created raises
        ``InstanceNotFound``. ``truncated``: older entries exist than those returned.
        """
        with self._lock:
            instance = self.state.instances.get(instance_id)
            if instance is None:
                raise machine.instance_not_found(instance_id)
            kept = self.state.history_of(instance_id)
        dropped = not kept or kept[0][1] != "created"  # the limit cut older entries
        older = kept if before_offset is None else [e for e in kept if e[0] < before_offset]
        page = older[len(older) - limit :] if limit else []
        truncated = dropped or len(page) < len(older)
        result = HistoryResult(instance_id, [history_entry(e) for e in page], truncated)
        return result, instance.last_wal_offset

    def live_instance(self, instance_id: str) -> Instance:
        instance = self.state.instances.get(instance_id)
        if instance is None or instance.deleted:
            raise machine.instance_not_found(instance_id)
        return instance

    def list_instances(self, query: ListInstances) -> tuple[ListInstancesResult, int]:
        with self._lock:
            matches = [
                inst
                for inst in self.state.instances.values()
                if not inst.deleted
                and (query.machine is None or inst.machine == query.machine)
                and (query.state is None or inst.state == query.state)
            ]
            wait = self._pending_all()
        page = matches[query.offset : query.offset + query.limit] if query.limit else []
        summaries = [
            InstanceSummary(
                i.id, i.machine, i.version, i.state, i.created_at, i.updated_at, i.last_wal_offset
            )
            for i in page
        ]
        has_more = query.offset + len(summaries) < len(matches)
        return ListInstancesResult(summaries, len(matches), has_more), wait

    def wal_read(self, from_offset: int, limit: int | None) -> WalReadResult:
        return self._store.read(from_offset, limit)

    def wal_stats(self) -> WalStatsResult:
        return self._store.stats()

    def logged_from(self, from_offset: int, end: int) -> Iterator[Logged]:
        return self._store.logged_from(from_offset, end)

    # -- snapshots and compaction ------------------------------------------------
    def checkpoint_data(self) -> CheckpointData:
        """A consistent copy of the state and the log position it covers."""
        with self._lock:
            return capture_checkpoint(self.state, self._store.head)

    def _sync(self) -> None:
        """Fsync the store from this thread; a failure rolls memory back like a background one."""
        try:
            self._store.sync()
        except WalIoError as err:
            if self._waits:
                with self._lock:
                    self._roll_back(err)
            raise

    def compact(self, force_snapshot: bool) -> CompactResult:
        with self._maintenance:
            rollbacks = self._rollbacks
            data = self.checkpoint_data()
            self._sync()
            if rollbacks != self._rollbacks or self._store.visible_end < data.offset:
                raise WalIoError("compaction aborted: the log was rolled back while it ran")
            return self._store.compact(data, force_snapshot)

    def snapshot_instance(self, instance_id: str) -> SnapshotResult:
        instance = self.live_instance(instance_id)
        self.wait(instance.last_wal_offset)
        snapshot_id = f"snap-{uuid.uuid4()}"
        body = {
            "snapshot_id": snapshot_id,
            "instance_id": instance.id,
            "machine": instance.machine,
            "version": instance.version,
            "state": instance.state,
            "ctx": instance.ctx,
            "wal_offset": instance.last_wal_offset,
            "created_at": self._clock(),
        }
        with self._maintenance:
            _, size, checksum = self._store.write_instance_snapshot(body)
        return SnapshotResult(instance.id, snapshot_id, instance.last_wal_offset, size, checksum)

    def close(self) -> None:
        with self._lock:
            self._store.close()


def _published_offset(item: Published) -> int:
    return item[0]


def _atomic_failure(index: int, op: BatchOp, err: RstmdbError) -> BadRequest:
    return BadRequest(
        f"invalid request: atomic batch failed at op {index} ({op.op or '?'}): "
        f"{err.code.value}: {err.message}",
        {
            "index": index,
            "op": op.op,
            "code": err.code.value,
            "message": err.message,
            "error": err.to_dict(),
        },
    )


# -- checkpoint form -------------------------------------------------------------


def capture_checkpoint(state: State, offset: int) -> CheckpointData:
    machines = [
        {"machine": d.name, "version": d.version, "definition": d.definition}
        for versions in state.machines.values()
        for d in versions.values()
    ]
    instances = [list(instance) for instance in state.instances.values()]
    idempotency = [[*scope, ts, value] for scope, ts, value in state.idempotency.items()]
    history = [[iid, [list(e) for e in entries]] for iid, entries in state.history.items()]
    return CheckpointData(offset, machines, instances, idempotency, history)


def restore_checkpoint(state: State, data: CheckpointData) -> None:
    for item in data.machines:
        state.add_machine(compile_definition(item["machine"], item["version"], item["definition"]))
    for fields in data.instances:
        state.set_instance(Instance(*fields))
    for kind, instance_id, key, ts, value in data.idempotency:
        state.remember((kind, instance_id, key), _restore_value(kind, value), ts)
    for instance_id, entries in data.history or ():
        state.set_history(instance_id, [cast(HistoryEntry, tuple(entry)) for entry in entries])


def _restore_value(kind: str, value: Any) -> Any:
    return tuple(value) if isinstance(value, list) else value
