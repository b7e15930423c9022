"""Semantics of every operation through the embedded in-memory Database."""

from __future__ import annotations

from typing import Any

import pytest

from pyrstmdb import (
    BadRequest,
    Conflict,
    Database,
    ErrorCode,
    GuardFailed,
    InstanceExists,
    InstanceNotFound,
    InvalidTransition,
    MachineNotFound,
    MachineVersionExists,
    MachineVersionLimitExceeded,
)

FIRST = 1 << 40


@pytest.fixture
def db(clock: Any, order_machine: dict[str, Any]) -> Database:
    database = Database(clock=clock)
    database.put_machine("order", 1, order_machine)
    return database


# -- introduction examples ---------------------------------------------------------


def test_introduction_quick_example(order_machine: dict[str, Any]) -> None:
    db = Database()
    put = db.put_machine("order", 1, order_machine)
    assert put.created is True
    assert put.stored_checksum == "8b8e30dfff53671ff7da3e076a0d17909284bcb1d4dc027caf7f29cac56b4e53"
    created = db.create_instance(
        "order", 1, instance_id="order-123", initial_ctx={"customer": "alice"}
    )
    assert (created.instance_id, created.state) == ("order-123", "created")
    pay = db.apply_event("order-123", "PAY", payload={"amount": 99.99})
    assert (pay.from_state, pay.to_state, pay.applied) == ("created", "paid", True)
    db.apply_event("order-123", "SHIP", payload={"carrier": "fedex"})
    got = db.get_instance("order-123")
    assert got.state == "shipped"
    assert got.ctx == {"customer": "alice", "amount": 99.99, "carrier": "fedex"}
    assert got.to_dict() == {
        "machine": "order",
        "version": 1,
        "state": "shipped",
        "ctx": {"customer": "alice", "amount": 99.99, "carrier": "fedex"},
        "last_wal_offset": got.last_wal_offset,
    }


def test_introduction_approval_example(approval_machine: dict[str, Any]) -> None:
    db = Database()
    db.put_machine("order", 1, approval_machine)
    db.create_instance("order", 1, instance_id="order-001", initial_ctx={"amount": 500})
    result = db.apply_event("order-001", "APPROVE", payload={"approver": "alice"})
    assert result.to_state == "approved"
    assert result.ctx == {"amount": 500, "approver": "alice"}
    db.create_instance("order", 1, instance_id="order-002", initial_ctx={"amount": 5000})
    with pytest.raises(GuardFailed) as info:
        db.apply_event("order-002", "APPROVE")
    assert info.value.code is ErrorCode.GUARD_FAILED
    assert db.apply_event("order-002", "REJECT").to_state == "rejected"


# -- machines ------------------------------------------------------------------------


def test_identical_reput_is_not_created(db: Database, order_machine: dict[str, Any]) -> None:
    reordered = dict(reversed(list(order_machine.items())))
    again = db.put_machine("order", 1, reordered)
    assert again.created is False
    assert again.stored_checksum == db.get_machine("order", 1).checksum
    assert db.wal_stats().entry_count == 1


def test_different_definition_same_version(db: Database, order_machine: dict[str, Any]) -> None:
    changed = {**order_machine, "states": [*order_machine["states"], "lost"]}
    with pytest.raises(MachineVersionExists) as info:
        db.put_machine("order", 1, changed)
    assert info.value.details["machine"] == "order"


def test_invalid_definition_even_for_existing_version_is_bad_request(db: Database) -> None:
    with pytest.raises(BadRequest, match="initial state"):
        db.put_machine("order", 1, {"states": ["a"], "initial": "b", "transitions": []})


def test_checksum_parameter(order_machine: dict[str, Any]) -> None:
    db = Database()
    good = "8b8e30dfff53671ff7da3e076a0d17909284bcb1d4dc027caf7f29cac56b4e53"
    assert db.put_machine("order", 1, order_machine, checksum=good).created
    with pytest.raises(BadRequest, match="checksum"):
        db.put_machine("order", 2, order_machine, checksum="0" * 64)


