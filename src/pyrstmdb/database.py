"""The embedded database: ``from pyrstmdb import Database``.

``Database()`` keeps everything in memory; ``Database(path)`` opens (or
creates) a durable store in directory ``path``, ``every_write`` by default.
Method names and arguments mirror the rstmdb client, results are the typed
objects of ``pyrstmdb.results`` and failures raise the ``RstmdbError`` tree,
so code moves between embedded and client/server use by changing one line.

Every method returns only once its effect is visible: under ``every_write``
a write returns after the fsync covering it (concurrent callers share one
fsync), and a read of something with a pending change waits for it.

JSON arguments (``definition``, ``initial_ctx``, ``payload``) are validated
and copied on the way in, so later changes to the caller's objects cannot
reach the stored state. Returned ``ctx`` objects are copies as well.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from math import isfinite
from typing import Any, TypeVar

import orjson

from pyrstmdb.config import CompactionConfig, Config
from pyrstmdb.core import Core
from pyrstmdb.engine.commands import (
    MAX_HISTORY_LIMIT,
    ApplyEvent,
    CreateInstance,
    DeleteInstance,
    ListInstances,
    PutMachine,
    check_id,
    check_str,
    check_uint,
    parse_batch,
)
from pyrstmdb.errors import BadRequest, WalIoError
from pyrstmdb.results import (
    ApplyEventResult,
    BatchResult,
    CompactResult,
    CreateInstanceResult,
    DeleteInstanceResult,
    FlushAllResult,
    GetInstanceResult,
    GetMachineResult,
    HistoryResult,
    ListInstancesResult,
    ListMachinesResult,
    PutMachineResult,
    SnapshotResult,
    WalReadResult,
    WalStatsResult,
)
from pyrstmdb.storage.compaction import AutoCompactor
from pyrstmdb.storage.policy import FsyncPolicy
from pyrstmdb.storage.store import MemoryStore, Store

T = TypeVar("T")
_new_command = tuple.__new__  # builds a command tuple without the keyword-handling __new__

_JSON_OPTIONS = orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_DATACLASS
_UINT32_MAX = 2**32 - 1


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


_FLAT = frozenset((str, int, bool, type(None)))
_FLAT_WITH_FLOAT = _FLAT | {float}
_STR = frozenset((str,))


def _is_flat(obj: dict[str, Any]) -> bool:
    """True when a shallow copy is a full copy: string keys, scalar values, finite floats."""
    kinds = set(map(type, obj.values()))
    if not kinds <= _FLAT_WITH_FLOAT or not _STR.issuperset(map(type, obj)):
        return False
    return float not in kinds or all(isfinite(v) for v in obj.values() if type(v) is float)


def _json_object(value: Any, name: str) -> dict[str, Any] | None:
    """A private deep copy of a JSON object argument (``None`` stays ``None``)."""
    if value is None:
        return None
    if type(value) is dict and _is_flat(value):
        return value.copy()
    if not isinstance(value, dict):
        raise BadRequest(f"invalid request: {name} must be a JSON object", {"field": name})
    try:
        copied: dict[str, Any] = orjson.loads(orjson.dumps(value, option=_JSON_OPTIONS))
    except TypeError as err:
        raise BadRequest(f"invalid request: {name} is not JSON: {err}", {"field": name}) from None
    return copied


def _copy_ctx(ctx: dict[str, Any]) -> dict[str, Any]:
    # Stored contexts have string keys and finite floats already.
    if _FLAT_WITH_FLOAT.issuperset(map(type, ctx.values())):
        return ctx.copy()
    copied: dict[str, Any] = orjson.loads(orjson.dumps(ctx))
    return copied


class Database:
    """A state machine database in this process."""

    def __init__(
        self,
        path: str | os.PathLike[str] | None = None,
        *,
        fsync_policy: FsyncPolicy | str = "every_write",
        wal_segment_size_mb: int = 64,
        max_machine_versions: int = 0,
        idempotency_ttl_secs: int = 86_400,
        idempotency_max_keys: int = 1_000_000,
        history_per_instance: int = 100,
        compaction: CompactionConfig | None = None,
        compaction_check_secs: float = 10.0,
        clock: Callable[[], int] | None = None,
    ) -> None:
        policy = (
            fsync_policy
            if isinstance(fsync_policy, FsyncPolicy)
            else FsyncPolicy.from_yaml(fsync_policy)
        )
        store: Store
        if path is None:
            store = MemoryStore()
        else:
            from pyrstmdb.storage.disk import DiskStore

            store = DiskStore.open(
                os.fspath(path), policy=policy, segment_size=wal_segment_size_mb * 1024 * 1024
            )
        self.path = None if path is None else os.fspath(path)
        self._core = Core(
            store,
            clock=clock or _now_ms,
            max_machine_versions=max_machine_versions,
            idempotency_ttl_ms=idempotency_ttl_secs * 1000,
            idempotency_max_keys=idempotency_max_keys,
            history_per_instance=check_uint(
                "history_per_instance", history_per_instance, 1_000_000
            ),
        )
        self._closed = False
        self._compactor: AutoCompactor | None = None
        if path is not None and compaction is not None and compaction.automatic:
            self._compactor = AutoCompactor(
                compaction,
                self._core.wal_stats,
                lambda: self._core.compact(True),
                check_secs=compaction_check_secs,
            )
            self._compactor.start()

    @classmethod
    def from_config(cls, config: Config) -> Database:
        """The durable database a server runs, as configured (OPERATIONS §2)."""
        storage = config.storage
        return cls(
            storage.data_dir,
            fsync_policy=storage.fsync_policy,
            wal_segment_size_mb=storage.wal_segment_size_mb,
            max_machine_versions=storage.max_machine_versions,
            idempotency_ttl_secs=storage.idempotency_ttl_secs,
            idempotency_max_keys=storage.idempotency_max_keys,
            history_per_instance=storage.history_per_instance,
            compaction=config.compaction,
        )

    # -- plumbing ----------------------------------------------------------------
    @property
    def core(self) -> Core:
        """The shared write path (used by the server)."""
        return self._core

    def _done(self, pair: tuple[T, int]) -> T:
        result, offset = pair
        self._core.wait(offset)
        return result

    def _read(self, fn: Callable[[], tuple[T, int]]) -> T:
        # A read that waited on a change whose fsync failed is answered again
        # from the rolled-back state.
        for _ in range(3):
            try:
                return self._done(fn())
            except WalIoError:
                continue
        return self._done(fn())

    def close(self) -> None:
        """Flush and release the store; the same path can then be opened again."""
        if not self._closed:
            self._closed = True
            if self._compactor is not None:
                self._compactor.stop()
            self._core.close()

    def __enter__(self) -> Database:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- machines ------------------------------------------------------------------
    def put_machine(
        self, machine: str, version: int, definition: dict[str, Any], checksum: str | None = None
    ) -> PutMachineResult:
        copied = _json_object(definition, "definition")
        if copied is None:
            raise BadRequest("invalid request: missing definition", {"field": "definition"})
        cmd = PutMachine(
            check_id("machine", check_str("machine", machine)),
            check_uint("version", version, _UINT32_MAX),
            copied,
            check_str("checksum", checksum, optional=True),
        )
        return self._done(self._core.put_machine(cmd))

    def get_machine(self, machine: str, version: int | None = None) -> GetMachineResult:
        """A machine version; the latest one when ``version`` is omitted."""
        name = check_str("machine", machine)
        if version is None:
            latest = self._core.latest_version(name)
            version = 0 if latest is None else latest
        number = check_uint("version", version, _UINT32_MAX)
        return self._read(lambda: self._core.get_machine(name, number))

    def list_machines(self) -> ListMachinesResult:
        return self._read(self._core.list_machines)

    # -- instances -----------------------------------------------------------------
    def create_instance(
        self,
        machine: str,
        version: int,
        instance_id: str | None = None,
        initial_ctx: dict[str, Any] | None = None,
        idempotency_key: str | None = None,
    ) -> CreateInstanceResult:
        if instance_id is not None:
            check_id("instance_id", check_str("instance_id", instance_id))
        cmd = CreateInstance(
            check_str("machine", machine),
            check_uint("version", version, _UINT32_MAX),
            instance_id,
            _json_object(initial_ctx, "initial_ctx"),
            check_str("idempotency_key", idempotency_key, optional=True),
        )
        result = self._done(self._core.write(cmd))
        assert isinstance(result, CreateInstanceResult)
        return result

    def get_instance(self, instance_id: str) -> GetInstanceResult:
        name = check_str("instance_id", instance_id)
        result = self._read(lambda: self._core.get_instance(name))
        result.ctx = _copy_ctx(result.ctx)
        return result

    def get_history(
        self, instance_id: str, limit: int = 100, before_offset: int | None = None
    ) -> HistoryResult:
        """The instance's newest ``limit`` history entries (before ``before_offset``), oldest
        first; a deleted instance's history stays readable. ``limit`` is at most 1000."""
        name = check_str("instance_id", instance_id)
        count = check_uint("limit", limit, MAX_HISTORY_LIMIT)
        before = check_uint("before_offset", before_offset, 2**64 - 1, optional=True)
        return self._read(lambda: self._core.get_history(name, count, before))

    def list_instances(
        self,
        machine: str | None = None,
        state: str | None = None,
        limit: int | None = None,
        offset: int | None = None,
    ) -> ListInstancesResult:
        query = ListInstances(
            check_str("machine", machine, optional=True),
            check_str("state", state, optional=True),
            100 if limit is None else check_uint("limit", limit, _UINT32_MAX),
            0 if offset is None else check_uint("offset", offset, _UINT32_MAX),
        )
        return self._read(lambda: self._core.list_instances(query))

    def delete_instance(
        self, instance_id: str, idempotency_key: str | None = None
    ) -> DeleteInstanceResult:
        cmd = DeleteInstance(
            check_str("instance_id", instance_id),
            check_str("idempotency_key", idempotency_key, optional=True),
        )
        result = self._done(self._core.write(cmd))
        assert isinstance(result, DeleteInstanceResult)
        return result

    def apply_event(
        self,
        instance_id: str,
        event: str,
        payload: dict[str, Any] | None = None,
        expected_state: str | None = None,
        expected_wal_offset: int | None = None,
        event_id: str | None = None,
        idempotency_key: str | None = None,
    ) -> ApplyEventResult:
        if not (
            type(instance_id) is str
            and type(event) is str
            and expected_state is None
            and expected_wal_offset is None
            and event_id is None
            and idempotency_key is None
        ):
            check_str("instance_id", instance_id)
            check_str("event", event)
            check_str("expected_state", expected_state, optional=True)
            check_uint("expected_wal_offset", expected_wal_offset, 2**64 - 1, optional=True)
            check_str("event_id", event_id, optional=True)
            check_str("idempotency_key", idempotency_key, optional=True)
        cmd = _new_command(
            ApplyEvent,
            (
                instance_id,
                event,
                _json_object(payload, "payload"),
                expected_state,
                expected_wal_offset,
                event_id,
                idempotency_key,
            ),
        )
        result = self._done(self._core.apply_event(cmd))
        result.ctx = _copy_ctx(result.ctx)
        return result

    def batch(self, ops: list[dict[str, Any]], mode: str = "atomic") -> BatchResult:
        """Run up to 100 CREATE_INSTANCE / APPLY_EVENT / DELETE_INSTANCE ops.

        ``ops`` are protocol-shaped: ``[{"op": "APPLY_EVENT", "params": {...}}, ...]``.
        ``atomic``: all or nothing; a failure raises ``BadRequest`` whose
        ``details`` hold the failing ``index`` and its inner ``code``/``message``.
        ``best_effort``: every op runs; each item carries its result or error.
        """
        params = {"ops": _json_copy_list(ops), "mode": check_str("mode", mode)}
        parsed, batch_mode = parse_batch(params)
        return self._done(self._core.batch(parsed, batch_mode))

    # -- storage -------------------------------------------------------------------
    def snapshot_instance(self, instance_id: str) -> SnapshotResult:
        return self._core.snapshot_instance(check_str("instance_id", instance_id))

    def wal_read(self, from_offset: int = 0, limit: int | None = None) -> WalReadResult:
        return self._core.wal_read(
            check_uint("from_offset", from_offset, 2**64 - 1),
            check_uint("limit", limit, 2**64 - 1, optional=True),
        )

    def wal_stats(self) -> WalStatsResult:
        return self._core.wal_stats()

    def compact(self, force_snapshot: bool = False) -> CompactResult:
        return self._core.compact(bool(force_snapshot))

    def flush_all(self) -> FlushAllResult:
        """Remove every machine, instance, idempotency key and snapshot, durably."""
        return self._core.flush_all()


def _json_copy_list(ops: Any) -> Any:
    if not isinstance(ops, list):
        raise BadRequest("invalid request: ops must be an array", {"field": "ops"})
    try:
        return orjson.loads(orjson.dumps(ops, option=_JSON_OPTIONS))
    except TypeError as err:
        raise BadRequest(f"invalid request: ops are not JSON: {err}", {"field": "ops"}) from None
