"""What a backup pins on a live embedded database, reading it, and the compaction pause."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pyrstmdb.config import CompactionConfig
from pyrstmdb.database import Database
from pyrstmdb.errors import BadRequest, Conflict, NotFound
from pyrstmdb.results import CompactResult, WalStatsResult
from pyrstmdb.storage.backup import (
    MAX_CHUNK,
    BackupSet,
    CompactionPaused,
    Pin,
    pin_backup,
    read_chunk,
)
from pyrstmdb.storage.compaction import AutoCompactor
from pyrstmdb.storage.disk import DiskStore
from pyrstmdb.storage.wal import offset_position, offset_segment, segment_name

MACHINE: dict[str, Any] = {
    "states": ["a", "b"],
    "initial": "a",
    "transitions": [{"from": "a", "event": "GO", "to": "b"}],
}


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Database]:
    database = Database(tmp_path / "data", wal_segment_size_mb=1)
    database.put_machine("m", 1, MACHINE)
    yield database
    database.close()


def _fill(db: Database, prefix: str, count: int) -> None:
    for i in range(count):
        db.create_instance("m", 1, f"{prefix}-{i}", {"pad": "z" * 2000})


def _pin(db: Database) -> Pin:
    store = db.core.store
    assert isinstance(store, DiskStore)
    return db.core.pause_compaction(lambda: pin_backup(store))


def test_pin_holds_the_checkpoint_and_the_log_up_to_the_durable_end(db: Database) -> None:
    _fill(db, "a", 700)  # over 1 MiB: at least two segments
    db.compact(True)
    _fill(db, "b", 300)
    pin = _pin(db)
    names = [f.name for f in pin.files]
    assert pin.checkpoint_offset is not None
    assert names[0] == f"snapshots/checkpoint-{pin.checkpoint_offset:016x}.ckpt"
    wal_names = names[1:]
    first, last = offset_segment(pin.checkpoint_offset), offset_segment(pin.end_offset)
    assert wal_names == [f"wal/{segment_name(i)}" for i in range(first, last + 1)]
    assert pin.files[-1].size == offset_position(pin.end_offset)
    assert pin.end_offset == db.wal_stats().latest_offset
    _fill(db, "c", 50)  # later writes grow the active segment, not the pin
    tail = pin.files[-1]
    assert read_chunk(pin, tail.name, tail.size, 100) == b""
    assert Path(tail.path).stat().st_size > tail.size
    whole = read_chunk(pin, tail.name, 0, tail.size)
    assert whole == Path(tail.path).read_bytes()[: tail.size]
    db.core.resume_compaction()


def test_reads_stay_inside_the_pin(db: Database) -> None:
    _fill(db, "a", 10)
    pin = _pin(db)
    tail = pin.files[-1]
    assert len(read_chunk(pin, tail.name, 0, 10 * MAX_CHUNK)) == tail.size
    assert read_chunk(pin, tail.name, 5, 7) == Path(tail.path).read_bytes()[5:12]
    with pytest.raises(BadRequest, match="past the end"):
        read_chunk(pin, tail.name, tail.size + 1, 10)
    with pytest.raises(BadRequest, match="no file"):
        read_chunk(pin, "wal/../../etc/passwd", 0, 10)
    db.core.resume_compaction()


def test_compaction_and_flush_are_refused_until_every_backup_ends(db: Database) -> None:
    _fill(db, "a", 10)
    _pin(db)
    _pin(db)
    with pytest.raises(CompactionPaused, match="backup is in progress") as refused:
        db.compact(True)
    assert isinstance(refused.value, Conflict) and refused.value.details == {"backups": 2}
    with pytest.raises(CompactionPaused):
        db.core.flush_all()
    db.create_instance("m", 1, "written-meanwhile")  # writes are not paused
    db.core.resume_compaction()
    with pytest.raises(CompactionPaused):
        db.compact(True)
    db.core.resume_compaction()
    assert db.compact(True).total_snapshots == 11


def test_automatic_compaction_is_deferred_not_failed() -> None:
    paused = [True]
    runs: list[int] = []

    def compact() -> CompactResult:
        if paused[0]:
            raise CompactionPaused("paused")
        runs.append(1)
        return CompactResult(1, 1, 1, 1, 1)

    entries = [0]

    def stats() -> WalStatsResult:
        entries[0] += 10  # records keep being written
        return WalStatsResult(entries[0], 1, 10, 1)

    policy = CompactionConfig(events_threshold=1, size_threshold_mb=0, min_interval_secs=0)
    compactor = AutoCompactor(policy, stats, compact, clock=lambda: 100.0)
    assert compactor.check() is False and compactor.runs == 0
    paused[0] = False
    assert compactor.check() is True and compactor.runs == 1 and runs == [1]


def test_backup_set_is_closed_for_good_when_its_client_leaves() -> None:
    pins = BackupSet()
    pin = Pin("b-1", 0, 1 << 40, None, ())
    assert pins.add(pin) and pins.get("b-1") is pin
    with pytest.raises(NotFound):
        pins.get("b-2")
    assert pins.close() == [pin]
    assert len(pins) == 0
    assert pins.add(Pin("b-3", 0, 1 << 40, None, ())) is False


def test_pin_under_a_lax_policy_covers_everything_written(tmp_path: Path) -> None:
    with Database(tmp_path / "lax", fsync_policy="never") as lax:
        lax.put_machine("m", 1, MACHINE)
        _fill(lax, "a", 20)
        pin = _pin(lax)
        assert pin.end_offset == lax.wal_stats().latest_offset
        assert pin.checkpoint_offset is None and pin.files[0].name == f"wal/{segment_name(1)}"
        lax.core.resume_compaction()
