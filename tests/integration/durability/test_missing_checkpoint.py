"""A log that starts after a checkpoint which is gone is refused, not opened half empty.

Compaction deletes the first segment once a checkpoint covers it; deleting that
checkpoint by hand would leave only the instances written after it. Opening (embedded
and the server) refuses, naming the missing checkpoint and the offsets it covered, and
``rstmdb check`` reports the directory damaged. With the checkpoint back, everything is
there, and the failed attempt did not keep the directory locked.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from server_harness import run_rstmdb

from pyrstmdb import Database
from pyrstmdb.errors import CorruptionError

COUNTER = {
    "states": ["s"],
    "initial": "s",
    "transitions": [{"from": "s", "event": "INC", "to": "s"}],
}
PAD = "x" * 1000
BEFORE = 1500  # instances the checkpoint covers (more than one 1 MiB segment)
AFTER = 7  # instances written after the compaction


def _build(data_dir: Path) -> None:
    with Database(data_dir, wal_segment_size_mb=1, fsync_policy="never") as db:
        db.put_machine("counter", 1, COUNTER)
        for n in range(BEFORE):
            db.create_instance("counter", 1, instance_id=f"old-{n}", initial_ctx={"pad": PAD})
        result = db.compact(force_snapshot=True)
        assert result.segments_deleted >= 1
        for n in range(AFTER):
            db.create_instance("counter", 1, instance_id=f"new-{n}")


@pytest.mark.slow
def test_a_missing_checkpoint_is_refused_by_every_opener(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    _build(data_dir)
    segments = sorted(p.name for p in (data_dir / "wal").glob("*.wal"))
    assert segments[0] != "0000000000000001.wal"
    oldest = int(segments[0][:16], 16)
    (checkpoint,) = (data_dir / "snapshots").glob("checkpoint-*.ckpt")
    aside = tmp_path / checkpoint.name
    shutil.move(checkpoint, aside)

    expected = (
        f"checkpoint missing: the log starts at segment {segments[0]} (offset {oldest << 40}) "
        f"and no checkpoint-*.ckpt in snapshots/ covers offsets {1 << 40} to {oldest << 40}"
    )
    with pytest.raises(CorruptionError) as refused:
        Database(data_dir)
    assert expected in str(refused.value)
    assert refused.value.path == str(data_dir / "wal" / segments[0])

    server = run_rstmdb(["--bind", "127.0.0.1:0", "--data-dir", str(data_dir)])
    assert server.returncode != 0
    (line,) = server.stderr.strip().splitlines()
    assert line.startswith(f"rstmdb: cannot open data directory '{data_dir}': {expected}")

    check = run_rstmdb(["check", "--data-dir", str(data_dir)])
    assert check.returncode == 1
    assert f"problem: {expected}" in check.stdout
    assert "result: DAMAGED" in check.stdout

    shutil.move(aside, checkpoint)
    with Database(data_dir) as db:  # the refused opens above released the directory
        listed = db.list_instances(limit=BEFORE + AFTER + 10)
        assert listed.total == BEFORE + AFTER
    assert run_rstmdb(["check", "--data-dir", str(data_dir)]).returncode == 0


def test_a_log_that_ends_before_its_checkpoint_is_refused(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    _build(data_dir)
    (checkpoint,) = (data_dir / "snapshots").glob("checkpoint-*.ckpt")
    covered = int(checkpoint.name[len("checkpoint-") : -len(".ckpt")], 16) >> 40
    segments = sorted((data_dir / "wal").glob("*.wal"))
    assert int(segments[0].name[:16], 16) == covered
    segments[0].unlink()  # the segment the checkpoint's position lies in
    message = f"WAL segment {covered:016x}.wal and the records after the checkpoint are missing"
    with pytest.raises(CorruptionError, match=message):
        Database(data_dir)
    check = run_rstmdb(["check", "--data-dir", str(data_dir)])
    assert check.returncode == 1 and message in check.stdout


def test_a_log_after_flush_all_needs_no_checkpoint(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    _build(data_dir)
    with Database(data_dir) as db:
        db.flush_all()
        db.put_machine("counter", 1, COUNTER)
        db.create_instance("counter", 1, instance_id="fresh")
    assert not list((data_dir / "snapshots").glob("checkpoint-*"))
    assert run_rstmdb(["check", "--data-dir", str(data_dir)]).returncode == 0
    with Database(data_dir) as db:
        assert [i.id for i in db.list_instances().instances] == ["fresh"]
