"""The operation plans: requests they build and results they return, without I/O."""

from __future__ import annotations

import base64
from typing import Any

import pytest
from crc32c import crc32c

from pyrstmdb.client import Event, Notice, ServerInfo
from pyrstmdb.client.api import BackupChunk, BackupFile, Commands
from pyrstmdb.client.calls import Call, Plan
from pyrstmdb.client.plans import SyncRunner
from pyrstmdb.results import (
    ApplyEventResult,
    BatchResult,
    CreateInstanceResult,
    DeleteInstanceResult,
    GetMachineResult,
)


class Scripted(Commands, SyncRunner):
    """Runs plans against canned results, recording each call."""

    def __init__(self, *results: dict[str, Any]) -> None:
        self.results = list(results)
        self.calls: list[Call] = []

    def _run(self, plan: Plan[Any]) -> Any:
        try:
            call = next(plan)
            while True:
                self.calls.append(call)
                call = plan.send(self.results.pop(0))
        except StopIteration as stop:
            return stop.value


def test_optional_params_are_left_out() -> None:
    runner = Scripted({"instance_id": "i", "state": "s", "wal_offset": 5})
    result = runner.create_instance("order", 1)
    assert result == CreateInstanceResult("i", "s", 5)
    assert runner.calls == [Call("CREATE_INSTANCE", {"machine": "order", "version": 1})]  # type: ignore[arg-type]
    assert runner.calls[0].safe is False


def test_writes_with_an_idempotency_key_may_be_retried() -> None:
    runner = Scripted({"instance_id": "i", "deleted": True, "wal_offset": 9})
    assert runner.delete_instance("i", idempotency_key="k") == DeleteInstanceResult("i", True, 9)
    assert runner.calls[0].params == {"instance_id": "i", "idempotency_key": "k"}
    assert runner.calls[0].safe is True


def test_apply_event_sends_every_given_field() -> None:
    runner = Scripted(
        {"from_state": "a", "to_state": "b", "ctx": {"x": 1}, "wal_offset": 3, "applied": True}
    )
    result = runner.apply_event("i", "GO", {"x": 1}, expected_state="a", event_id="e1")
    assert isinstance(result, ApplyEventResult) and result.ctx == {"x": 1}
    assert runner.calls[0].params == {
        "instance_id": "i",
        "event": "GO",
        "payload": {"x": 1},
        "expected_state": "a",
        "event_id": "e1",
    }


def test_get_machine_without_version_asks_for_the_latest() -> None:
    listing = {"items": [{"machine": "order", "versions": [1, 3, 2]}]}
    runner = Scripted(listing, {"definition": {"states": []}, "checksum": "c"})
    assert runner.get_machine("order") == GetMachineResult({"states": []}, "c")
    assert [c.op for c in runner.calls] == ["LIST_MACHINES", "GET_MACHINE"]
    assert runner.calls[1].params == {"machine": "order", "version": 3}


def test_batch_results_are_typed_by_op() -> None:
    ops = [
        {"op": "CREATE_INSTANCE", "params": {"machine": "m", "version": 1}},
        {"op": "APPLY_EVENT", "params": {"instance_id": "i", "event": "GO"}},
    ]
    raw = {
        "results": [
            {
                "status": "ok",
                "result": {"instance_id": "i", "state": "a", "wal_offset": 1},
                "error": None,
            },
            {
                "status": "error",
                "result": None,
                "error": {"code": "INVALID_TRANSITION", "message": "no"},
            },
        ]
    }
    result = Scripted(raw).batch(ops, mode="best_effort")
    assert isinstance(result, BatchResult)
    assert isinstance(result.results[0].result, CreateInstanceResult)
    assert result.results[1].error == {"code": "INVALID_TRANSITION", "message": "no"}
    assert result.to_dict() == raw


def test_watch_specs_leave_out_empty_filters() -> None:
    spec = Commands.watch_all._build(None, machines=["m"], events=[], include_ctx=False)  # type: ignore[attr-defined]
    assert spec.params == {"machines": ["m"], "include_ctx": False}


def test_info_keeps_the_raw_result() -> None:
    raw = {
        "server_name": "rstmdb",
        "server_version": "1",
        "protocol_version": 1,
        "features": ["batch"],
        "max_frame_bytes": 16777216,
        "max_batch_ops": 100,
    }
    info = Scripted(raw).info()
    assert isinstance(info, ServerInfo) and info.max_batch_ops == 100
    assert info.to_dict() == raw


