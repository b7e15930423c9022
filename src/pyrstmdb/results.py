"""Typed results shared by the embedded ``Database`` and the network clients.

Each class has attribute access, ``to_dict()`` returning exactly the protocol
result object of its operation (PROTOCOL §7; optional keys absent when empty)
and ``from_dict()`` building it back from a protocol result. They are plain
slotted dataclasses: fresh objects owned by the caller.

Pure: no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

JsonObject = dict[str, Any]


def _opt_str(obj: JsonObject, key: str) -> str | None:
    value = obj.get(key)
    return value if isinstance(value, str) else None


@dataclass(slots=True)
class PutMachineResult:
    machine: str
    version: int
    stored_checksum: str
    created: bool

    def to_dict(self) -> JsonObject:
        return {
            "machine": self.machine,
            "version": self.version,
            "stored_checksum": self.stored_checksum,
            "created": self.created,
        }

    @classmethod
    def from_dict(cls, obj: JsonObject) -> PutMachineResult:
        return cls(obj["machine"], obj["version"], obj["stored_checksum"], obj["created"])


@dataclass(slots=True)
class GetMachineResult:
    definition: JsonObject
    checksum: str

    def to_dict(self) -> JsonObject:
        return {"definition": self.definition, "checksum": self.checksum}

    @classmethod
    def from_dict(cls, obj: JsonObject) -> GetMachineResult:
        return cls(obj["definition"], obj["checksum"])


@dataclass(slots=True)
class MachineVersions:
    machine: str
    versions: list[int]

    def to_dict(self) -> JsonObject:
        return {"machine": self.machine, "versions": list(self.versions)}


@dataclass(slots=True)
class ListMachinesResult:
    items: list[MachineVersions]

    def to_dict(self) -> JsonObject:
        return {"items": [item.to_dict() for item in self.items]}

    @classmethod
    def from_dict(cls, obj: JsonObject) -> ListMachinesResult:
        return cls([MachineVersions(i["machine"], list(i["versions"])) for i in obj["items"]])


@dataclass(slots=True)
class CreateInstanceResult:
    instance_id: str
    state: str
    wal_offset: int

    def to_dict(self) -> JsonObject:
        return {"instance_id": self.instance_id, "state": self.state, "wal_offset": self.wal_offset}

    @classmethod
    def from_dict(cls, obj: JsonObject) -> CreateInstanceResult:
        return cls(obj["instance_id"], obj["state"], obj["wal_offset"])


@dataclass(slots=True)
class GetInstanceResult:
    machine: str
    version: int
    state: str
    ctx: JsonObject
    last_event_id: str | None
    last_wal_offset: int

    def to_dict(self) -> JsonObject:
        out: JsonObject = {
            "machine": self.machine,
            "version": self.version,
            "state": self.state,
            "ctx": self.ctx,
        }
        if self.last_event_id is not None:
            out["last_event_id"] = self.last_event_id
        out["last_wal_offset"] = self.last_wal_offset
        return out

    @classmethod
    def from_dict(cls, obj: JsonObject) -> GetInstanceResult:
        return cls(
            obj["machine"],
            obj["version"],
            obj["state"],
            obj["ctx"],
            _opt_str(obj, "last_event_id"),
            obj["last_wal_offset"],
        )


@dataclass(slots=True)
class InstanceSummary:
    id: str
    machine: str
    version: int
    state: str
    created_at: int
    updated_at: int
    last_wal_offset: int

    def to_dict(self) -> JsonObject:
        return {
            "id": self.id,
            "machine": self.machine,
            "version": self.version,
            "state": self.state,
            "created_at": self.created_at,
            "updated_at": self.updated_at,
            "last_wal_offset": self.last_wal_offset,
        }

    @classmethod
    def from_dict(cls, obj: JsonObject) -> InstanceSummary:
        return cls(
            obj["id"],
            obj["machine"],
            obj["version"],
            obj["state"],
            obj["created_at"],
            obj["updated_at"],
            obj["last_wal_offset"],
        )


@dataclass(slots=True)
class ListInstancesResult:
    instances: list[InstanceSummary]
    total: int
    has_more: bool

    def to_dict(self) -> JsonObject:
        return {
            "instances": [item.to_dict() for item in self.instances],
            "total": self.total,
            "has_more": self.has_more,
        }

    @classmethod
    def from_dict(cls, obj: JsonObject) -> ListInstancesResult:
        items = [InstanceSummary.from_dict(item) for item in obj["instances"]]
        return cls(items, obj["total"], obj["has_more"])


@dataclass(slots=True)
class DeleteInstanceResult:
    instance_id: str
    deleted: bool
    wal_offset: int

    def to_dict(self) -> JsonObject:
        return {
            "instance_id": self.instance_id,
            "deleted": self.deleted,
            "wal_offset": self.wal_offset,
        }

    @classmethod
    def from_dict(cls, obj: JsonObject) -> DeleteInstanceResult:
        return cls(obj["instance_id"], obj["deleted"], obj["wal_offset"])


@dataclass(slots=True)
class ApplyEventResult:
    from_state: str
    to_state: str
    ctx: JsonObject
    wal_offset: int
    applied: bool
    event_id: str | None = None

    def to_dict(self) -> JsonObject:
        out: JsonObject = {
            "from_state": self.from_state,
            "to_state": self.to_state,
            "ctx": self.ctx,
            "wal_offset": self.wal_offset,
            "applied": self.applied,
        }
        if self.event_id is not None:
            out["event_id"] = self.event_id
        return out

    @classmethod
    def from_dict(cls, obj: JsonObject) -> ApplyEventResult:
        ctx = obj.get("ctx")
        return cls(
            obj["from_state"],
            obj["to_state"],
            ctx if isinstance(ctx, dict) else {},
            obj["wal_offset"],
            obj["applied"],
            _opt_str(obj, "event_id"),
        )


WriteResult = CreateInstanceResult | ApplyEventResult | DeleteInstanceResult


@dataclass(slots=True)
class BatchItem:
    """One op's outcome: ``status`` is ``ok`` (with ``result``) or ``error`` (with ``error``)."""

    status: str
    result: WriteResult | None
    error: JsonObject | None

    def to_dict(self) -> JsonObject:
        return {
            "status": self.status,
            "result": None if self.result is None else self.result.to_dict(),
            "error": self.error,
        }


