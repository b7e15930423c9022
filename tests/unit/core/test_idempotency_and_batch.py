"""Idempotency keys (S8, S9, DECISIONS 13, 33) and BATCH (DECISIONS 17, 31, S14, S15)."""

from __future__ import annotations

from typing import Any

import pytest

from pyrstmdb import BadRequest, Database, InstanceExists, InvalidTransition
from pyrstmdb.engine.idempotency import IdempotencyCache

DAY_MS = 86_400_000


@pytest.fixture
def db(clock: Any, order_machine: dict[str, Any]) -> Database:
    database = Database(clock=clock)
    database.put_machine("order", 1, order_machine)
    return database


def test_apply_replay_returns_first_result_unapplied(db: Database) -> None:
    db.create_instance("order", 1, instance_id="o")
    first = db.apply_event("o", "PAY", payload={"a": 1}, idempotency_key="k")
    entries = db.wal_stats().entry_count
    replay = db.apply_event("o", "PAY", payload={"a": 2}, idempotency_key="k", event_id="e2")
    assert replay.applied is False
    assert (replay.from_state, replay.to_state, replay.wal_offset) == (
        first.from_state,
        first.to_state,
        first.wal_offset,
    )
    assert replay.ctx == {"a": 1}
    assert replay.event_id == "e2"
    assert db.wal_stats().entry_count == entries
    assert db.get_instance("o").state == "paid"
    # the key is scoped to the instance
    db.create_instance("order", 1, instance_id="p")
    assert db.apply_event("p", "PAY", idempotency_key="k").applied is True


def test_failures_are_not_cached(db: Database) -> None:
    db.create_instance("order", 1, instance_id="o")
    with pytest.raises(InvalidTransition):
        db.apply_event("o", "SHIP", idempotency_key="k")
    assert db.apply_event("o", "PAY", idempotency_key="k").applied is True


def test_create_replay_with_and_without_id(db: Database) -> None:
    a = db.create_instance("order", 1, instance_id="x", idempotency_key="k1")
    again = db.create_instance("order", 1, instance_id="x", idempotency_key="k1")
    assert again.to_dict() == a.to_dict()
    with pytest.raises(InstanceExists):
        db.create_instance("order", 1, instance_id="x", idempotency_key="other")
    auto = db.create_instance("order", 1, idempotency_key="k2")
    auto_again = db.create_instance("order", 1, idempotency_key="k2")
    assert auto_again.instance_id == auto.instance_id
    assert auto_again.wal_offset == auto.wal_offset
    assert db.list_instances().total == 2


def test_delete_replay_returns_original_offset(db: Database) -> None:
    db.create_instance("order", 1, instance_id="o")
    first = db.delete_instance("o", idempotency_key="d")
    assert db.delete_instance("o", idempotency_key="d").wal_offset == first.wal_offset


def test_keys_expire_after_ttl(clock: Any, order_machine: dict[str, Any]) -> None:
    db = Database(clock=clock, idempotency_ttl_secs=60)
    db.put_machine("order", 1, order_machine)
    db.create_instance("order", 1, instance_id="o")
    db.apply_event("o", "PAY", idempotency_key="k")
    clock.advance(59_000)
    assert db.apply_event("o", "PAY", idempotency_key="k").applied is False
    clock.advance(2_000)
    with pytest.raises(InvalidTransition):
        db.apply_event("o", "PAY", idempotency_key="k")  # expired: executed again


def test_cache_is_bounded() -> None:
    cache = IdempotencyCache(ttl_ms=DAY_MS, max_keys=3)
    for n in range(5):
        cache.put(("apply", "i", f"k{n}"), n, ts=1000 + n)
    assert len(cache) == 3
    assert cache.get(("apply", "i", "k0"), 1010) is None
    assert cache.get(("apply", "i", "k4"), 1010) == 4


# -- batch -------------------------------------------------------------------------


def _apply(instance_id: str, event: str, **extra: Any) -> dict[str, Any]:
    return {"op": "APPLY_EVENT", "params": {"instance_id": instance_id, "event": event, **extra}}


def test_atomic_batch_all_or_nothing(db: Database) -> None:
    db.create_instance("order", 1, instance_id="o")
    before = db.wal_stats().entry_count
    ops = [
        {"op": "CREATE_INSTANCE", "params": {"machine": "order", "version": 1, "instance_id": "n"}},
        _apply("o", "PAY"),
        _apply("o", "DELIVER"),  # invalid in state "paid"
    ]
    with pytest.raises(BadRequest) as info:
        db.batch(ops, mode="atomic")
    details = info.value.details
    assert details["index"] == 2
    assert details["code"] == "INVALID_TRANSITION"
    assert "cannot apply 'DELIVER'" in details["message"]
    assert db.wal_stats().entry_count == before
    assert db.get_instance("o").state == "created"
    assert db.list_instances().total == 1


def test_atomic_batch_sees_its_own_earlier_ops(db: Database) -> None:
    ops = [
        {"op": "CREATE_INSTANCE", "params": {"machine": "order", "version": 1, "instance_id": "n"}},
        _apply("n", "PAY", idempotency_key="k"),
        _apply("n", "SHIP"),
        _apply("n", "PAY", idempotency_key="k"),  # replay of op 1 inside the batch
    ]
    result = db.batch(ops, mode="atomic")
    items = result.results
    assert [i.status for i in items] == ["ok"] * 4
    assert items[2].result is not None and items[2].result.to_dict()["to_state"] == "shipped"
    replay = items[3].result
    assert replay is not None and replay.to_dict()["applied"] is False
    assert replay.wal_offset == items[1].result.wal_offset  # type: ignore[union-attr]
    assert db.get_instance("n").state == "shipped"
    offsets = [i.result.wal_offset for i in items[:3]]  # type: ignore[union-attr]
    assert offsets == sorted(offsets) and len(set(offsets)) == 3


def test_best_effort_batch_reports_each_op(db: Database) -> None:
    db.create_instance("order", 1, instance_id="o")
    ops = [
        _apply("o", "PAY"),
        _apply("o", "DELIVER"),
        {"op": "HELLO", "params": {}},
        {"params": {}},
        _apply("o", "SHIP"),
    ]
    result = db.batch(ops, mode="best_effort").to_dict()["results"]
    assert [r["status"] for r in result] == ["ok", "error", "error", "error", "ok"]
    assert result[1]["error"]["code"] == "INVALID_TRANSITION" and result[1]["result"] is None
    assert result[2]["error"]["code"] == "BAD_REQUEST"
    assert "not allowed in a batch" in result[2]["error"]["message"]
    assert result[3]["error"]["code"] == "BAD_REQUEST"
    assert result[4]["result"]["to_state"] == "shipped" and result[4]["error"] is None
    assert db.get_instance("o").state == "shipped"


def test_batch_limits(db: Database) -> None:
    with pytest.raises(BadRequest, match="batch size 101 exceeds limit 100"):
        db.batch([_apply("o", "PAY")] * 101)
    assert db.batch([], mode="atomic").to_dict() == {"results": []}
    entries = db.wal_stats().entry_count
    db.create_instance("order", 1, instance_id="o")
    with pytest.raises(BadRequest):
        db.batch([_apply("o", "PAY"), {"op": "WATCH_ALL", "params": {}}], mode="atomic")
    assert db.get_instance("o").state == "created"
    assert db.wal_stats().entry_count == entries + 1
