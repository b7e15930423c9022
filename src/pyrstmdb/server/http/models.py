"""Typed request and response bodies of the HTTP API (the OpenAPI schemas come from here).

Request bodies are strict: no type coercion (``"version": "1"`` is refused)
and no unknown fields. Response models describe the RCP result objects of
PROTOCOL.md field for field; the routes send those objects as the RCP
handlers build them, and these models document them. Pure; raises nothing.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

JsonObject = dict[str, Any]
UINT32_MAX = 4_294_967_295
UINT64_MAX = 18_446_744_073_709_551_615


class StrictBody(BaseModel):
    """A request body: exact JSON types, unknown fields refused."""

    model_config = ConfigDict(strict=True, extra="forbid")


class Result(BaseModel):
    """A response body (servers may add fields later; clients ignore unknown ones)."""

    model_config = ConfigDict(extra="allow")


# -- request bodies ---------------------------------------------------------------------


class TransitionBody(StrictBody):
    from_: str | list[str] = Field(alias="from")
    event: str
    to: str
    guard: str | None = None


class MachineDefinitionBody(StrictBody):
    """A machine definition (SEMANTICS §1.1)."""

    states: list[str]
    initial: str
    transitions: list[TransitionBody]
    meta: JsonObject | None = None


class CreateInstanceBody(StrictBody):
    machine: str
    version: int = Field(ge=0, le=UINT32_MAX)
    instance_id: str | None = None
    initial_ctx: JsonObject | None = None


class ApplyEventBody(StrictBody):
    event: str
    payload: JsonObject | None = None
    expected_state: str | None = None
    expected_wal_offset: int | None = Field(default=None, ge=0, le=UINT64_MAX)
    event_id: str | None = None


class BatchBody(StrictBody):
    """Up to 100 ops ``{"op": "CREATE_INSTANCE" | "APPLY_EVENT" | "DELETE_INSTANCE",
    "params": {...}}``; as on RCP, a malformed op fails on its own (``best_effort``) or fails
    the batch naming its index (``atomic``)."""

    mode: Literal["atomic", "best_effort"] = "best_effort"
    ops: list[Any]


class CompactBody(StrictBody):
    force_snapshot: bool = False


# -- results ----------------------------------------------------------------------------


class ErrorObject(BaseModel):
    code: str
    message: str
    retryable: bool
    details: JsonObject | None = None


class ErrorBody(BaseModel):
    error: ErrorObject


class Health(Result):
    status: Literal["ok"]


class MachineVersions(Result):
    machine: str
    versions: list[int]


class ListMachines(Result):
    items: list[MachineVersions]


class PutMachine(Result):
    machine: str
    version: int
    stored_checksum: str
    created: bool


class GetMachine(Result):
    definition: JsonObject
    checksum: str


class CreateInstance(Result):
    instance_id: str
    state: str
    wal_offset: int


class GetInstance(Result):
    machine: str
    version: int
    state: str
    ctx: JsonObject
    last_event_id: str | None = None
    last_wal_offset: int


class InstanceSummary(Result):
    id: str
    machine: str
    version: int
    state: str
    created_at: int
    updated_at: int
    last_wal_offset: int


class ListInstances(Result):
    instances: list[InstanceSummary]
    total: int
    has_more: bool


class DeleteInstance(Result):
    instance_id: str
    deleted: bool
    wal_offset: int


class ApplyEvent(Result):
    from_state: str
    to_state: str
    ctx: JsonObject
    wal_offset: int
    applied: bool
    event_id: str | None = None


class HistoryEntry(Result):
    wal_offset: int
    kind: Literal["created", "event", "deleted"]
    event: str | None = None
    from_state: str | None = None
    to_state: str | None = None
    payload: JsonObject | None = None
    event_id: str | None = None
    ts: int


class History(Result):
    instance_id: str
    entries: list[HistoryEntry]
    truncated: bool


class Snapshot(Result):
    instance_id: str
    snapshot_id: str
    wal_offset: int
    size_bytes: int
    checksum: str


class BatchItem(Result):
    status: Literal["ok", "error"]
    result: JsonObject | None
    error: JsonObject | None


class Batch(Result):
    results: list[BatchItem]


class WalRecord(Result):
    sequence: int
    offset: int
    entry: JsonObject


class WalRead(Result):
    records: list[WalRecord]
    next_offset: int | None = None


class IoStats(Result):
    bytes_written: int
    bytes_read: int
    writes: int
    reads: int
    fsyncs: int


class WalStats(Result):
    entry_count: int
    segment_count: int
    total_size_bytes: int
    latest_offset: int
    io_stats: IoStats


class Compact(Result):
    snapshots_created: int
    segments_deleted: int
    bytes_reclaimed: int
    total_snapshots: int
    wal_segments: int
