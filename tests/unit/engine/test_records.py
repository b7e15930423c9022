"""Logged entries have the STORAGE §3.3 shape, and read back to the same records."""

from __future__ import annotations

import pytest

from pyrstmdb.engine.records import (
    APPLY_EVENT,
    CODES,
    Checkpoint,
    EventApplied,
    InstanceCreated,
    InstanceDeleted,
    MachinePut,
    from_entry,
    type_code,
)

RECORDS = [
    MachinePut("m", 1, "ab" * 32, {"states": ["a"], "initial": "a", "transitions": []}, 5),
    InstanceCreated("i", "m", 1, "a", {"x": 1}, "k", True, 6),
    InstanceCreated("j", "m", 1, "a", {}, None, False, 7),
    EventApplied("i", "GO", "a", "b", {"p": 1}, {"x": 1, "p": 1}, "e1", "k2", 8),
    EventApplied("i", "GO", "b", "a", None, {"x": 1}, None, None, 9),
    InstanceDeleted("i", None, 10),
    Checkpoint(11),
]


@pytest.mark.parametrize("record", RECORDS)
def test_round_trip(record: object) -> None:
    entry = record.to_entry()  # type: ignore[attr-defined]
    assert entry["type"] in CODES
    assert CODES[entry["type"]] == type_code(record)  # type: ignore[arg-type]
    assert from_entry(type_code(record), entry) == record  # type: ignore[arg-type]


def test_key_order_is_the_documented_one() -> None:
    assert list(RECORDS[3].to_entry()) == [
        "type",
        "instance_id",
        "event",
        "from_state",
        "to_state",
        "payload",
        "ctx",
        "event_id",
        "idempotency_key",
        "ts",
    ]
    assert list(RECORDS[4].to_entry()) == [
        "type",
        "instance_id",
        "event",
        "from_state",
        "to_state",
        "payload",
        "ctx",
        "ts",
    ]
    assert RECORDS[4].to_entry()["payload"] is None
    assert list(RECORDS[0].to_entry()) == [
        "type",
        "machine",
        "version",
        "definition_hash",
        "definition",
        "ts",
    ]
    assert list(RECORDS[1].to_entry()) == [
        "type",
        "instance_id",
        "machine",
        "version",
        "initial_state",
        "initial_ctx",
        "idempotency_key",
        "auto_id",
        "ts",
    ]
    assert list(RECORDS[5].to_entry()) == ["type", "instance_id", "ts"]
    assert RECORDS[6].to_entry() == {"type": "checkpoint", "timestamp": 11}


def test_entries_written_by_rstmdb_without_ts_read_with_a_default() -> None:
    entry = {
        "type": "apply_event",
        "instance_id": "o-1",
        "event": "PAY",
        "from_state": "created",
        "to_state": "paid",
        "payload": {"amount": 5},
        "ctx": {"amount": 5},
    }
    record = from_entry(APPLY_EVENT, entry, default_ts=42)
    assert isinstance(record, EventApplied) and record.ts == 42 and record.event_id is None


@pytest.mark.parametrize(
    "entry",
    [
        [],
        {"type": "apply_event"},
        {
            "type": "apply_event",
            "instance_id": 1,
            "event": "E",
            "from_state": "a",
            "to_state": "b",
            "ctx": {},
        },
        {
            "type": "apply_event",
            "instance_id": "i",
            "event": "E",
            "from_state": "a",
            "to_state": "b",
            "ctx": [],
        },
    ],
)
def test_unreadable_entries_raise_value_error(entry: object) -> None:
    with pytest.raises(ValueError):
        from_entry(APPLY_EVENT, entry)


def test_unknown_type_code() -> None:
    with pytest.raises(ValueError):
        from_entry(99, {})
    assert from_entry(5, {"type": "snapshot"}) is None