def test_event_round_trip_and_validation() -> None:
    raw = {
        "type": "event",
        "subscription_id": "s",
        "instance_id": "i",
        "machine": "m",
        "version": 1,
        "wal_offset": 10,
        "from_state": "a",
        "to_state": "b",
        "event": "GO",
        "payload": None,
        "ctx": {"k": 1},
    }
    event = Event.from_dict(raw)
    assert event.payload is None
    assert event.to_dict() == {k: v for k, v in raw.items() if k != "payload"}
    with pytest.raises(ValueError, match="wal_offset"):
        Event.from_dict({**raw, "wal_offset": "10"})
    with pytest.raises(ValueError, match="payload"):
        Event.from_dict({**raw, "payload": [1]})


def test_notice_round_trip() -> None:
    raw = {
        "type": "notice",
        "subscription_id": "s",
        "code": "HISTORY_LOST",
        "lost_from": 1,
        "resumed_at": 5,
    }
    notice = Notice.from_dict(raw)
    assert notice.to_dict() == raw
    assert "from offset 1 up to 5" in str(notice)


def test_event_too_large_notice() -> None:
    raw = {
        "type": "notice",
        "subscription_id": "s",
        "code": "EVENT_TOO_LARGE",
        "instance_id": "i",
        "wal_offset": 40,
        "size": 17_000_000,
    }
    notice = Notice.from_dict(raw)
    assert (notice.lost_from, notice.resumed_at) == (40, 41)
    assert notice.to_dict() == raw
    assert "offset 40 (17000000 bytes) was not sent" in str(notice)
    with pytest.raises(ValueError):
        Notice.from_dict({"type": "notice", "code": "X"})


DATABASE_METHODS = [
    "put_machine",
    "get_machine",
    "list_machines",
    "create_instance",
    "get_instance",
    "list_instances",
    "delete_instance",
    "apply_event",
    "batch",
    "snapshot_instance",
    "wal_read",
    "wal_stats",
    "compact",
    "flush_all",
]


@pytest.mark.parametrize("name", DATABASE_METHODS)
def test_clients_have_the_embedded_signatures(name: str) -> None:
    import inspect

    from pyrstmdb import Database
    from pyrstmdb.client import AsyncClient, Client

    def params(fn: Any) -> list[tuple[str, Any]]:
        return [(p.name, p.default) for p in inspect.signature(fn).parameters.values()]

    embedded = params(getattr(Database, name))[1:]
    plan = getattr(Commands, name)._plan  # the one source both clients run
    assert params(plan)[1:] == embedded
    for cls in (Client, AsyncClient):
        assert getattr(cls, name)._plan is plan


def test_backup_ops_build_their_requests_and_check_each_chunk() -> None:
    begun = {
        "backup_id": "b",
        "created_at": 1,
        "end_offset": 1 << 40,
        "checkpoint_offset": None,
        "files": [{"name": "wal/0000000000000001.wal", "size": 3}],
        "total_bytes": 3,
        "chunk_bytes": 4,
    }
    data = b"abc"
    chunk = {
        "file": "wal/0000000000000001.wal",
        "offset": 0,
        "length": 3,
        "crc32c": crc32c(data),
        "data": base64.b64encode(data).decode(),
    }
    runner = Scripted(begun, chunk, {"backup_id": "b", "ended": True})
    manifest = runner.backup_begin()
    assert manifest.files == [BackupFile("wal/0000000000000001.wal", 3)]
    assert manifest.total_bytes == 3 and manifest.to_dict() == begun
    read = runner.backup_read("b", "wal/0000000000000001.wal", 0, 4)
    assert read == BackupChunk("wal/0000000000000001.wal", 0, data)
    assert runner.backup_end("b") is True
    assert [c.op for c in runner.calls] == ["BACKUP_BEGIN", "BACKUP_READ", "BACKUP_END"]
    assert runner.calls[1].params == {
        "backup_id": "b",
        "file": "wal/0000000000000001.wal",
        "offset": 0,
        "length": 4,
    }
    assert not any(c.safe for c in runner.calls)
    with pytest.raises(ValueError, match="damaged"):
        BackupChunk.from_dict({**chunk, "crc32c": chunk["crc32c"] ^ 1})
