"""The comparison's workload and verification against pyrstmdb (server and embedded) and SQLite.

Tiny runs (a few instances per client) of the real code path of ``make bench-compare``:
start the system, both phases, the verification, the table row. Redis and PostgreSQL are
left to ``make bench-compare`` itself.
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
import subprocess
import sys
from contextlib import closing
from pathlib import Path

import pytest
from bench.compare import installer, peer_redis, pgserver, procstat, resp, runner
from bench.compare.peer_sqlite import SqliteTarget
from bench.compare.report import Row, table
from bench.compare.runner import Plan, VerificationError
from bench.compare.systems import SYSTEMS
from bench.compare.workload import RECORDS_PER_INSTANCE, final_ctx

PLANS = [Plan(1, 30.0, limit=4), Plan(4, 30.0, limit=3)]


@pytest.mark.parametrize("name", ["rstmdb", "embedded", "sqlite"])
def test_a_verified_run_gives_one_row_per_client_count(tmp_path: Path, name: str) -> None:
    rows = asyncio.run(SYSTEMS[name](tmp_path, PLANS))

    assert [(r.clients, r.instances) for r in rows] == [(1, 4), (4, 12)]
    for one in rows:
        assert one.events_per_s > 0 and one.creates_per_s > 0
        assert 0 < one.p50_ms <= one.p99_ms
        if name == "sqlite":
            assert one.fsyncs_per_write is None
        else:
            # every_write: one fsync per write at most (group commit can share one).
            assert one.fsyncs_per_write is not None and 0 < one.fsyncs_per_write <= 1
        assert one.cpu_us_per_write is not None and one.cpu_us_per_write >= 0
    assert f"| {rows[0].label}" in table(rows)


def _sqlite_run(tmp_path: Path) -> tuple[SqliteTarget, list[str], int]:
    """A verified SQLite run of 3 instances; its ids and the record count before it."""
    target = SqliteTarget(tmp_path)
    plan = Plan(1, 30.0, limit=3, prefix="v")
    measured = asyncio.run(runner.run(target, plan))
    ids = [f"v-0-{n}" for n in range(measured.instances)]
    count = asyncio.run(target.record_count())
    return target, ids, count - RECORDS_PER_INSTANCE * len(ids)


def _tamper(target: SqliteTarget, sql: str, *params: str) -> None:
    with closing(sqlite3.connect(target.path)) as db, db:
        db.execute(sql, params)


def _verify(target: SqliteTarget, ids: list[str], before: int) -> None:
    asyncio.run(runner.verify(target, "v", ids, before))


def test_verification_refuses_a_wrong_ctx(tmp_path: Path) -> None:
    target, ids, before = _sqlite_run(tmp_path)
    assert asyncio.run(target.final_states(ids))[ids[1]] == ("delivered", final_ctx(ids[1]))
    _tamper(target, "UPDATE instances SET ctx = '{\"amount\": 500}' WHERE id = ?", ids[1])

    with pytest.raises(VerificationError, match=f"instance {ids[1]} ended delivered"):
        _verify(target, ids, before)


def test_verification_refuses_a_record_too_many(tmp_path: Path) -> None:
    target, ids, before = _sqlite_run(tmp_path)
    _tamper(target, "INSERT INTO log (instance_id, to_state) VALUES ('extra', 'created')")

    with pytest.raises(VerificationError, match="13 records logged, expected exactly 12"):
        _verify(target, ids, before)


def test_verification_refuses_a_guard_that_let_pay_through(tmp_path: Path) -> None:
    target, ids, before = _sqlite_run(tmp_path)
    _tamper(target, "UPDATE instances SET ctx = '{\"amount\": 5}' WHERE id = 'v-over-limit'")

    with pytest.raises(VerificationError, match="PAY on v-over-limit: accepted, expected GUARD"):
        _verify(target, ids, before)


def test_ratios_compare_each_row_with_pyrstmdb_at_the_same_client_count() -> None:
    def make(label: str, clients: int, rate: float, in_process: bool = False) -> Row:
        return Row(label, clients, in_process, 10, rate, rate, 1.0, 2.0, None, 10.0)

    rows = [
        make("pyrstmdb server", 1, 2000),
        make("pyrstmdb server", 32, 20000),
        make("Redis", 1, 1000),
        make("Redis", 32, 40000),
        make("SQLite", 1, 4000, in_process=True),
    ]
    lines = {}
    for line in table(rows).splitlines():
        cells = line.split("|")
        if line.startswith("| "):
            lines[cells[1].strip() + cells[2].strip()] = line

    assert lines["Redis1"].rstrip(" |").endswith("2.00")
    assert lines["Redis32"].rstrip(" |").endswith("0.50")
    assert lines["pyrstmdb server32"].rstrip(" |").endswith("1.00")
    assert lines["SQLite *1"].rstrip(" |").endswith("–")  # no embedded row to compare with
    assert "n/a" in lines["Redis1"]


def test_a_missing_server_without_root_names_the_packages_to_install(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    monkeypatch.setattr(peer_redis, "find_binary", lambda: None)
    monkeypatch.setattr(pgserver, "find_bin_dir", lambda: None)

    with pytest.raises(installer.MissingPeer) as missing:
        installer.ensure_servers({"redis", "postgres", "sqlite"})

    assert "apt-get install redis-server postgresql" in str(missing.value)
    installer.ensure_servers({"rstmdb", "embedded", "sqlite"})  # nothing to install for these


def test_the_bench_extra_lists_the_postgresql_client() -> None:
    assert any(r.startswith("asyncpg>=") for r in installer.bench_requirements())


def test_resp_replies_are_read_as_redis_sends_them() -> None:
    async def read(data: bytes) -> object:
        reader = asyncio.StreamReader()
        reader.feed_data(data)
        reader.feed_eof()
        return await resp.read_reply(reader)

    assert resp.encode("XLEN", "log") == b"*2\r\n$4\r\nXLEN\r\n$3\r\nlog\r\n"
    assert asyncio.run(read(b"*2\r\n$4\r\npaid\r\n$-1\r\n")) == [b"paid", None]
    assert asyncio.run(read(b":12\r\n")) == 12
    error = asyncio.run(read(b"-GUARD_FAILED ctx.amount <= 1000 is false\r\n"))
    assert isinstance(error, resp.RespError) and error.code == "GUARD_FAILED"
    with pytest.raises(ConnectionError):
        asyncio.run(read(b"$5\r\npa"))


def test_server_cpu_counts_the_children_a_server_has_reaped() -> None:
    # The root starts a child that burns CPU, reaps it, then waits to be stopped.
    burner = "import time; end = time.process_time() + 0.3\nwhile time.process_time() < end: pass"
    script = f"import subprocess, sys, time; subprocess.run([sys.executable, '-c', {burner!r}]);"
    script += " print('reaped', flush=True); time.sleep(60)"
    root = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        assert root.stdout is not None and root.stdout.readline() == "reaped\n"
        used = procstat.tree_cpu_seconds([root.pid])
        assert used is not None and used >= 0.25
    finally:
        root.kill()
        root.wait()