@dataclass(slots=True)
class BatchResult:
    results: list[BatchItem]

    def to_dict(self) -> JsonObject:
        return {"results": [item.to_dict() for item in self.results]}


@dataclass(slots=True)
class SnapshotResult:
    instance_id: str
    snapshot_id: str
    wal_offset: int
    size_bytes: int
    checksum: str

    def to_dict(self) -> JsonObject:
        return {
            "instance_id": self.instance_id,
            "snapshot_id": self.snapshot_id,
            "wal_offset": self.wal_offset,
            "size_bytes": self.size_bytes,
            "checksum": self.checksum,
        }

    @classmethod
    def from_dict(cls, obj: JsonObject) -> SnapshotResult:
        return cls(
            obj["instance_id"],
            obj["snapshot_id"],
            obj["wal_offset"],
            obj["size_bytes"],
            obj["checksum"],
        )


@dataclass(slots=True)
class WalRecord:
    sequence: int
    offset: int
    entry: JsonObject

    def to_dict(self) -> JsonObject:
        return {"sequence": self.sequence, "offset": self.offset, "entry": self.entry}


@dataclass(slots=True)
class WalReadResult:
    records: list[WalRecord]
    next_offset: int | None

    def to_dict(self) -> JsonObject:
        return {"records": [r.to_dict() for r in self.records], "next_offset": self.next_offset}

    @classmethod
    def from_dict(cls, obj: JsonObject) -> WalReadResult:
        records = [WalRecord(r["sequence"], r["offset"], r["entry"]) for r in obj["records"]]
        return cls(records, obj.get("next_offset"))


