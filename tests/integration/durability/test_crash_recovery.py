"""SIGKILL a real writer process at random moments; every acknowledged write survives.

After each kill the database is reopened: every write the child reported as
acknowledged must be there with its state and ctx, and nothing that was not
acknowledged may appear half-applied (a counter's ctx is always a whole,
logged update; an atomic batch is all three members or none).
"""

from __future__ import annotations

import os
import random
import time
from pathlib import Path

import pytest
from line_child import LineChild

from pyrstmdb import Database

CHILD = Path(__file__).with_name("crash_child.py")


class Child(LineChild):
    def __init__(self, path: Path, mode: str, seed: int) -> None:
        super().__init__(CHILD, [str(path), mode, str(seed)], "writer")

    def wait_ready(self, timeout: float = 20) -> None:
        super().wait_ready(timeout)


def _acked_counters(lines: list[str]) -> dict[str, tuple[int, int]]:
    acked: dict[str, tuple[int, int]] = {}
    for line in lines:
        parts = line.split()
        if parts[0] == "ack":
            name, k, offset = parts[1], int(parts[2]), int(parts[3])
            if k >= acked.get(name, (0, 0))[0]:
                acked[name] = (k, offset)
    return acked


def _check_counters(path: Path, acked: dict[str, tuple[int, int]]) -> int:
    with Database(path) as db:
        for name, (k, offset) in acked.items():
            got = db.get_instance(name)
            assert got.ctx["k"] >= k, f"{name}: acknowledged k={k} lost (found {got.ctx['k']})"
            if got.ctx["k"] == k:
                assert got.last_wal_offset == offset
            assert set(got.ctx) == {"k", "pad"}
        # the log agrees with memory: each counter's logged k goes up by one each time
        seen: dict[str, int] = {}
        for record in db.wal_read(0).records:
            entry = record.entry
            if entry["type"] == "apply_event" and "k" in entry["payload"]:
                name = entry["instance_id"]
                if name in seen:
                    assert entry["payload"]["k"] == seen[name] + 1
                seen[name] = entry["payload"]["k"]
        return db.wal_stats().entry_count


def _run_cycles(path: Path, mode: str, kills: int, seed: int, tear: bool = False) -> None:
    rng = random.Random(seed)
    acked: dict[str, tuple[int, int]] = {}
    for cycle in range(kills):
        child = Child(path, mode, seed + cycle)
        child.wait_ready()
        time.sleep(rng.uniform(0.15, 0.6))
        lines = child.kill()
        assert any(line.startswith("ack") for line in lines), "no write was acknowledged"
        for name, value in _acked_counters(lines).items():
            if value[0] >= acked.get(name, (0, 0))[0]:
                acked[name] = value
        if tear:
            _tear_tail(path, rng)
        if mode == "batch":
            _check_batches(path, lines)
        else:
            _check_counters(path, acked)


def _tear_tail(path: Path, rng: random.Random) -> None:
    segments = sorted((path / "wal").glob("*.wal"))
    garbage = rng.choice([b"WLOG\x03", b"\x00" * 7, os.urandom(rng.randint(1, 40))])
    with open(segments[-1], "ab") as handle:
        handle.write(garbage)


def _check_batches(path: Path, lines: list[str]) -> None:
    acked: dict[int, int] = {}
    for line in lines:
        parts = line.split()
        if parts[0] == "ackb":
            acked[int(parts[1])] = max(acked.get(int(parts[1]), 0), int(parts[2]))
    with Database(path) as db:
        for group in range(3):
            values = {db.get_instance(f"g{group}{m}").ctx["b"] for m in "abc"}
            assert len(values) == 1, f"group {group} half-applied: {values}"
            assert values.pop() >= acked.get(group, 0)


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_sigkill_plain_writes(tmp_path: Path) -> None:
    _run_cycles(tmp_path / "data", "plain", kills=8, seed=11)


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_sigkill_with_compaction_and_rotation(tmp_path: Path) -> None:
    _run_cycles(tmp_path / "data", "compact", kills=6, seed=23)


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_sigkill_then_torn_tail(tmp_path: Path) -> None:
    _run_cycles(tmp_path / "data", "plain", kills=5, seed=37, tear=True)


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_sigkill_loop_driven_rounds_with_compaction(tmp_path: Path) -> None:
    # As in the server: the event loop runs the fsync rounds, a helper process syncs.
    _run_cycles(tmp_path / "data", "loop", kills=6, seed=53)


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_sigkill_atomic_batches(tmp_path: Path) -> None:
    _run_cycles(tmp_path / "data", "batch", kills=5, seed=41)


@pytest.mark.slow
def test_rotation_and_compaction_really_happened(tmp_path: Path) -> None:
    path = tmp_path / "data"
    _run_cycles(path, "compact", kills=2, seed=5)
    with Database(path) as db:
        stats = db.wal_stats()
        first = db.wal_read(0, limit=1).records[0].offset
    assert stats.latest_offset >> 40 >= 2  # writes went past the first 1 MiB segment
    assert first >> 40 >= 2  # segment 1 was compacted away
