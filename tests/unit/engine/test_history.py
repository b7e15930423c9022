"""Instance history (GET_HISTORY) through the embedded Database: content, limits, paging,
restart, compaction, old checkpoints without history."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

import orjson
import pytest

from pyrstmdb import BadRequest, Database, InstanceNotFound
from pyrstmdb.storage.snapshot import CHECKPOINT_MAGIC, checkpoint_files

TOGGLE = {
    "states": ["off", "on"],
    "initial": "off",
    "transitions": [
        {"from": "off", "event": "FLIP", "to": "on"},
        {"from": "on", "event": "FLIP", "to": "off", "guard": "ctx.ok == true"},
    ],
}


def new_db(path: Path | None = None, **options: Any) -> Database:
    db = Database(None if path is None else str(path), **options)
    if not db.list_machines().items:
        db.put_machine("toggle", 1, TOGGLE)
    return db


def kinds(db: Database, instance_id: str, **options: Any) -> list[str]:
    return [e["kind"] for e in db.get_history(instance_id, **options).entries]


def test_entries_oldest_first_with_their_fields() -> None:
    db = new_db()
    created = db.create_instance("toggle", 1, instance_id="a", initial_ctx={"ok": True})
    flip = db.apply_event("a", "FLIP", payload={"by": "me"}, event_id="e-1")
    db.apply_event("a", "FLIP")
    deleted = db.delete_instance("a")
    history = db.get_history("a")
    assert history.instance_id == "a" and history.truncated is False
    assert history.entries == [
        {"wal_offset": created.wal_offset, "kind": "created", "to_state": "off",
         "ts": history.entries[0]["ts"]},
        {"wal_offset": flip.wal_offset, "kind": "event", "event": "FLIP", "from_state": "off",
         "to_state": "on", "payload": {"by": "me"}, "event_id": "e-1",
         "ts": history.entries[1]["ts"]},
        {"wal_offset": history.entries[2]["wal_offset"], "kind": "event", "event": "FLIP",
         "from_state": "on", "to_state": "off", "ts": history.entries[2]["ts"]},
        {"wal_offset": deleted.wal_offset, "kind": "deleted", "from_state": "off",
         "ts": history.entries[3]["ts"]},
    ]  # fmt: skip
    assert all(isinstance(e["ts"], int) and e["ts"] > 0 for e in history.entries)


def test_refused_events_and_replays_leave_no_entry() -> None:
    db = new_db()
    db.create_instance("toggle", 1, instance_id="a", initial_ctx={"ok": False})
    db.apply_event("a", "FLIP", idempotency_key="k")
    db.apply_event("a", "FLIP", idempotency_key="k")  # replay: nothing logged
    with pytest.raises(Exception, match="guard"):
        db.apply_event("a", "FLIP")
    assert kinds(db, "a") == ["created", "event"]


def test_atomic_batch_records_each_op_once_and_failed_batches_none() -> None:
    db = new_db()
    ops = [
        {
            "op": "CREATE_INSTANCE",
            "params": {"machine": "toggle", "version": 1, "instance_id": "b"},
        },
        {"op": "APPLY_EVENT", "params": {"instance_id": "b", "event": "FLIP"}},
    ]
    db.batch(ops, mode="atomic")
    assert kinds(db, "b") == ["created", "event"]
    failing = [ops[1], {"op": "APPLY_EVENT", "params": {"instance_id": "b", "event": "FLIP"}}]
    with pytest.raises(BadRequest):
        db.batch(failing, mode="atomic")  # the second FLIP fails its guard
    assert kinds(db, "b") == ["created", "event"]


def test_keeps_only_the_newest_entries() -> None:
    db = new_db(history_per_instance=3)
    db.create_instance("toggle", 1, instance_id="a", initial_ctx={"ok": True})
    offsets = [db.apply_event("a", "FLIP").wal_offset for _ in range(5)]
    history = db.get_history("a")
    assert [e["wal_offset"] for e in history.entries] == offsets[-3:]
    assert history.truncated is True


def test_zero_keeps_nothing() -> None:
    db = new_db(history_per_instance=0)
    db.create_instance("toggle", 1, instance_id="a")
    history = db.get_history("a")
    assert history.entries == [] and history.truncated is True


def test_paging_with_limit_and_before_offset() -> None:
    db = new_db()
    db.create_instance("toggle", 1, instance_id="a", initial_ctx={"ok": True})
    for _ in range(6):
        db.apply_event("a", "FLIP")
    full = db.get_history("a").entries
    assert len(full) == 7
    last_two = db.get_history("a", limit=2)
    assert last_two.entries == full[-2:] and last_two.truncated is True
    before = db.get_history("a", limit=2, before_offset=full[-2]["wal_offset"])
    assert before.entries == full[-4:-2] and before.truncated is True
    first = db.get_history("a", limit=10, before_offset=full[1]["wal_offset"])
    assert first.entries == full[:1] and first.truncated is False
    assert db.get_history("a", limit=0).entries == []


def test_bad_arguments_and_unknown_instances() -> None:
    db = new_db()
    db.create_instance("toggle", 1, instance_id="a")
    with pytest.raises(BadRequest):
        db.get_history("a", limit=1001)
    with pytest.raises(BadRequest):
        db.get_history("a", limit=-1)
    with pytest.raises(InstanceNotFound):
        db.get_history("never")


def test_flush_all_forgets_history(tmp_path: Path) -> None:
    db = Database(str(tmp_path / "d"), fsync_policy="never")
    db.put_machine("toggle", 1, TOGGLE)
    db.create_instance("toggle", 1, instance_id="a")
    db._core.flush_all()
    with pytest.raises(InstanceNotFound):
        db.get_history("a")
    db.close()


def write_history(db: Database, instances: int, rounds: int) -> None:
    for i in range(instances):
        db.create_instance("toggle", 1, instance_id=f"i{i}", initial_ctx={"ok": True})
    blob = "z" * 4000
    for _ in range(rounds):
        for i in range(instances):
            db.apply_event(f"i{i}", "FLIP", payload={"blob": blob})
    db.delete_instance("i0")


def snapshot_of(db: Database, instances: int) -> dict[str, Any]:
    return {f"i{i}": db.get_history(f"i{i}").to_dict() for i in range(instances)}


def test_history_survives_restart(tmp_path: Path) -> None:
    db = new_db(tmp_path / "d", history_per_instance=20)
    write_history(db, 3, 30)
    before = snapshot_of(db, 3)
    db.close()
    again = new_db(tmp_path / "d", history_per_instance=20)
    assert snapshot_of(again, 3) == before
    assert before["i0"]["entries"][-1]["kind"] == "deleted"
    again.close()


def test_history_survives_compaction(tmp_path: Path) -> None:
    db = new_db(tmp_path / "d", wal_segment_size_mb=1)
    write_history(db, 3, 200)  # ~2.4 MB: several segments
    before = snapshot_of(db, 3)
    compacted = db.compact(force_snapshot=True)
    assert compacted.segments_deleted >= 1
    db.close()
    again = new_db(tmp_path / "d", wal_segment_size_mb=1)
    assert again.wal_read(0, 1).records[0].offset > 1 << 40  # the start of the log is gone
    assert snapshot_of(again, 3) == before
    again.close()


def test_a_checkpoint_without_history_still_loads(tmp_path: Path) -> None:
    db = new_db(tmp_path / "d", wal_segment_size_mb=1)
    write_history(db, 2, 300)
    db.compact(force_snapshot=True)
    db.close()
    # Rewrite the checkpoint as an older version wrote it: no "history" member.
    directory = tmp_path / "d" / "snapshots"
    (_, name), *_ = reversed(checkpoint_files(str(directory)))
    path = directory / name
    _header, _, body = path.read_bytes().partition(b"\n")
    obj = orjson.loads(body)
    assert "history" in obj
    del obj["history"]
    old_body = orjson.dumps(obj)
    digest = hashlib.sha256(old_body).hexdigest().encode()
    path.write_bytes(CHECKPOINT_MAGIC + digest + b"\n" + old_body)
    os.sync()
    again = new_db(tmp_path / "d", wal_segment_size_mb=1)
    history = again.get_history("i1")
    assert history.truncated is True  # what the checkpoint covered is unknown
    flip = again.apply_event("i1", "FLIP")
    assert again.get_history("i1").entries[-1]["wal_offset"] == flip.wal_offset
    assert again.get_instance("i1").state in ("on", "off")
    again.close()