def test_version_limit(order_machine: dict[str, Any]) -> None:
    db = Database(max_machine_versions=2)
    db.put_machine("m", 1, order_machine)
    db.put_machine("m", 2, order_machine)
    assert db.put_machine("m", 2, order_machine).created is False  # existing version is fine
    with pytest.raises(MachineVersionLimitExceeded, match="already has 2 versions"):
        db.put_machine("m", 3, order_machine)
    db.put_machine("other", 3, order_machine)


def test_get_and_list_machines(db: Database, order_machine: dict[str, Any]) -> None:
    db.put_machine("order", 0, order_machine)
    db.put_machine("alpha", 7, order_machine)
    got = db.get_machine("order", 1)
    assert got.definition["transitions"][0] == {"from": ["created"], "event": "PAY", "to": "paid"}
    assert db.get_machine("order").checksum == got.checksum  # latest by default
    with pytest.raises(MachineNotFound):
        db.get_machine("order", 9)
    listed = db.list_machines().to_dict()
    assert listed == {
        "items": [{"machine": "alpha", "versions": [7]}, {"machine": "order", "versions": [0, 1]}]
    }


# -- instances -------------------------------------------------------------------


def test_create_rules(db: Database) -> None:
    with pytest.raises(MachineNotFound, match="order v2"):
        db.create_instance("order", 2)
    auto = db.create_instance("order", 1)
    assert len(auto.instance_id) == 36 and auto.instance_id == auto.instance_id.lower()
    assert db.get_instance(auto.instance_id).ctx == {}  # default ctx is an object
    db.create_instance("order", 1, instance_id="x")
    with pytest.raises(InstanceExists):
        db.create_instance("order", 1, instance_id="x")
    with pytest.raises(BadRequest, match="initial_ctx must be a JSON object"):
        db.create_instance("order", 1, initial_ctx=[1, 2])  # type: ignore[arg-type]
    with pytest.raises(BadRequest, match="instance_id"):
        db.create_instance("order", 1, instance_id="")


def test_offsets_increase_and_first_is_one_shifted(db: Database) -> None:
    a = db.create_instance("order", 1, instance_id="a")
    b = db.apply_event("a", "PAY")
    assert a.wal_offset == FIRST + 1  # the machine is the first record
    assert b.wal_offset > a.wal_offset
    assert db.get_instance("a").last_wal_offset == b.wal_offset


def test_apply_step_order(db: Database) -> None:
    db.create_instance("order", 1, instance_id="o")
    with pytest.raises(InstanceNotFound):
        db.apply_event("nope", "PAY")
    with pytest.raises(Conflict) as state_conflict:
        db.apply_event("o", "PAY", expected_state="paid", expected_wal_offset=1)
    assert state_conflict.value.details == {"expected_state": "paid", "actual_state": "created"}
    with pytest.raises(Conflict) as offset_conflict:
        db.apply_event("o", "PAY", expected_state="created", expected_wal_offset=1)
    assert offset_conflict.value.details["expected_wal_offset"] == 1
    with pytest.raises(InvalidTransition, match="cannot apply 'SHIP' in state 'created'"):
        db.apply_event("o", "SHIP")
    offset = db.get_instance("o").last_wal_offset
    ok = db.apply_event("o", "PAY", expected_state="created", expected_wal_offset=offset)
    assert ok.to_state == "paid"
    assert not Conflict("x").retryable


def test_guard_sees_ctx_before_merge_s4() -> None:
    db = Database()
    db.put_machine(
        "g",
        1,
        {
            "states": ["a", "b"],
            "initial": "a",
            "transitions": [{"from": "a", "event": "GO", "to": "b", "guard": "ctx.ready"}],
        },
    )
    db.create_instance("g", 1, instance_id="i")
    with pytest.raises(GuardFailed):
        db.apply_event("i", "GO", payload={"ready": True})
    assert db.get_instance("i").ctx == {}  # the failed event changed nothing


