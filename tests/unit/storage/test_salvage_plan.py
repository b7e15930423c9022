"""``storage.salvage``: the longest consistent prefix, and everything else kept aside."""

from __future__ import annotations

import io
import logging
from pathlib import Path

import pytest

from pyrstmdb.core import Core
from pyrstmdb.engine.commands import CreateInstance, PutMachine, parse_batch
from pyrstmdb.storage import salvage
from pyrstmdb.storage.check import run_check
from pyrstmdb.storage.disk import DiskStore
from pyrstmdb.storage.snapshot import load_latest_checkpoint
from pyrstmdb.storage.wal import Wal, offset_position, offset_segment, segment_name

MACHINE = {"states": ["s"], "initial": "s", "transitions": []}
PAD = "x" * 120


def _open(path: Path) -> Core:
    return Core(DiskStore.open(str(path), segment_size=700), clock=lambda: 1_700_000_000_000)


def _create(core: Core, name: str) -> int:
    _, offset = core.write(CreateInstance("m", 1, name, {"pad": PAD}))
    core.wait(offset)
    return offset


def _filled(path: Path, count: int) -> tuple[Core, list[int]]:
    core = _open(path)
    core.wait(core.put_machine(PutMachine("m", 1, MACHINE))[1])
    return core, [_create(core, f"i{n}") for n in range(count)]


def _segment(path: Path, offset: int) -> Path:
    return path / "wal" / segment_name(offset_segment(offset))


def _flip(path: Path, offset: int, delta: int = 30) -> None:
    """Flip a payload byte of the record at ``offset`` (its checksum no longer matches)."""
    segment = _segment(path, offset)
    data = bytearray(segment.read_bytes())
    data[offset_position(offset) + delta] ^= 0xFF
    segment.write_bytes(bytes(data))


def _wal_bytes(path: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted((path / "wal").iterdir())}


def test_a_consistent_log_needs_no_salvage(tmp_path: Path) -> None:
    core, _ = _filled(tmp_path, 10)
    core.close()
    assert salvage.plan(str(tmp_path / "wal"), None) is None


def test_damage_in_a_middle_segment_keeps_what_comes_before(tmp_path: Path) -> None:
    core, offsets = _filled(tmp_path, 20)
    core.close()
    damaged = offsets[8]
    assert offset_segment(damaged) < offset_segment(offsets[-1])  # later segments exist
    _flip(tmp_path, damaged)
    before = _wal_bytes(tmp_path)
    wal_dir = str(tmp_path / "wal")

    found = salvage.plan(wal_dir, None)
    assert found is not None
    assert found.kept_records == 1 + 8  # the machine and i0..i7
    assert found.dropped_records == 20 - 8 - 1  # i8 is damaged, the others are whole
    assert "record checksum mismatch" in found.reason
    cut = _segment(tmp_path, damaged)
    assert found.cut_path == str(cut) and found.cut_position == offset_position(damaged)
    later = [n for n in before if n > cut.name]
    assert [Path(p).name for p in found.later] == later
    assert found.dropped_files == len(later) + 1
    assert found.dropped_bytes == sum(len(before[n]) for n in later) + len(before[cut.name]) - (
        offset_position(damaged)
    )

    moved = salvage.apply(found, wal_dir)
    assert [target for _, target in moved] == [
        f"{cut}.salvaged",
        *(str(tmp_path / "wal" / f"{n}.salvaged") for n in later),
    ]
    after = _wal_bytes(tmp_path)
    assert after[cut.name] == before[cut.name][: offset_position(damaged)]
    assert after[f"{cut.name}.salvaged"] == before[cut.name][offset_position(damaged) :]
    for name in later:
        assert name not in after and after[f"{name}.salvaged"] == before[name]

    reopened = _open(tmp_path)
    assert sorted(reopened.state.instances) == sorted(f"i{n}" for n in range(8))
    _create(reopened, "new")
    reopened.close()
    assert sorted(_open(tmp_path).state.instances) == sorted([*(f"i{n}" for n in range(8)), "new"])


