"""Every client operation, written once for the blocking and the asyncio client.

Each method of :class:`Commands` is a plan (see :mod:`pyrstmdb.client.plans`)
that builds its request params and parses the result into the typed object of
``pyrstmdb.results`` — the same objects the embedded ``Database`` returns,
with the same method names and arguments. ``Client``, ``AsyncClient`` and
their pipelines all inherit these methods; only the runner differs.

Errors: the runner raises the ``RstmdbError`` of an error response,
``ClientConnectionError`` for transport failures and ``ProtocolViolation``
when a result cannot be parsed.
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from crc32c import crc32c

from pyrstmdb.client.calls import Call, NoticeHandler, Plan, ProtocolViolation, WatchSpec
from pyrstmdb.client.plans import command, subscription
from pyrstmdb.protocol import Operation
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
    ListInstancesResult,
    ListMachinesResult,
    PutMachineResult,
    SnapshotResult,
    WalReadResult,
    WalStatsResult,
    WriteResult,
)

JsonObject = dict[str, Any]

__all__ = [
    "BackupChunk",
    "BackupFile",
    "BackupManifest",
    "Commands",
    "ProtocolViolation",
    "ServerInfo",
    "UnwatchResult",
    "latest_version",
]


@dataclass(slots=True)
class ServerInfo:
    """The INFO result; ``to_dict()`` returns it exactly as received."""

    server_name: str
    server_version: str
    protocol_version: int
    features: list[str]
    max_frame_bytes: int | None = None
    max_batch_ops: int | None = None
    raw: JsonObject = field(default_factory=dict)

    @classmethod
    def from_dict(cls, obj: JsonObject) -> ServerInfo:
        return cls(
            str(obj["server_name"]),
            str(obj["server_version"]),
            int(obj["protocol_version"]),
            [str(f) for f in obj.get("features") or []],
            obj.get("max_frame_bytes"),
            obj.get("max_batch_ops"),
            dict(obj),
        )

    def to_dict(self) -> JsonObject:
        return dict(self.raw)


@dataclass(slots=True)
class UnwatchResult:
    subscription_id: str
    removed: bool

    def to_dict(self) -> JsonObject:
        return {"subscription_id": self.subscription_id, "removed": self.removed}

    @classmethod
    def from_dict(cls, obj: JsonObject) -> UnwatchResult:
        return cls(str(obj["subscription_id"]), bool(obj["removed"]))


@dataclass(frozen=True, slots=True)
class BackupFile:
    """One file of a backup: its name inside the data directory and its pinned size."""

    name: str
    size: int


@dataclass(slots=True)
class BackupManifest:
    """The BACKUP_BEGIN result: what the backup holds."""

    backup_id: str
    created_at: int
    end_offset: int
    checkpoint_offset: int | None
    files: list[BackupFile]
    chunk_bytes: int
    raw: JsonObject = field(default_factory=dict)

    @property
    def total_bytes(self) -> int:
        return sum(f.size for f in self.files)

    @classmethod
    def from_dict(cls, obj: JsonObject) -> BackupManifest:
        checkpoint = obj.get("checkpoint_offset")
        return cls(
            str(obj["backup_id"]),
            int(obj["created_at"]),
            int(obj["end_offset"]),
            None if checkpoint is None else int(checkpoint),
            [BackupFile(str(f["name"]), int(f["size"])) for f in obj["files"]],
            int(obj["chunk_bytes"]),
            dict(obj),
        )

    def to_dict(self) -> JsonObject:
        return dict(self.raw)


@dataclass(frozen=True, slots=True)
class BackupChunk:
    """Bytes of one backup file from ``offset`` (their CRC-32C checked on arrival)."""

    file: str
    offset: int
    data: bytes

    @classmethod
    def from_dict(cls, obj: JsonObject) -> BackupChunk:
        data = base64.b64decode(str(obj["data"]), validate=True)
        if len(data) != int(obj["length"]) or crc32c(data) != int(obj["crc32c"]):
            raise ValueError(f"backup chunk of {obj['file']} at {obj['offset']} is damaged")
        return cls(str(obj["file"]), int(obj["offset"]), data)


# -- helpers -------------------------------------------------------------------------------


def _params(**values: Any) -> JsonObject:
    """Keyword arguments that are not ``None``."""
    return {key: value for key, value in values.items() if value is not None}


def latest_version(listing: ListMachinesResult, machine: str) -> int | None:
    for item in listing.items:
        if item.machine == machine and item.versions:
            return max(item.versions)
    return None


_BATCH_RESULTS: dict[str, Callable[[JsonObject], WriteResult]] = {
    Operation.CREATE_INSTANCE.value: CreateInstanceResult.from_dict,
    Operation.APPLY_EVENT.value: ApplyEventResult.from_dict,
    Operation.DELETE_INSTANCE.value: DeleteInstanceResult.from_dict,
}


def parse_batch(ops: list[JsonObject], obj: JsonObject) -> BatchResult:
    items: list[BatchItem] = []
    for op, item in zip(ops, obj["results"], strict=False):
        raw = item.get("result")
        parse = _BATCH_RESULTS.get(str(op.get("op")))
        result = parse(raw) if isinstance(raw, dict) and parse is not None else None
        items.append(BatchItem(str(item.get("status")), result, item.get("error")))
    return BatchResult(items)


# -- the operations --------------------------------------------------------------------------


class Commands:
    """The operations shared by ``Client``, ``AsyncClient`` and their pipelines.

    Names, arguments and results match ``pyrstmdb.Database``.
    """

    @command
    def ping(self) -> Plan[bool]:
        """True when the server answers."""
        result = yield Call(Operation.PING, {}, safe=True)
        return bool(result.get("pong"))

    @command
    def info(self) -> Plan[ServerInfo]:
        """Server name, version, protocol version, features and limits."""
        return ServerInfo.from_dict((yield Call(Operation.INFO, {}, safe=True)))

    @command
    def put_machine(
        self, machine: str, version: int, definition: JsonObject, checksum: str | None = None
    ) -> Plan[PutMachineResult]:
        """Register a machine definition (re-putting an equal one is harmless)."""
        params = _params(machine=machine, version=version, definition=definition)
        params.update(_params(checksum=checksum))
        result = yield Call(Operation.PUT_MACHINE, params, safe=True)
        return PutMachineResult.from_dict(result)

    @command
    def get_machine(self, machine: str, version: int | None = None) -> Plan[GetMachineResult]:
        """A machine version; the latest one when ``version`` is omitted."""
        if version is None:
            listing = ListMachinesResult.from_dict(
                (yield Call(Operation.LIST_MACHINES, {}, safe=True))
            )
            version = latest_version(listing, machine) or 0
        params = {"machine": machine, "version": version}
        return GetMachineResult.from_dict((yield Call(Operation.GET_MACHINE, params, safe=True)))

    @command
    def list_machines(self) -> Plan[ListMachinesResult]:
        result = yield Call(Operation.LIST_MACHINES, {}, safe=True)
        return ListMachinesResult.from_dict(result)

    @command
    def create_instance(
        self,
        machine: str,
        version: int,
        instance_id: str | None = None,
        initial_ctx: JsonObject | None = None,
        idempotency_key: str | None = None,
    ) -> Plan[CreateInstanceResult]:
        params = _params(
            machine=machine,
            version=version,
            instance_id=instance_id,
            initial_ctx=initial_ctx,
            idempotency_key=idempotency_key,
        )
        call = Call(Operation.CREATE_INSTANCE, params, safe=idempotency_key is not None)
        return CreateInstanceResult.from_dict((yield call))

    @command
    def get_instance(self, instance_id: str) -> Plan[GetInstanceResult]:
        params = {"instance_id": instance_id}
        return GetInstanceResult.from_dict((yield Call(Operation.GET_INSTANCE, params, True)))

    @command
    def get_history(
        self, instance_id: str, limit: int = 100, before_offset: int | None = None
    ) -> Plan[HistoryResult]:
        """The instance's newest history entries (at most ``limit``, default 100), oldest first."""
        params = _params(instance_id=instance_id, limit=limit, before_offset=before_offset)
        return HistoryResult.from_dict((yield Call(Operation.GET_HISTORY, params, True)))

    @command
    def list_instances(
        self,
        machine: str | None = None,
        state: str | None = None,
        limit: int | None = None,
        offset: int | None = None,
    ) -> Plan[ListInstancesResult]:
        params = _params(machine=machine, state=state, limit=limit, offset=offset)
        result = yield Call(Operation.LIST_INSTANCES, params, safe=True)
        return ListInstancesResult.from_dict(result)

    @command
    def delete_instance(
        self, instance_id: str, idempotency_key: str | None = None
    ) -> Plan[DeleteInstanceResult]:
        params = _params(instance_id=instance_id, idempotency_key=idempotency_key)
        call = Call(Operation.DELETE_INSTANCE, params, safe=idempotency_key is not None)
        return DeleteInstanceResult.from_dict((yield call))

    @command
    def apply_event(
        self,
        instance_id: str,
        event: str,
        payload: JsonObject | None = None,
        expected_state: str | None = None,
        expected_wal_offset: int | None = None,
        event_id: str | None = None,
        idempotency_key: str | None = None,
    ) -> Plan[ApplyEventResult]:
        params = _params(
            instance_id=instance_id,
            event=event,
            payload=payload,
            expected_state=expected_state,
            expected_wal_offset=expected_wal_offset,
            event_id=event_id,
            idempotency_key=idempotency_key,
        )
        call = Call(Operation.APPLY_EVENT, params, safe=idempotency_key is not None)
        return ApplyEventResult.from_dict((yield call))

    @command
    def batch(self, ops: list[JsonObject], mode: str = "atomic") -> Plan[BatchResult]:
        """Up to 100 protocol-shaped ops; ``atomic`` (default) or ``best_effort``."""
        result = yield Call(Operation.BATCH, {"ops": ops, "mode": mode})
        return parse_batch(ops, result)

    @command
    def snapshot_instance(self, instance_id: str) -> Plan[SnapshotResult]:
        params = {"instance_id": instance_id}
        return SnapshotResult.from_dict((yield Call(Operation.SNAPSHOT_INSTANCE, params, True)))

    @command
    def wal_read(self, from_offset: int = 0, limit: int | None = None) -> Plan[WalReadResult]:
        params = _params(from_offset=from_offset, limit=limit)
        return WalReadResult.from_dict((yield Call(Operation.WAL_READ, params, safe=True)))

    @command
    def wal_stats(self) -> Plan[WalStatsResult]:
        return WalStatsResult.from_dict((yield Call(Operation.WAL_STATS, {}, safe=True)))

    @command
    def compact(self, force_snapshot: bool = False) -> Plan[CompactResult]:
        params = {"force_snapshot": force_snapshot}
        return CompactResult.from_dict((yield Call(Operation.COMPACT, params, safe=True)))

    @command
    def flush_all(self) -> Plan[FlushAllResult]:
        """Remove everything (the server must allow it: ``storage.allow_flush_all``)."""
        return FlushAllResult.from_dict((yield Call(Operation.FLUSH_ALL, {})))

    @command
    def backup_begin(self) -> Plan[BackupManifest]:
        """Start a backup: pins the newest checkpoint and the log up to its durable end
        and pauses compaction until :meth:`backup_end` or until this connection closes."""
        return BackupManifest.from_dict((yield Call(Operation.BACKUP_BEGIN, {})))

    @command
    def backup_read(
        self, backup_id: str, file: str, offset: int, length: int | None = None
    ) -> Plan[BackupChunk]:
        """Bytes of one backup file from ``offset`` (at most the manifest's ``chunk_bytes``;
        fewer only at the end of the file)."""
        params = _params(backup_id=backup_id, file=file, offset=offset, length=length)
        return BackupChunk.from_dict((yield Call(Operation.BACKUP_READ, params)))

    @command
    def backup_end(self, backup_id: str) -> Plan[bool]:
        """End a backup (compaction resumes); False if this connection did not hold it."""
        result = yield Call(Operation.BACKUP_END, {"backup_id": backup_id})
        return bool(result["ended"])

    @command
    def unwatch(self, subscription_id: str) -> Plan[UnwatchResult]:
        """Cancel a subscription of this connection by id (``removed`` False if unknown)."""
        params = {"subscription_id": subscription_id}
        return UnwatchResult.from_dict((yield Call(Operation.UNWATCH, params)))

    @subscription
    def watch_instance(
        self,
        instance_id: str,
        include_ctx: bool = True,
        from_offset: int | None = None,
        on_notice: NoticeHandler | None = None,
    ) -> WatchSpec:
        """Events of one instance; with ``from_offset``, its history from there first."""
        params = _params(instance_id=instance_id, include_ctx=include_ctx, from_offset=from_offset)
        return WatchSpec(Operation.WATCH_INSTANCE, params, on_notice)

    @subscription
    def watch_all(
        self,
        machines: list[str] | None = None,
        from_states: list[str] | None = None,
        to_states: list[str] | None = None,
        events: list[str] | None = None,
        include_ctx: bool = True,
        from_offset: int | None = None,
        on_notice: NoticeHandler | None = None,
    ) -> WatchSpec:
        """Every applied event passing the filters (empty or ``None`` = any)."""
        params = _params(
            machines=machines or None,
            from_states=from_states or None,
            to_states=to_states or None,
            events=events or None,
            include_ctx=include_ctx,
            from_offset=from_offset,
        )
        return WatchSpec(Operation.WATCH_ALL, params, on_notice)