def test_first_passing_candidate_wins_s1() -> None:
    db = Database()
    db.put_machine(
        "t",
        1,
        {
            "states": ["p", "small", "medium", "big"],
            "initial": "p",
            "transitions": [
                {"from": "p", "event": "GO", "to": "small", "guard": "ctx.n < 10"},
                {"from": "p", "event": "GO", "to": "medium", "guard": "ctx.n < 100"},
                {"from": "p", "event": "GO", "to": "big", "guard": "ctx.n >= 100"},
            ],
        },
    )
    for n, expected in ((5, "small"), (50, "medium"), (500, "big")):
        db.create_instance("t", 1, instance_id=f"i{n}", initial_ctx={"n": n})
        assert db.apply_event(f"i{n}", "GO").to_state == expected
    db.create_instance("t", 1, instance_id="none", initial_ctx={"n": "text"})
    with pytest.raises(GuardFailed):
        db.apply_event("none", "GO")
    with pytest.raises(InvalidTransition):
        db.apply_event("none", "STOP")


def test_payload_shallow_merge_and_null_overwrites(db: Database) -> None:
    db.create_instance("order", 1, instance_id="o", initial_ctx={"a": {"x": 1, "y": 2}, "b": 1})
    result = db.apply_event("o", "PAY", payload={"a": {"z": 3}, "b": None, "c": [1]})
    assert result.ctx == {"a": {"z": 3}, "b": None, "c": [1]}
    assert db.get_instance("o").ctx == {"a": {"z": 3}, "b": None, "c": [1]}


def test_non_object_payload_is_bad_request_s7(db: Database) -> None:
    db.create_instance("order", 1, instance_id="o")
    for bad in ([1], "text", 3):
        with pytest.raises(BadRequest, match="payload must be a JSON object"):
            db.apply_event("o", "PAY", payload=bad)  # type: ignore[arg-type]
    assert db.get_instance("o").state == "created"


def test_non_json_payload_is_bad_request(db: Database) -> None:
    db.create_instance("order", 1, instance_id="o")
    with pytest.raises(BadRequest, match="payload is not JSON"):
        db.apply_event("o", "PAY", payload={"when": {1, 2}})


def test_last_event_id_set_and_cleared_s12(db: Database) -> None:
    db.create_instance("order", 1, instance_id="o")
    result = db.apply_event("o", "PAY", event_id="evt-1")
    assert result.event_id == "evt-1"
    assert db.get_instance("o").last_event_id == "evt-1"
    db.apply_event("o", "SHIP")
    got = db.get_instance("o")
    assert got.last_event_id is None
    assert "last_event_id" not in got.to_dict()


def test_returned_ctx_is_private(db: Database) -> None:
    nested = {"items": [1]}
    db.create_instance("order", 1, instance_id="o", initial_ctx={"cart": nested})
    nested["items"].append(2)
    got = db.get_instance("o")
    got.ctx["cart"]["items"].append(3)
    result = db.apply_event("o", "PAY", payload={"flag": True})
    result.ctx["flag"] = False
    assert db.get_instance("o").ctx == {"cart": {"items": [1]}, "flag": True}


def test_delete_rules_s6(db: Database) -> None:
    created = db.create_instance("order", 1, instance_id="o")
    deleted = db.delete_instance("o")
    assert deleted.to_dict() == {
        "instance_id": "o",
        "deleted": True,
        "wal_offset": deleted.wal_offset,
    }
    assert deleted.wal_offset > created.wal_offset
    entries = db.wal_stats().entry_count
    again = db.delete_instance("o")
    assert again.wal_offset == deleted.wal_offset
    assert db.wal_stats().entry_count == entries  # nothing written
    with pytest.raises(InstanceNotFound):
        db.get_instance("o")
    with pytest.raises(InstanceNotFound):
        db.apply_event("o", "PAY")
    with pytest.raises(InstanceNotFound):
        db.snapshot_instance("o")
    with pytest.raises(InstanceExists):
        db.create_instance("order", 1, instance_id="o")
    with pytest.raises(InstanceNotFound):
        db.delete_instance("never")
    assert db.list_instances().total == 0