def test_an_atomic_batch_cut_by_the_damage_is_dropped_whole(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    core, _ = _filled(tmp_path, 1)
    ops = [
        {"op": "CREATE_INSTANCE", "params": {"machine": "m", "version": 1, "instance_id": f"b{n}"}}
        for n in range(3)
    ]
    parsed, mode = parse_batch({"ops": ops, "mode": "atomic"})
    core.wait(core.batch(parsed, mode)[1])
    last = max(core.state.instances[f"b{n}"].last_wal_offset for n in range(3))
    core.close()
    _flip(tmp_path, last, 24)
    found = salvage.plan(str(tmp_path / "wal"), None)
    assert found is not None
    assert found.kept_records == 2  # the machine and i0: b0 and b1 would be half a batch
    assert found.dropped_records == 2  # b0 and b1 are whole records, b2 is damaged
    salvage.apply(found, str(tmp_path / "wal"))
    with caplog.at_level(logging.WARNING):
        reopened = _open(tmp_path)
    assert sorted(reopened.state.instances) == ["i0"]
    assert not [r for r in caplog.records if "atomic batch" in r.getMessage()]
    reopened.close()


def test_a_missing_segment_ends_the_prefix(tmp_path: Path) -> None:
    core, offsets = _filled(tmp_path, 20)
    core.close()
    missing = _segment(tmp_path, offsets[10])
    kept_segments = sorted(p.name for p in (tmp_path / "wal").iterdir() if p.name < missing.name)
    missing.unlink()
    found = salvage.plan(str(tmp_path / "wal"), None)
    assert found is not None
    assert found.reason == f"segment {missing.name} is missing"
    assert Path(found.cut_path).name == kept_segments[-1]
    assert found.cut_position == found.cut_size  # nothing of that segment is dropped
    salvage.apply(found, str(tmp_path / "wal"))
    names = sorted(p.name for p in (tmp_path / "wal").iterdir())
    assert [n for n in names if n.endswith(".wal")] == kept_segments
    reopened = _open(tmp_path)
    assert len(reopened.state.instances) == found.kept_records - 1
    reopened.close()


def test_damage_before_the_checkpoint_is_not_salvaged(tmp_path: Path) -> None:
    core, _ = _filled(tmp_path, 20)
    assert core.compact(True).segments_deleted >= 1
    position = core.state.instances["i19"].last_wal_offset
    _create(core, "after")
    core.close()
    saved = load_latest_checkpoint(str(tmp_path / "snapshots"))
    assert saved is not None and offset_segment(saved.offset) == offset_segment(position)
    _flip(tmp_path, position)
    with pytest.raises(salvage.SalvageRefused, match="before the checkpoint's position"):
        salvage.plan(str(tmp_path / "wal"), saved.offset)


def test_check_offers_a_salvage_of_an_unreadable_entry_and_performs_it(tmp_path: Path) -> None:
    core, _ = _filled(tmp_path, 5)
    core.close()
    with Wal.open(tmp_path / "wal", segment_size=700) as log:  # a valid frame, not an entry
        log.wait_durable(log.append([(2, b"not json")])[0])
    out = io.StringIO()
    assert run_check(str(tmp_path), False, out) == 1
    report = out.getvalue()
    assert "problem: unreadable record payload" in report and "result: DAMAGED" in report
    assert "salvage: --salvage would keep the first 6 records" in report

    out = io.StringIO()
    assert run_check(str(tmp_path), False, out, salvage_log=True) == 0, out.getvalue()
    report = out.getvalue()
    assert "dropped 1 record (32 bytes, 1 file)" in report  # 24-byte header + 8-byte payload
    assert "result: OK" in report
    reopened = _open(tmp_path)
    assert sorted(reopened.state.instances) == [f"i{n}" for n in range(5)]
    reopened.close()
