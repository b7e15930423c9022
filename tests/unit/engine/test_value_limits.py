"""Depth and size limits of ctx, payload and definitions, for every front end (engine level)."""

from __future__ import annotations

from typing import Any

import pytest

from pyrstmdb import Database
from pyrstmdb.engine.commands import MAX_CTX_BYTES, MAX_JSON_DEPTH, json_depth_over
from pyrstmdb.engine.definition import (
    MAX_DEFINITION_BYTES,
    MAX_GUARD_CHARS,
    MAX_STATES,
    MAX_TRANSITIONS,
    check_bounds,
)
from pyrstmdb.errors import BadRequest

TWO = {
    "states": ["a", "b"],
    "initial": "a",
    "transitions": [
        {"from": "a", "event": "GO", "to": "b"},
        {"from": "b", "event": "BACK", "to": "a"},
    ],
}


def nested(depth: int, leaf: Any = 1) -> Any:
    value = leaf
    for n in range(depth):
        value = {"a": value} if n % 2 else [value]
    return value


@pytest.mark.parametrize(
    ("value", "depth"),
    [({}, 1), ({"a": 1}, 1), ([], 1), (nested(5), 5), ({"a": [1, {"b": [[]]}]}, 5), (7, 0)],
)
def test_depth(value: Any, depth: int) -> None:
    assert json_depth_over(value, depth) is False
    assert json_depth_over(value, depth - 1) is (depth > 0)


@pytest.fixture(params=["memory", "disk"])
def db(request: pytest.FixtureRequest, tmp_path: Any) -> Any:
    with Database(None if request.param == "memory" else tmp_path, fsync_policy="never") as db:
        db.put_machine("m", 1, TWO)
        yield db


def test_initial_ctx_depth_limit(db: Database) -> None:
    db.create_instance("m", 1, instance_id="ok", initial_ctx={"x": nested(MAX_JSON_DEPTH - 1)})
    with pytest.raises(BadRequest) as err:
        db.create_instance("m", 1, instance_id="deep", initial_ctx={"x": nested(MAX_JSON_DEPTH)})
    assert err.value.details == {"field": "initial_ctx", "limit": MAX_JSON_DEPTH}
    assert db.wal_stats().entry_count == 2


def test_a_merge_is_no_deeper_than_its_inputs(db: Database) -> None:
    db.create_instance("m", 1, instance_id="i", initial_ctx={"x": nested(MAX_JSON_DEPTH - 1)})
    applied = db.apply_event("i", "GO", payload={"y": nested(MAX_JSON_DEPTH - 1)})
    assert json_depth_over(applied.ctx, MAX_JSON_DEPTH) is False
    with pytest.raises(BadRequest) as err:
        db.apply_event("i", "BACK", payload={"y": nested(MAX_JSON_DEPTH)})
    assert err.value.details["field"] == "payload"
    assert db.get_instance("i").state == "b"


def test_ctx_size_limit_counts_the_merged_ctx(db: Database) -> None:
    half = "x" * (MAX_CTX_BYTES // 2)
    db.create_instance("m", 1, instance_id="i", initial_ctx={"a": half})
    with pytest.raises(BadRequest) as err:
        db.apply_event("i", "GO", payload={"b": half})
    assert err.value.details["limit"] == MAX_CTX_BYTES
    assert "after merging payload" in err.value.message
    assert db.apply_event("i", "GO", payload={"a": "small"}).to_state == "b"
    with pytest.raises(BadRequest):
        db.create_instance("m", 1, instance_id="j", initial_ctx={"a": "x" * MAX_CTX_BYTES})


def test_integers_beyond_64_bits_are_refused_in_process(db: Database) -> None:
    with pytest.raises(BadRequest) as err:
        db.create_instance("m", 1, instance_id="i", initial_ctx={"n": 10**30})
    assert err.value.details == {"field": "initial_ctx"}
    db.create_instance("m", 1, instance_id="i", initial_ctx={"n": 2**64 - 1})
    with pytest.raises(BadRequest):
        db.apply_event("i", "GO", payload={"n": -(2**63) - 1})
    assert db.get_instance("i").ctx == {"n": 2**64 - 1}


def _guarded(guard: str) -> dict[str, Any]:
    return {**TWO, "transitions": [{"from": "a", "event": "GO", "to": "b", "guard": guard}]}


@pytest.mark.parametrize(
    ("definition", "field"),
    [
        (_guarded("ctx.a == 1 || " * (MAX_GUARD_CHARS // 13) + "ctx.a == 2"), "guard"),
        ({**TWO, "states": [f"s{n}" for n in range(MAX_STATES + 1)]}, "states"),
        ({**TWO, "transitions": [TWO["transitions"][0]] * (MAX_TRANSITIONS + 1)}, "transitions"),
        ({**TWO, "meta": {"pad": "x" * MAX_DEFINITION_BYTES}}, "definition"),
    ],
)
def test_definition_bounds(db: Database, definition: dict[str, Any], field: str) -> None:
    with pytest.raises(BadRequest) as err:
        db.put_machine("big", 1, definition)
    assert err.value.details["field"] == field
    assert "over the limit" in err.value.message
    assert db.list_machines().to_dict()["items"] == [{"machine": "m", "versions": [1]}]


def test_definition_nesting_is_bounded_before_any_serialisation() -> None:
    with pytest.raises(BadRequest) as err:
        check_bounds({**TWO, "meta": nested(MAX_JSON_DEPTH)})
    assert err.value.details["field"] == "definition"
    with pytest.raises(BadRequest):  # deeper than the encoder goes: same answer
        check_bounds({**TWO, "meta": nested(600)})
    assert check_bounds({**TWO, "meta": nested(MAX_JSON_DEPTH - 2)}) > 0


def test_the_deepest_accepted_ctx_survives_a_checkpoint_and_a_restart(tmp_path: Any) -> None:
    deepest = {"x": nested(MAX_JSON_DEPTH - 1)}
    with Database(tmp_path) as db:
        db.put_machine("m", 1, {**TWO, "meta": nested(MAX_JSON_DEPTH - 2)})
        db.create_instance("m", 1, instance_id="i", initial_ctx=deepest, idempotency_key="c")
        db.apply_event("i", "GO", payload={"y": nested(MAX_JSON_DEPTH - 1)}, idempotency_key="k")
        db.compact(force_snapshot=True)
    with Database(tmp_path) as db:
        ctx = db.get_instance("i").ctx
        assert ctx == {**deepest, "y": nested(MAX_JSON_DEPTH - 1)}
        again = db.apply_event("i", "GO", payload={"y": 0}, idempotency_key="k")
        assert again.applied is False and again.ctx == ctx
