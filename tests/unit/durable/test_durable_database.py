"""Database(path): state survives close/reopen, compaction, FLUSH_ALL; check tool."""

from __future__ import annotations

import io
import os
from pathlib import Path
from typing import Any

import pytest

from pyrstmdb import Database, InstanceExists, InstanceNotFound, MachineNotFound
from pyrstmdb.config import CompactionConfig
from pyrstmdb.storage.check import run_check

SMALL_SEGMENT_MB = 1


def _fill(db: Database, count: int, prefix: str = "i") -> None:
    for n in range(count):
        db.create_instance(
            "order", 1, instance_id=f"{prefix}{n}", initial_ctx={"n": n, "pad": "x" * 500}
        )
        db.apply_event(f"{prefix}{n}", "PAY", payload={"paid": n}, idempotency_key=f"pay-{n}")


def _snapshot_of(db: Database) -> dict[str, Any]:
    listed = db.list_instances(limit=100_000)
    return {
        "machines": db.list_machines().to_dict(),
        "instances": [i.to_dict() for i in listed.instances],
        "ctx": {i.id: db.get_instance(i.id).to_dict() for i in listed.instances},
    }


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "data"


def test_everything_survives_reopen(path: Path, clock: Any, order_machine: dict[str, Any]) -> None:
    with Database(path, clock=clock) as db:
        db.put_machine("order", 1, order_machine)
        _fill(db, 5)
        db.apply_event("i1", "SHIP", event_id="e-1")
        db.delete_instance("i2", idempotency_key="del")
        created = db.create_instance("order", 1, idempotency_key="auto")
        before = _snapshot_of(db)
        stats = db.wal_stats()
    assert (path / "wal" / "0000000000000001.wal").exists()
    clock.advance(10_000)
    with Database(path, clock=clock) as db:
        assert _snapshot_of(db) == before  # incl. created_at/updated_at from the log
        assert db.get_instance("i1").last_event_id == "e-1"
        with pytest.raises(InstanceNotFound):
            db.get_instance("i2")
        with pytest.raises(InstanceExists):
            db.create_instance("order", 1, instance_id="i2")
        # idempotency keys were rebuilt from the log
        assert db.apply_event("i3", "PAY", idempotency_key="pay-3").applied is False
        assert (
            db.create_instance("order", 1, idempotency_key="auto").instance_id
            == created.instance_id
        )
        assert db.delete_instance("i2", idempotency_key="del").wal_offset > 0
        after = db.wal_stats()
        assert after.entry_count == stats.entry_count
        assert after.latest_offset == stats.latest_offset
        offset = db.apply_event("i0", "SHIP").wal_offset
        assert offset >= stats.latest_offset  # offsets keep increasing across restarts


def test_compaction_drops_segments_and_keeps_state(
    path: Path, clock: Any, order_machine: dict[str, Any]
) -> None:
    with Database(
        path, clock=clock, wal_segment_size_mb=SMALL_SEGMENT_MB, fsync_policy="never"
    ) as db:
        db.put_machine("order", 1, order_machine)
        db.put_machine("order", 2, order_machine)
        _fill(db, 2500)
        db.delete_instance("i7")
        assert db.wal_stats().segment_count >= 3
        before = _snapshot_of(db)
        result = db.compact(force_snapshot=True)
        assert result.segments_deleted >= 2
        assert result.bytes_reclaimed > 1024 * 1024
        assert result.total_snapshots == 2500
        assert result.snapshots_created == 2500
        assert result.wal_segments == db.wal_stats().segment_count == 1
        assert db.compact().snapshots_created == 0  # nothing changed since
        db.apply_event("i5", "SHIP")
        assert db.compact().snapshots_created == 1
        history = db.wal_read(0)
        assert history.records and history.records[0].offset >= 2 << 40
    with Database(path, clock=clock) as db:
        after = _snapshot_of(db)
        assert after["machines"] == before["machines"]
        assert db.get_instance("i5").state == "shipped"
        assert len(after["instances"]) == 2499
        with pytest.raises(InstanceNotFound):
            db.get_instance("i7")
        with pytest.raises(InstanceExists):
            db.create_instance("order", 1, instance_id="i7")
        assert db.apply_event("i9", "PAY", idempotency_key="pay-9").applied is False
        assert db.get_machine("order", 2).checksum == db.get_machine("order", 1).checksum
    out = io.StringIO()
    assert run_check(str(path), False, out) == 0, out.getvalue()
    assert "2499 instances (1 deleted)" in out.getvalue()


