"""A real PostgreSQL for the cluster tests: one server per test process, one database per test.

The server is Debian's PostgreSQL, initialised in a temporary directory and
started on a free loopback port by :mod:`bench.compare.pgserver` (``fsync=on``;
as root it runs as the unprivileged ``nobody``), and stopped by PID at the
end. Without PostgreSQL installed the tests fail, naming the package;
``make test`` installs it when it can.
"""

from __future__ import annotations

import asyncio
import itertools
import shutil
import tempfile
from collections.abc import Iterator

import asyncpg
import pytest
from bench.compare import pgserver

_names = itertools.count(1)


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


@pytest.fixture
def dsn(pg: pgserver.PostgresServer) -> Iterator[str]:
    """A fresh, empty database for this test."""
    name = f"rstmdb_test_{next(_names)}"
    asyncio.run(_admin(pg, f"CREATE DATABASE {name}"))
    yield pg.dsn(name)
    asyncio.run(_admin(pg, f"DROP DATABASE {name} WITH (FORCE)"))
