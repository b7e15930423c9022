"""``rstmdb cluster status --dsn DSN [--json]``, run as the operator runs it."""

from __future__ import annotations

import asyncio
import subprocess
from typing import Any

import orjson
import pytest
from cluster_helpers import created, execute
from server_harness import run_rstmdb

from pyrstmdb.cluster.ownership import Ownership
from pyrstmdb.cluster.pglog import PartitionLog
from pyrstmdb.cluster.schema import ensure_schema
from pyrstmdb.cluster.session import SessionSettings, create_pool

LEASE_MS = 30_000


def _rstmdb(*args: str) -> subprocess.CompletedProcess[str]:
    return run_rstmdb(args)


async def _cluster(dsn: str) -> int:
    """Two partitions: 0 owned by n1 with 3 entries and a checkpoint, 1 released by n2."""
    pool = await create_pool(dsn, SessionSettings(lease_ms=LEASE_MS))
    async with pool.acquire() as conn:
        await ensure_schema(conn, 2)
    n1 = Ownership(pool, "n1", "127.0.0.1:7401", LEASE_MS)
    n2 = Ownership(pool, "n2", "127.0.0.1:7402", LEASE_MS)
    await n1.heartbeat()
    await n2.heartbeat()
    lease = await n1.acquire(0)
    assert lease is not None
    log = await PartitionLog.open(pool, 0, 2, lease.epoch)
    offsets = await log.append([created(1), created(2), created(3)])
    await log.save_checkpoint(offsets[1], b"ckpt")
    other = await n2.acquire(1)
    assert other is not None
    assert await n2.release(other)
    await pool.close()
    return offsets[1]


def test_status_json_document(dsn: str) -> None:
    checkpoint = asyncio.run(_cluster(dsn))
    done = _rstmdb("cluster", "status", "--dsn", dsn, "--json")
    assert done.returncode == 0, done.stderr
    doc: dict[str, Any] = orjson.loads(done.stdout)
    assert list(doc) == ["partitions", "nodes"]
    first, second = doc["partitions"]
    assert list(first) == ["partition", "owner", "epoch", "head", "lease_ms_left", "checkpoint"]
    left = first.pop("lease_ms_left")
    assert 20_000 < left <= LEASE_MS
    assert first == {
        "partition": 0,
        "owner": "n1",
        "epoch": 1,
        "head": 4 << 12,
        "checkpoint": checkpoint,
    }
    assert second == {
        "partition": 1,
        "owner": None,
        "epoch": 1,
        "head": (1 << 12) | 1,
        "lease_ms_left": 0,
        "checkpoint": None,
    }
    assert [(n["node_id"], n["advertise_addr"]) for n in doc["nodes"]] == [
        ("n1", "127.0.0.1:7401"),
        ("n2", "127.0.0.1:7402"),
    ]
    assert all(0 <= n["last_heartbeat_ms_ago"] < 20_000 for n in doc["nodes"])


def test_status_table(dsn: str) -> None:
    asyncio.run(_cluster(dsn))
    done = _rstmdb("cluster", "status", "--dsn", dsn)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].split()[:3] == ["partition", "owner", "epoch"]
    assert lines[1].split()[:4] == ["0", "n1", "1", str(4 << 12)]
    assert lines[2].split() == ["1", "none", "1", str((1 << 12) | 1), "-", "-"]
    assert lines[4].split()[:2] == ["node", "address"]
    assert lines[5].split()[:2] == ["n1", "127.0.0.1:7401"]


@pytest.mark.slow
def test_status_of_an_expired_lease(dsn: str) -> None:
    asyncio.run(_cluster(dsn))
    expire = "UPDATE rstmdb.partitions SET lease_expires = clock_timestamp() WHERE partition = 0"
    asyncio.run(execute(dsn, expire))
    table = _rstmdb("cluster", "status", "--dsn", dsn)
    assert table.stdout.splitlines()[1].split()[:5] == ["0", "none", "(was", "n1)", "1"]
    doc = orjson.loads(_rstmdb("cluster", "status", "--dsn", dsn, "--json").stdout)
    assert (doc["partitions"][0]["owner"], doc["partitions"][0]["lease_ms_left"]) == (None, 0)


def test_status_of_a_database_without_a_cluster_is_one_line(dsn: str) -> None:
    done = _rstmdb("cluster", "status", "--dsn", dsn)
    assert done.returncode == 1
    assert done.stdout == ""
    assert done.stderr == "rstmdb: no cluster here: the database has no rstmdb schema\n"


def test_status_with_postgres_unreachable_is_one_line() -> None:
    done = _rstmdb("cluster", "status", "--dsn", "postgresql://u@127.0.0.1:1/db", "--json")
    assert done.returncode == 1
    assert done.stderr.startswith("rstmdb: cannot connect to PostgreSQL: ")
    assert done.stderr.count("\n") == 1
