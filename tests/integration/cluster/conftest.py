"""A real PostgreSQL for the cluster tests: one server per test process, an empty
database for each test.

The server is Debian's PostgreSQL, initialised in a temporary directory and
started on a free loopback port by :mod:`bench.compare.pgserver` (``fsync=on``;
as root it runs as the unprivileged ``nobody``), and stopped by PID at the
end. Without PostgreSQL installed the tests fail, naming the package;
``make test`` installs it when it can.
"""

from __future__ import annotations

import asyncio
import shutil
import tempfile
from collections.abc import Iterator

import asyncpg
import pytest
from bench.compare import pgserver


@pytest.fixture(scope="session")
def pg() -> Iterator[pgserver.PostgresServer]:
    if pgserver.find_bin_dir() is None:
        pytest.fail(
            "PostgreSQL is not installed: install the Debian package 'postgresql' "
            "(apt-get install postgresql), or run `make test` as root to have it installed"
        )
    root = tempfile.mkdtemp(prefix="rstmdb-pg-")
    try:
        with pgserver.running(root) as server:
            yield server
    finally:
        shutil.rmtree(root, ignore_errors=True)


async def _admin(pg: pgserver.PostgresServer, statement: str) -> None:
    conn = await asyncpg.connect(pg.dsn())
    try:
        await conn.execute(statement)
    finally:
        await conn.close()


@pytest.fixture(scope="session")
def _database(pg: pgserver.PostgresServer) -> str:
    asyncio.run(_admin(pg, "CREATE DATABASE rstmdb_test"))
    return pg.dsn("rstmdb_test")


_RESET = """
SELECT pg_terminate_backend(pid) FROM pg_stat_activity
 WHERE datname = current_database() AND pid <> pg_backend_pid();
DROP SCHEMA IF EXISTS rstmdb CASCADE;
"""


@pytest.fixture
def dsn(_database: str) -> Iterator[str]:
    """A database without any cluster in it; emptied again after the test."""
    asyncio.run(_reset(_database))
    yield _database
    asyncio.run(_reset(_database))


async def _reset(dsn: str) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(_RESET)
    finally:
        await conn.close()
