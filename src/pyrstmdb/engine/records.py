"""The logged facts: what the engine decides and the WAL stores.

Each record is an immutable named tuple (cheap to build on the hot path). Its
``entry`` form is the JSON object of STORAGE §3.3 with keys in the documented
order, plus ``ts`` (milliseconds since the epoch) and, for a create without a
client-given id, ``auto_id: true`` (needed to rebuild idempotency scopes).
Readers ignore unknown keys, so these additions stay readable by rstmdb.

=================  ====  ==========================================================
tag                code  entry keys
=================  ====  ==========================================================
put_machine        1     machine, version, definition_hash, definition, ts
create_instance    2     instance_id, machine, version, initial_state, initial_ctx,
                         idempotency_key?, auto_id?, ts
apply_event        3     instance_id, event, from_state, to_state, payload, ctx,
                         event_id?, idempotency_key?, ts
delete_instance    4     instance_id, idempotency_key?, ts
checkpoint         6     timestamp
=================  ====  ==========================================================

Pure: no I/O. ``from_entry`` raises ``ValueError`` for an entry it cannot read.
"""

from __future__ import annotations

from typing import Any, NamedTuple

PUT_MACHINE = 1
CREATE_INSTANCE = 2
APPLY_EVENT = 3
DELETE_INSTANCE = 4
SNAPSHOT = 5
CHECKPOINT = 6

TAGS = {
    PUT_MACHINE: "put_machine",
    CREATE_INSTANCE: "create_instance",
    APPLY_EVENT: "apply_event",
    DELETE_INSTANCE: "delete_instance",
    SNAPSHOT: "snapshot",
    CHECKPOINT: "checkpoint",
}
CODES = {tag: code for code, tag in TAGS.items()}


class MachinePut(NamedTuple):
    machine: str
    version: int
    definition_hash: str
    definition: dict[str, Any]
    ts: int

    def to_entry(self) -> dict[str, Any]:
        return {
            "type": "put_machine",
            "machine": self.machine,
            "version": self.version,
            "definition_hash": self.definition_hash,
            "definition": self.definition,
            "ts": self.ts,
        }


class InstanceCreated(NamedTuple):
    instance_id: str
    machine: str
    version: int
    initial_state: str
    initial_ctx: dict[str, Any]
    idempotency_key: str | None
    auto_id: bool
    ts: int

    def to_entry(self) -> dict[str, Any]:
        entry: dict[str, Any] = {
            "type": "create_instance",
            "instance_id": self.instance_id,
            "machine": self.machine,
            "version": self.version,
            "initial_state": self.initial_state,
            "initial_ctx": self.initial_ctx,
        }
        if self.idempotency_key is not None:
            entry["idempotency_key"] = self.idempotency_key
        if self.auto_id:
            entry["auto_id"] = True
        entry["ts"] = self.ts
        return entry


class EventApplied(NamedTuple):
    instance_id: str
    event: str
    from_state: str
    to_state: str
    payload: dict[str, Any] | None
    ctx: dict[str, Any]
    event_id: str | None
    idempotency_key: str | None
    ts: int

    def to_entry(self) -> dict[str, Any]:
        entry: dict[str, Any] = {
            "type": "apply_event",
            "instance_id": self.instance_id,
            "event": self.event,
            "from_state": self.from_state,
            "to_state": self.to_state,
            "payload": self.payload,
            "ctx": self.ctx,
        }
        if self.event_id is not None:
            entry["event_id"] = self.event_id
        if self.idempotency_key is not None:
            entry["idempotency_key"] = self.idempotency_key
        entry["ts"] = self.ts
        return entry


class InstanceDeleted(NamedTuple):
    instance_id: str
    idempotency_key: str | None
    ts: int

    def to_entry(self) -> dict[str, Any]:
        entry: dict[str, Any] = {"type": "delete_instance", "instance_id": self.instance_id}
        if self.idempotency_key is not None:
            entry["idempotency_key"] = self.idempotency_key
        entry["ts"] = self.ts
        return entry


class Checkpoint(NamedTuple):
    timestamp: int

    def to_entry(self) -> dict[str, Any]:
        return {"type": "checkpoint", "timestamp": self.timestamp}


_new_record = tuple.__new__

Record = MachinePut | InstanceCreated | EventApplied | InstanceDeleted | Checkpoint

TYPE_CODES: dict[type, int] = {
    MachinePut: PUT_MACHINE,
    InstanceCreated: CREATE_INSTANCE,
    EventApplied: APPLY_EVENT,
    InstanceDeleted: DELETE_INSTANCE,
    Checkpoint: CHECKPOINT,
}


