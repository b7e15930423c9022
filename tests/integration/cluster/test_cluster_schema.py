"""The ``rstmdb`` schema: created once by whichever node comes first, versioned, fixed P."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from pathlib import Path

import asyncpg
import pytest
from cluster_helpers import execute, fetch

from pyrstmdb.cluster.errors import PartitionCountMismatch, SchemaTooNew
from pyrstmdb.cluster.schema import SCHEMA_VERSION, ensure_schema

# Each racer connects, says it is ready, waits for the start file, then creates or
# checks the schema.
_RACER = """
import asyncio, os, sys, time
import asyncpg
from pyrstmdb.cluster.schema import ensure_schema

async def main(dsn, partitions):
    conn = await asyncpg.connect(dsn)
    open(sys.argv[3] + "." + sys.argv[4], "w").close()
    while not os.path.exists(sys.argv[3]):
        time.sleep(0.001)
    await ensure_schema(conn, partitions)
    await conn.close()

asyncio.run(main(sys.argv[1], int(sys.argv[2])))
"""


async def _ensure(dsn: str, partitions: int) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        await ensure_schema(conn, partitions)
    finally:
        await conn.close()


@pytest.mark.slow
def test_schema_created_by_racing_nodes_exactly_once(dsn: str, tmp_path: Path) -> None:
    go = tmp_path / "go"
    racers = [
        subprocess.Popen(
            [sys.executable, "-c", _RACER, dsn, "3", str(go), str(n)],
            stderr=subprocess.PIPE,
            text=True,
        )
        for n in range(4)
    ]
    deadline = time.monotonic() + 60
    while len(list(tmp_path.glob("go.*"))) < 4:
        assert time.monotonic() < deadline and all(p.poll() is None for p in racers)
        time.sleep(0.01)
    go.touch()
    errors = [(p.wait(60), p.stderr.read() if p.stderr else "") for p in racers]
    assert errors == [(0, "")] * 4
    version = asyncio.run(fetch(dsn, "SELECT version FROM rstmdb.schema_version"))
    assert [r["version"] for r in version] == [SCHEMA_VERSION]
    rows = asyncio.run(fetch(dsn, "SELECT partition, epoch, head FROM rstmdb.partitions"))
    assert sorted(tuple(r) for r in rows) == [(0, 0, 0), (1, 0, 0), (2, 0, 0)]
    setting = asyncio.run(fetch(dsn, "SELECT name, value FROM rstmdb.settings"))
    assert [tuple(r) for r in setting] == [("partitions", "3")]


def test_tables_of_the_schema(dsn: str) -> None:
    asyncio.run(_ensure(dsn, 1))
    rows = asyncio.run(
        fetch(
            dsn,
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'rstmdb'",
        )
    )
    assert sorted(r["table_name"] for r in rows) == [
        "checkpoints",
        "log",
        "machines",
        "nodes",
        "partitions",
        "schema_version",
        "settings",
    ]
    asyncio.run(_ensure(dsn, 1))  # a second node finds it and agrees


def test_newer_schema_refused_naming_both_versions(dsn: str) -> None:
    asyncio.run(_ensure(dsn, 1))
    asyncio.run(execute(dsn, "UPDATE rstmdb.schema_version SET version = $1", SCHEMA_VERSION + 1))
    with pytest.raises(SchemaTooNew) as caught:
        asyncio.run(_ensure(dsn, 1))
    message = str(caught.value)
    assert f"version {SCHEMA_VERSION + 1}" in message
    assert f"up to version {SCHEMA_VERSION}" in message
    assert "\n" not in message


def test_partition_count_mismatch_refused_naming_both(dsn: str) -> None:
    asyncio.run(_ensure(dsn, 4))
    with pytest.raises(PartitionCountMismatch) as caught:
        asyncio.run(_ensure(dsn, 1))
    message = str(caught.value)
    assert "has 4 partitions" in message
    assert "cluster.partitions = 1" in message
    assert "\n" not in message
    rows = asyncio.run(fetch(dsn, "SELECT count(*) AS n FROM rstmdb.partitions"))
    assert rows[0]["n"] == 4