def test_flush_all_is_durable(path: Path, order_machine: dict[str, Any]) -> None:
    with Database(path, wal_segment_size_mb=SMALL_SEGMENT_MB) as db:
        db.put_machine("order", 1, order_machine)
        _fill(db, 1200)
        db.snapshot_instance("i1")
        db.compact(True)
        _fill(db, 10, prefix="late")
        head = db.wal_stats()
        flushed = db.flush_all()
        assert flushed.to_dict() == {
            "flushed": True,
            "instances_removed": 1210,
            "machines_removed": 1,
        }
        after = db.wal_stats()
        assert after.segment_count == 1
        assert after.entry_count == head.entry_count + 1
        assert after.latest_offset > head.latest_offset
    assert not [n for n in os.listdir(path / "snapshots") if n.endswith((".ckpt", ".snap"))]
    with Database(path) as db:
        assert db.list_instances().total == 0
        assert db.list_machines().items == []
        with pytest.raises(MachineNotFound):
            db.create_instance("order", 1)
        db.put_machine("order", 1, order_machine)
        assert db.create_instance("order", 1, instance_id="i1").state == "created"
        assert db.apply_event("i1", "PAY", idempotency_key="pay-1").applied is True


def test_stale_checkpoint_after_interrupted_flush_is_ignored(
    path: Path, order_machine: dict[str, Any]
) -> None:
    with Database(path) as db:
        db.put_machine("order", 1, order_machine)
        _fill(db, 3)
        db.compact(True)
        saved = {n: (path / "snapshots" / n).read_bytes() for n in os.listdir(path / "snapshots")}
        db.flush_all()
    for name, blob in saved.items():  # as if the crash came before the files were removed
        (path / "snapshots" / name).write_bytes(blob)
    with Database(path) as db:
        assert db.list_instances().total == 0
        assert db.list_machines().items == []


def test_snapshot_instance_files(path: Path, order_machine: dict[str, Any]) -> None:
    with Database(path) as db:
        db.put_machine("order", 1, order_machine)
        db.create_instance("order", 1, instance_id="o", initial_ctx={"a": 1})
        first = db.snapshot_instance("o")
        assert first.snapshot_id.startswith("snap-")
        assert len(first.checksum) == 64
        db.apply_event("o", "PAY")
        second = db.snapshot_instance("o")
        assert second.wal_offset > first.wal_offset
        files = sorted(n for n in os.listdir(path / "snapshots") if n.endswith(".snap"))
        assert files == [f"{second.snapshot_id}.snap"]  # the superseded file is gone
        blob = (path / "snapshots" / files[0]).read_bytes()
        assert len(blob) == second.size_bytes
        db.delete_instance("o")
        db.compact()
        assert not [n for n in os.listdir(path / "snapshots") if n.endswith(".snap")]


@pytest.mark.slow
def test_automatic_compaction_event_trigger_fires(
    path: Path, order_machine: dict[str, Any]
) -> None:
    policy = CompactionConfig(
        enabled=True, events_threshold=300, size_threshold_mb=0, min_interval_secs=0
    )
    with Database(
        path, wal_segment_size_mb=SMALL_SEGMENT_MB, compaction=policy, compaction_check_secs=0.05
    ) as db:
        db.put_machine("order", 1, order_machine)
        _fill(db, 2500)
        assert db._compactor is not None
        deadline = 200
        while db.wal_stats().segment_count > 1 and deadline:
            import time

            time.sleep(0.05)
            deadline -= 1
        assert db._compactor.runs >= 1
        assert db.wal_stats().segment_count <= 2


def test_check_reports_corruption_with_file_and_position(
    path: Path, order_machine: dict[str, Any]
) -> None:
    with Database(path) as db:
        db.put_machine("order", 1, order_machine)
        _fill(db, 20)
    segment = path / "wal" / "0000000000000001.wal"
    data = bytearray(segment.read_bytes())
    data[40] ^= 0xFF  # inside the first record's payload; valid records follow
    segment.write_bytes(bytes(data))
    out = io.StringIO()
    assert run_check(str(path), False, out) == 1, out.getvalue()
    text = out.getvalue()
    assert "result: DAMAGED" in text and str(segment) in text and "byte" in text


def test_incomplete_atomic_batch_at_the_tail_is_cut(
    path: Path, order_machine: dict[str, Any]
) -> None:
    with Database(path) as db:
        db.put_machine("order", 1, order_machine)
        db.create_instance("order", 1, instance_id="a")
        db.create_instance("order", 1, instance_id="b")
        ops = [
            {"op": "APPLY_EVENT", "params": {"instance_id": name, "event": "PAY"}}
            for name in ("a", "b")
        ]
        result = db.batch(ops, mode="atomic")
        second = result.results[1].result
        assert second is not None
        entries = db.wal_read(0).records
        assert entries[-2].entry.get("batch_continues") is True
        assert "batch_continues" not in entries[-1].entry
    # A crash in the middle of the batch's write: only its first record reached the disk.
    segment = path / "wal" / "0000000000000001.wal"
    cut = second.wal_offset - (1 << 40)
    segment.write_bytes(segment.read_bytes()[:cut])
    with Database(path) as db:
        assert db.get_instance("a").state == "created"
        assert db.get_instance("b").state == "created"
        assert [r.entry["type"] for r in db.wal_read(0).records][-1] == "create_instance"
        again = db.batch(ops, mode="atomic")
        assert [item.status for item in again.results] == ["ok", "ok"]
    with Database(path) as db:
        assert db.get_instance("a").state == db.get_instance("b").state == "paid"