def type_code(record: Record) -> int:
    """The WAL type code of a record (STORAGE §3.2)."""
    return TYPE_CODES[type(record)]


def _str(entry: dict[str, Any], key: str) -> str:
    value = entry.get(key)
    if not isinstance(value, str):
        raise ValueError(f"entry field {key!r} must be a string")
    return value


def _opt_str(entry: dict[str, Any], key: str) -> str | None:
    value = entry.get(key)
    if value is None or isinstance(value, str):
        return value
    raise ValueError(f"entry field {key!r} must be a string")


def _int(entry: dict[str, Any], key: str) -> int:
    value = entry.get(key)
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"entry field {key!r} must be an integer")
    return value


def _ts(entry: dict[str, Any], default_ts: int) -> int:
    value = entry.get("ts")
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    return default_ts


def _obj(entry: dict[str, Any], key: str) -> dict[str, Any]:
    value = entry.get(key)
    if isinstance(value, dict):
        return value
    if value is None:
        return {}
    raise ValueError(f"entry field {key!r} must be an object")


def _put_machine(entry: dict[str, Any], default_ts: int) -> Record:
    definition = entry.get("definition")
    if not isinstance(definition, dict):
        raise ValueError("entry field 'definition' must be an object")
    return MachinePut(
        _str(entry, "machine"),
        _int(entry, "version"),
        _opt_str(entry, "definition_hash") or "",
        definition,
        _ts(entry, default_ts),
    )


def _create_instance(entry: dict[str, Any], default_ts: int) -> Record:
    return InstanceCreated(
        _str(entry, "instance_id"),
        _str(entry, "machine"),
        _int(entry, "version"),
        _str(entry, "initial_state"),
        _obj(entry, "initial_ctx"),
        _opt_str(entry, "idempotency_key"),
        entry.get("auto_id") is True,
        _ts(entry, default_ts),
    )


def event_fields(entry: dict[str, Any]) -> tuple[Any, ...] | None:
    """The ``EventApplied`` fields of a well-formed ``apply_event`` entry, else ``None``.

    The common case, checked without per-field helper calls; replay uses it to
    update state without building a record.
    """
    get = entry.get
    instance_id, event = get("instance_id"), get("event")
    from_state, to_state = get("from_state"), get("to_state")
    payload, ctx, ts = get("payload"), get("ctx"), get("ts")
    event_id, key = get("event_id"), get("idempotency_key")
    if (
        type(instance_id) is str
        and type(event) is str
        and type(from_state) is str
        and type(to_state) is str
        and type(ctx) is dict
        and type(ts) is int
        and (event_id is None or type(event_id) is str)
        and (key is None or type(key) is str)
    ):
        if type(payload) is not dict:
            payload = None
        return (instance_id, event, from_state, to_state, payload, ctx, event_id, key, ts)
    return None


def _apply_event(entry: dict[str, Any], default_ts: int) -> Record:
    fields = event_fields(entry)
    if fields is not None:
        return _new_record(EventApplied, fields)
    payload = entry.get("payload")
    return EventApplied(
        _str(entry, "instance_id"),
        _str(entry, "event"),
        _str(entry, "from_state"),
        _str(entry, "to_state"),
        payload if isinstance(payload, dict) else None,
        _obj(entry, "ctx"),
        _opt_str(entry, "event_id"),
        _opt_str(entry, "idempotency_key"),
        _ts(entry, default_ts),
    )


def _delete_instance(entry: dict[str, Any], default_ts: int) -> Record:
    return InstanceDeleted(
        _str(entry, "instance_id"), _opt_str(entry, "idempotency_key"), _ts(entry, default_ts)
    )


def _checkpoint(entry: dict[str, Any], default_ts: int) -> Record:
    value = entry.get("timestamp")
    return Checkpoint(value if isinstance(value, int) else default_ts)


_READERS = {
    PUT_MACHINE: _put_machine,
    CREATE_INSTANCE: _create_instance,
    APPLY_EVENT: _apply_event,
    DELETE_INSTANCE: _delete_instance,
    CHECKPOINT: _checkpoint,
}


def from_entry(type_code: int, entry: Any, default_ts: int = 0) -> Record | None:
    """Rebuild the record of a logged entry; ``None`` for kinds with no effect (snapshot).

    ``default_ts`` stands in for entries written without a ``ts`` field.
    """
    if not isinstance(entry, dict):
        raise ValueError("entry is not a JSON object")
    reader = _READERS.get(type_code)
    if reader is None:
        if type_code == SNAPSHOT:
            return None
        raise ValueError(f"unknown record type {type_code}")
    return reader(entry, default_ts)