@dataclass(slots=True)
class IoStats:
    bytes_written: int = 0
    bytes_read: int = 0
    writes: int = 0
    reads: int = 0
    fsyncs: int = 0

    def to_dict(self) -> JsonObject:
        return {
            "bytes_written": self.bytes_written,
            "bytes_read": self.bytes_read,
            "writes": self.writes,
            "reads": self.reads,
            "fsyncs": self.fsyncs,
        }


@dataclass(slots=True)
class WalStatsResult:
    entry_count: int
    segment_count: int
    total_size_bytes: int
    latest_offset: int
    io_stats: IoStats = field(default_factory=IoStats)

    def to_dict(self) -> JsonObject:
        return {
            "entry_count": self.entry_count,
            "segment_count": self.segment_count,
            "total_size_bytes": self.total_size_bytes,
            "latest_offset": self.latest_offset,
            "io_stats": self.io_stats.to_dict(),
        }

    @classmethod
    def from_dict(cls, obj: JsonObject) -> WalStatsResult:
        io = obj.get("io_stats") or {}
        return cls(
            obj["entry_count"],
            obj["segment_count"],
            obj["total_size_bytes"],
            obj.get("latest_offset") or 0,
            IoStats(
                io.get("bytes_written", 0),
                io.get("bytes_read", 0),
                io.get("writes", 0),
                io.get("reads", 0),
                io.get("fsyncs", 0),
            ),
        )


@dataclass(slots=True)
class CompactResult:
    snapshots_created: int
    segments_deleted: int
    bytes_reclaimed: int
    total_snapshots: int
    wal_segments: int

    def to_dict(self) -> JsonObject:
        return {
            "snapshots_created": self.snapshots_created,
            "segments_deleted": self.segments_deleted,
            "bytes_reclaimed": self.bytes_reclaimed,
            "total_snapshots": self.total_snapshots,
            "wal_segments": self.wal_segments,
        }

    @classmethod
    def from_dict(cls, obj: JsonObject) -> CompactResult:
        return cls(
            obj["snapshots_created"],
            obj["segments_deleted"],
            obj["bytes_reclaimed"],
            obj["total_snapshots"],
            obj["wal_segments"],
        )


_HISTORY_FIELDS = (
    "wal_offset",
    "kind",
    "event",
    "from_state",
    "to_state",
    "payload",
    "event_id",
    "ts",
)


def history_entry(fields: tuple[Any, ...]) -> JsonObject:
    """One kept history tuple as its GET_HISTORY entry (fields that do not apply omitted)."""
    return {
        name: value
        for name, value in zip(_HISTORY_FIELDS, fields, strict=True)
        if value is not None
    }


@dataclass(slots=True)
class HistoryResult:
    """GET_HISTORY: entries oldest first; ``truncated`` when older ones existed."""

    instance_id: str
    entries: list[JsonObject]
    truncated: bool

    def to_dict(self) -> JsonObject:
        return {
            "instance_id": self.instance_id,
            "entries": self.entries,
            "truncated": self.truncated,
        }

    @classmethod
    def from_dict(cls, obj: JsonObject) -> HistoryResult:
        return cls(obj["instance_id"], list(obj["entries"]), obj["truncated"])


@dataclass(slots=True)
class FlushAllResult:
    flushed: bool
    instances_removed: int
    machines_removed: int

    def to_dict(self) -> JsonObject:
        return {
            "flushed": self.flushed,
            "instances_removed": self.instances_removed,
            "machines_removed": self.machines_removed,
        }

    @classmethod
    def from_dict(cls, obj: JsonObject) -> FlushAllResult:
        return cls(obj["flushed"], obj["instances_removed"], obj["machines_removed"])