# -- listing ---------------------------------------------------------------------


def test_list_instances_filters_and_pages_in_creation_order(
    db: Database, clock: Any, approval_machine: dict[str, Any]
) -> None:
    db.put_machine("approval", 1, approval_machine)
    for n in range(7):
        clock.advance(5)
        db.create_instance("order", 1, instance_id=f"z{n}")
    db.create_instance("approval", 1, instance_id="a0")
    db.apply_event("z3", "PAY")
    db.delete_instance("z5")
    everything = db.list_instances()
    assert [i.id for i in everything.instances] == ["z0", "z1", "z2", "z3", "z4", "z6", "a0"]
    assert everything.total == 7 and everything.has_more is False
    page = db.list_instances(machine="order", limit=2, offset=2)
    assert [i.id for i in page.instances] == ["z2", "z3"]
    assert (page.total, page.has_more) == (6, True)
    assert [i.id for i in db.list_instances(state="paid").instances] == ["z3"]
    assert db.list_instances(limit=0).instances == []
    assert db.list_instances(limit=0).has_more is True
    last = db.list_instances(machine="order", offset=5)
    assert [i.id for i in last.instances] == ["z6"] and last.has_more is False
    summary = everything.instances[3]
    assert summary.updated_at >= summary.created_at
    assert set(summary.to_dict()) == {
        "id",
        "machine",
        "version",
        "state",
        "created_at",
        "updated_at",
        "last_wal_offset",
    }


def test_timestamps_are_epoch_ms(db: Database, clock: Any) -> None:
    db.create_instance("order", 1, instance_id="o")
    created = db.list_instances().instances[0]
    assert created.created_at == created.updated_at == clock.now
    clock.advance(1234)
    db.apply_event("o", "PAY")
    updated = db.list_instances().instances[0]
    assert updated.created_at == clock.now - 1234
    assert updated.updated_at == clock.now


# -- parameter checks ------------------------------------------------------------


@pytest.mark.parametrize(
    ("call", "field"),
    [
        (lambda db: db.apply_event(1, "PAY"), "instance_id"),
        (lambda db: db.apply_event("o", None), "event"),
        (lambda db: db.apply_event("o", "PAY", expected_wal_offset=-1), "expected_wal_offset"),
        (lambda db: db.apply_event("o", "PAY", expected_wal_offset=True), "expected_wal_offset"),
        (lambda db: db.create_instance("order", -1), "version"),
        (lambda db: db.create_instance("order", 2**32), "version"),
        (lambda db: db.create_instance("order", 1.5), "version"),
        (lambda db: db.list_instances(limit=-3), "limit"),
        (lambda db: db.put_machine("m", 1, None), "definition"),
        (lambda db: db.put_machine("m", 1, [1]), "definition"),
    ],
)
def test_bad_arguments_name_the_field(db: Database, call: Any, field: str) -> None:
    with pytest.raises(BadRequest) as info:
        call(db)
    assert info.value.details["field"] == field
    assert field in info.value.message


@pytest.mark.parametrize("value", [1.0, 1.5, -1, True, "1", 2**64])
def test_wire_integers_are_strict(value: Any) -> None:
    from pyrstmdb.engine.commands import parse_apply_event

    with pytest.raises(BadRequest) as info:
        parse_apply_event({"instance_id": "o", "event": "E", "expected_wal_offset": value})
    assert info.value.details == {"field": "expected_wal_offset"}
