"""``Client`` and ``AsyncClient`` against the real ``rstmdb`` server process."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from server_harness import ServerProcess

from pyrstmdb import Database
from pyrstmdb.client import ClientConnectionError, Event, ServerInfo
from pyrstmdb.errors import (
    BadRequest,
    GuardFailed,
    InstanceNotFound,
    InvalidTransition,
    MachineNotFound,
    MachineVersionExists,
    Unauthorized,
)

Opened = Any

ORDER = {
    "states": ["created", "paid", "shipped"],
    "initial": "created",
    "transitions": [
        {"from": "created", "event": "PAY", "to": "paid", "guard": "ctx.amount <= 1000"},
        {"from": "paid", "event": "SHIP", "to": "shipped"},
    ],
}


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def script(db: Any, machine: str) -> list[Any]:
    inst = f"{machine}-1"
    """The same calls on an embedded database or a client; returns every result."""
    results = [
        db.put_machine(machine, 1, ORDER),
        db.put_machine(machine, 1, ORDER),
        db.get_machine(machine, 1),
        db.get_machine(machine),
        db.create_instance(machine, 1, inst, {"customer": "alice", "amount": 10}),
        db.apply_event(inst, "PAY", {"note": "x"}, event_id="e-1"),
        db.get_instance(inst),
        db.list_instances(machine=machine),
        db.snapshot_instance(inst),
        db.delete_instance(inst),
        db.batch([{"op": "CREATE_INSTANCE", "params": {"machine": machine, "version": 1}}]),
        db.wal_stats(),
    ]
    results.append(db.wal_read(results[4].wal_offset, limit=2))
    return results


def _shape(value: Any) -> Any:
    """What must match between embedded and remote: type and protocol keys."""
    return type(value), sorted(value.to_dict())


def test_results_are_the_embedded_types(connect: Opened, server: ServerProcess) -> None:
    client = connect(server.address)
    machine = unique("order")
    remote = script(client, machine)
    with Database() as db:
        embedded = script(db, machine)
    assert [_shape(r) for r in remote] == [_shape(e) for e in embedded]
    assert [remote[0].created, remote[1].created] == [True, False]
    assert remote[2] == remote[3]  # latest version by default
    assert remote[6].ctx == embedded[6].ctx == {"customer": "alice", "amount": 10, "note": "x"}
    assert remote[6].last_event_id == "e-1"
    assert [r.entry["type"] for r in remote[12].records] == ["create_instance", "apply_event"]


def test_ping_info_and_listing(connect: Opened, server: ServerProcess) -> None:
    client = connect(server.address)
    assert client.ping() is True
    info = client.info()
    assert isinstance(info, ServerInfo)
    assert (info.protocol_version, info.max_batch_ops) == (1, 100)
    assert client.server_hello["wire_mode"] == "binary_json"
    machine = unique("m")
    client.put_machine(machine, 1, ORDER)
    client.put_machine(machine, 2, ORDER)
    listing = {item.machine: item.versions for item in client.list_machines().items}
    assert listing[machine] == [1, 2]
    compacted = client.compact(force_snapshot=True)
    assert compacted.total_snapshots >= 0


def test_errors_are_the_embedded_exceptions(connect: Opened, server: ServerProcess) -> None:
    client = connect(server.address)
    machine = unique("order")
    client.put_machine(machine, 1, ORDER)
    instance = client.create_instance(machine, 1, initial_ctx={"amount": 5000}).instance_id
    with pytest.raises(InstanceNotFound) as missing:
        client.get_instance(unique("none"))
    assert missing.value.code == "INSTANCE_NOT_FOUND" and missing.value.retryable is False
    with pytest.raises(GuardFailed):
        client.apply_event(instance, "PAY")
    with pytest.raises(InvalidTransition):
        client.apply_event(instance, "SHIP")
    with pytest.raises(MachineVersionExists):
        client.put_machine(machine, 1, {**ORDER, "initial": "paid"})
    with pytest.raises(MachineNotFound):
        client.get_machine(unique("none"))
    with pytest.raises(BadRequest) as atomic:
        client.batch(
            [
                {"op": "APPLY_EVENT", "params": {"instance_id": instance, "event": "PAY"}},
                {"op": "APPLY_EVENT", "params": {"instance_id": instance, "event": "SHIP"}},
            ]
        )
    assert atomic.value.details["index"] == 0
    assert client.ping() is True


def test_pipelined_requests(connect: Opened, server: ServerProcess) -> None:
    client = connect(server.address)
    machine = unique("order")
    client.put_machine(machine, 1, ORDER)
    pipeline = client.pipeline()
    for n in range(100):
        pipeline.create_instance(machine, 1, f"{machine}-{n}", {"n": n})
    created = pipeline.execute()
    assert [c.instance_id for c in created] == [f"{machine}-{n}" for n in range(100)]
    offsets = [c.wal_offset for c in created]
    assert len(set(offsets)) == 100
    reads = client.pipeline()
    for n in range(100):
        reads.get_instance(f"{machine}-{n}")
    reads.get_instance(unique("none"))
    outcomes = reads.execute(raise_on_error=False)
    assert [o.ctx["n"] for o in outcomes[:100]] == list(range(100))
    assert isinstance(outcomes[100], InstanceNotFound)


def test_watch_delivers_typed_events_and_replays(connect: Opened, server: ServerProcess) -> None:
    client = connect(server.address)
    machine = unique("order")
    client.put_machine(machine, 1, ORDER)
    inst = f"{machine}-w"
    created = client.create_instance(machine, 1, inst, {"amount": 1})
    sub = client.watch_instance(inst)
    client.apply_event(inst, "PAY", {"by": "bob"})
    event = sub.get(5)
    assert isinstance(event, Event)
    assert (event.instance_id, event.from_state, event.to_state) == (inst, "created", "paid")
    assert event.payload == {"by": "bob"} and event.ctx == {"amount": 1, "by": "bob"}
    assert sub.unwatch() is True
    replay = client.watch_all(machines=[machine], from_offset=created.wal_offset, include_ctx=False)
    again = replay.get(5)
    assert (again.wal_offset, again.ctx) == (event.wal_offset, None)


def test_auth_token(connect: Opened, rstmdb_server: Any) -> None:
    import hashlib

    token_hash = hashlib.sha256(b"s3cret").hexdigest()
    server = rstmdb_server(
        env={"RSTMDB_AUTH_REQUIRED": "true", "RSTMDB_AUTH_TOKEN_HASH": token_hash}
    )
    anonymous = connect(server.address)
    with pytest.raises(Unauthorized):
        anonymous.list_machines()
    from pyrstmdb.errors import AuthFailed

    with pytest.raises(AuthFailed):
        connect(server.address, token="wrong")
    assert connect(server.address, token="s3cret").list_machines().items == []


@pytest.mark.slow
def test_tls_and_mtls(connect: Opened, rstmdb_server: Any, pki: Any) -> None:
    server = rstmdb_server(env=pki.env(mtls=True))
    secured = connect(
        server.address,
        ca_file=str(pki.ca),
        cert_file=str(pki.client_cert),
        key_file=str(pki.client_key),
    )
    assert secured.ping() is True
    with pytest.raises(ClientConnectionError, match=server.address):
        connect(server.address, ca_file=str(pki.ca), connect_timeout=5)
    plain = rstmdb_server(env=pki.env(mtls=False))
    with pytest.raises(ClientConnectionError, match="certificate verification failed"):
        connect(plain.address, tls=True)
    assert connect(plain.address, ca_file=str(pki.ca), server_name="localhost").ping()
    assert connect(plain.address, insecure=True).ping()
