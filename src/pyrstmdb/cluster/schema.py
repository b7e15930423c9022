"""The ``rstmdb`` schema: created and versioned by the first node to start.

Tables (one PostgreSQL schema, ``rstmdb``):

* ``schema_version``: one row, the version of this layout (``SCHEMA_VERSION``).
* ``settings``: cluster-wide settings fixed at creation (``partitions``).
* ``machines``: name, version, definition (JSON as received), checksum.
* ``partitions``: one row per partition: owner node, epoch (the fencing token),
  head (sequence of the last committed entry, 0 when empty), lease expiry by
  PostgreSQL's clock.
* ``log``: each partition's entries: partition, sequence, epoch of the writer,
  type code and the entry in its STORAGE §3.3 JSON form (kept as written).
* ``checkpoints``: the latest checkpoint of each partition: the offset it
  covers up to (exclusive) and its data.
* ``nodes``: node id, advertised address, last heartbeat by PostgreSQL's clock.

Nodes starting at once serialise on a transaction-scoped advisory lock, so
exactly one creates the schema and the others find it.
"""

from __future__ import annotations

from typing import Any

from pyrstmdb.cluster.errors import PartitionCountMismatch, SchemaTooNew
from pyrstmdb.cluster.offsets import MAX_PARTITIONS

SCHEMA_VERSION = 1
#: ``pg_advisory_xact_lock`` key of schema creation: "rstmdb" in ASCII.
SCHEMA_LOCK_KEY = 0x7273746D6462

_CREATE = """
CREATE SCHEMA IF NOT EXISTS rstmdb;
CREATE TABLE rstmdb.schema_version (
    one boolean PRIMARY KEY DEFAULT true CHECK (one),
    version integer NOT NULL
);
CREATE TABLE rstmdb.settings (
    name text PRIMARY KEY,
    value text NOT NULL
);
CREATE TABLE rstmdb.machines (
    name text NOT NULL,
    version integer NOT NULL,
    definition json NOT NULL,
    checksum text NOT NULL,
    PRIMARY KEY (name, version)
);
CREATE TABLE rstmdb.partitions (
    partition integer PRIMARY KEY,
    owner text,
    epoch bigint NOT NULL DEFAULT 0,
    head bigint NOT NULL DEFAULT 0,
    lease_expires timestamptz
);
CREATE TABLE rstmdb.log (
    partition integer NOT NULL,
    sequence bigint NOT NULL,
    epoch bigint NOT NULL,
    type smallint NOT NULL,
    entry json NOT NULL,
    PRIMARY KEY (partition, sequence)
);
CREATE TABLE rstmdb.checkpoints (
    partition integer PRIMARY KEY,
    end_offset bigint NOT NULL,
    data bytea NOT NULL,
    epoch bigint NOT NULL,
    created_at timestamptz NOT NULL DEFAULT clock_timestamp()
);
CREATE TABLE rstmdb.nodes (
    node_id text PRIMARY KEY,
    advertise_addr text NOT NULL,
    last_heartbeat timestamptz NOT NULL
);
"""


async def ensure_schema(conn: Any, partitions: int) -> None:
    """Create the schema if absent, else check its version and partition count.

    Raises :class:`SchemaTooNew` or :class:`PartitionCountMismatch` (one line each).
    """
    if not 1 <= partitions <= MAX_PARTITIONS:
        raise ValueError(f"cluster.partitions must be 1..{MAX_PARTITIONS}, not {partitions}")
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock($1)", SCHEMA_LOCK_KEY)
        if await conn.fetchval("SELECT to_regclass('rstmdb.schema_version')") is None:
            await _create(conn, partitions)
            return
        version = await conn.fetchval("SELECT version FROM rstmdb.schema_version")
        if version > SCHEMA_VERSION:
            raise SchemaTooNew(version, SCHEMA_VERSION)
        existing = await stored_partitions(conn)
        if existing != partitions:
            raise PartitionCountMismatch(existing, partitions)


async def stored_partitions(conn: Any) -> int:
    value = await conn.fetchval("SELECT value FROM rstmdb.settings WHERE name = 'partitions'")
    return int(value)


async def _create(conn: Any, partitions: int) -> None:
    await conn.execute(_CREATE)
    await conn.execute("INSERT INTO rstmdb.schema_version (version) VALUES ($1)", SCHEMA_VERSION)
    await conn.execute(
        "INSERT INTO rstmdb.settings (name, value) VALUES ('partitions', $1)", str(partitions)
    )
    await conn.execute(
        "INSERT INTO rstmdb.partitions (partition) SELECT generate_series(0, $1 - 1)",
        partitions,
    )
