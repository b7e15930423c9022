"""Replaying the records of any operation sequence rebuilds the identical state."""

from __future__ import annotations

import contextlib
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from pyrstmdb import Database, RstmdbError
from pyrstmdb.engine import machine
from pyrstmdb.engine.idempotency import IdempotencyCache
from pyrstmdb.engine.records import from_entry
from pyrstmdb.engine.state import State

MACHINE = {
    "states": ["a", "b", "c"],
    "initial": "a",
    "transitions": [
        {"from": "a", "event": "UP", "to": "b", "guard": "ctx.n < 5"},
        {"from": "a", "event": "UP", "to": "c"},
        {"from": ["b", "c"], "event": "DOWN", "to": "a"},
        {"from": "b", "event": "STAY", "to": "b", "guard": "!ctx.stop"},
    ],
}

ids = st.sampled_from(["i0", "i1", "i2", "i3"])
keys = st.one_of(st.none(), st.sampled_from(["k0", "k1"]))
payloads = st.one_of(
    st.none(),
    st.fixed_dictionaries({}, optional={"n": st.integers(0, 9), "stop": st.booleans()}),
)
ops = st.one_of(
    st.tuples(st.just("create"), st.one_of(st.none(), ids), keys, payloads),
    st.tuples(
        st.just("apply"), ids, st.sampled_from(["UP", "DOWN", "STAY", "NOPE"]), payloads, keys
    ),
    st.tuples(st.just("delete"), ids, keys),
    st.tuples(st.just("tick"), st.integers(0, 5000)),
)


def _run(db: Database, clock: list[int], op: tuple[Any, ...]) -> None:
    kind = op[0]
    if kind == "tick":
        clock[0] += op[1]
    elif kind == "create":
        db.create_instance("m", 1, instance_id=op[1], idempotency_key=op[2], initial_ctx=op[3])
    elif kind == "apply":
        db.apply_event(op[1], op[2], payload=op[3], idempotency_key=op[4], event_id=op[2])
    else:
        db.delete_instance(op[1], idempotency_key=op[2])


@settings(max_examples=150, deadline=None)
@given(st.lists(ops, max_size=40))
def test_replay_rebuilds_identical_state(sequence: list[tuple[Any, ...]]) -> None:
    clock = [1_000_000]
    db = Database(clock=lambda: clock[0], idempotency_ttl_secs=3)
    db.put_machine("m", 1, MACHINE)
    for op in sequence:
        with contextlib.suppress(RstmdbError):
            _run(db, clock, op)
    live = db.core.state
    rebuilt = State(IdempotencyCache(ttl_ms=3000))
    # Through the logged JSON form, as a disk replay would see it.
    for item in db.wal_read(0).records:
        record = from_entry(machine_code(item.entry["type"]), item.entry)
        assert record is not None
        machine.apply(rebuilt, record, item.offset)
    assert rebuilt.instances == live.instances
    assert list(rebuilt.instances) == list(live.instances)
    assert rebuilt.deleted_count == live.deleted_count
    assert {n: {v: d.checksum for v, d in vs.items()} for n, vs in rebuilt.machines.items()} == {
        n: {v: d.checksum for v, d in vs.items()} for n, vs in live.machines.items()
    }
    now = clock[0]
    rebuilt.idempotency.expire(now)
    live.idempotency.expire(now)
    live_keys = {s: v for s, _t, v in live.idempotency.items()}
    assert {s: v for s, _t, v in rebuilt.idempotency.items()} == live_keys


def machine_code(tag: str) -> int:
    from pyrstmdb.engine.records import CODES

    return CODES[tag]
