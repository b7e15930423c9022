"""``rstmdb cluster status --dsn DSN [--json]``: partitions and nodes, read from PostgreSQL.

Every age and lease is computed by PostgreSQL's clock. ``owner`` is the node
holding a live lease (``null`` once the lease is released or expired; the text
form then names the last holder). ``head`` and ``checkpoint`` are offsets: the
offset the next entry will get, and the offset the checkpoint covers up to.
The JSON document is the one CLUSTER §6 specifies.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from typing import Any, TextIO

import orjson

from pyrstmdb.cluster.offsets import offset_of
from pyrstmdb.cluster.schema import stored_partitions

_PARTITIONS = """
SELECT p.partition, p.owner, p.epoch, p.head,
       CASE WHEN p.lease_expires > clock_timestamp()
            THEN floor(extract(epoch FROM p.lease_expires - clock_timestamp()) * 1000)::bigint
       END AS lease_ms_left,
       c.end_offset AS checkpoint
  FROM rstmdb.partitions p LEFT JOIN rstmdb.checkpoints c USING (partition)
 ORDER BY p.partition
"""
_NODES = """
SELECT node_id, advertise_addr,
       floor(extract(epoch FROM clock_timestamp() - last_heartbeat) * 1000)::bigint AS ago
  FROM rstmdb.nodes ORDER BY node_id
"""


class StatusError(Exception):
    """Why no status could be read, for one line."""


def add_parser(commands: Any) -> None:
    """Add ``cluster status`` to the ``rstmdb`` sub-command table."""
    cluster = commands.add_parser("cluster", help="cluster mode (PostgreSQL) tools")
    actions = cluster.add_subparsers(dest="cluster_command", metavar="{status}", required=True)
    status = actions.add_parser("status", help="partitions, owners, leases and nodes")
    status.add_argument("--dsn", required=True, help="PostgreSQL URI of the cluster")
    status.add_argument("--json", action="store_true", help="print one JSON document")


def run(args: argparse.Namespace, out: TextIO = sys.stdout) -> int:
    """The ``cluster status`` command: 0 and the status, or 1 and one ``rstmdb:`` line."""
    try:
        doc, last_owners = asyncio.run(read_status(args.dsn))
    except StatusError as exc:
        print(f"rstmdb: {exc}", file=sys.stderr, flush=True)
        return 1
    out.write(orjson.dumps(doc).decode() + "\n" if args.json else render(doc, last_owners))
    out.flush()
    return 0


async def collect(dsn: str, timeout: float = 10.0) -> dict[str, Any]:
    """The CLUSTER §6 status document."""
    doc, _ = await read_status(dsn, timeout)
    return doc


async def read_status(dsn: str, timeout: float = 10.0) -> tuple[dict[str, Any], list[str | None]]:
    """The status document, and each partition's last recorded owner (live or not)."""
    import asyncpg  # only this command needs it in the ``rstmdb`` script

    try:
        conn = await asyncpg.connect(dsn, timeout=timeout)
    except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
        raise StatusError(f"cannot connect to PostgreSQL: {exc}") from None
    try:
        if await conn.fetchval("SELECT to_regclass('rstmdb.schema_version')") is None:
            raise StatusError("no cluster here: the database has no rstmdb schema")
        async with conn.transaction(isolation="repeatable_read", readonly=True):
            partitions = await stored_partitions(conn)
            parts = await conn.fetch(_PARTITIONS)
            nodes = await conn.fetch(_NODES)
    except asyncpg.PostgresError as exc:
        raise StatusError(f"cannot read the cluster status: {exc}") from None
    finally:
        await conn.close()
    doc = {
        "partitions": [_partition(row, partitions) for row in parts],
        "nodes": [
            {
                "node_id": row["node_id"],
                "advertise_addr": row["advertise_addr"],
                "last_heartbeat_ms_ago": max(0, row["ago"]),
            }
            for row in nodes
        ],
    }
    return doc, [row["owner"] for row in parts]


def _partition(row: Any, partitions: int) -> dict[str, Any]:
    live = row["lease_ms_left"] is not None and row["owner"] is not None
    return {
        "partition": row["partition"],
        "owner": row["owner"] if live else None,
        "epoch": row["epoch"],
        "head": offset_of(row["head"] + 1, row["partition"], partitions),
        "lease_ms_left": row["lease_ms_left"] if live else 0,
        "checkpoint": row["checkpoint"],
    }


def render(doc: dict[str, Any], last_owners: list[str | None]) -> str:
    """The human form: one table of partitions, one of nodes."""
    lines = ["partition  owner                 epoch  head              lease left  checkpoint"]
    for p, last in zip(doc["partitions"], last_owners, strict=True):
        owner = p["owner"] or (f"none (was {last})" if last else "none")
        lease = f"{p['lease_ms_left']} ms" if p["owner"] else "-"
        checkpoint = "-" if p["checkpoint"] is None else str(p["checkpoint"])
        lines.append(
            f"{p['partition']:<10} {owner:<21} {p['epoch']:<6} {p['head']:<17} "
            f"{lease:<11} {checkpoint}"
        )
    lines += ["", "node                  address               last heartbeat"]
    for n in doc["nodes"]:
        lines.append(
            f"{n['node_id']:<21} {n['advertise_addr']:<21} {n['last_heartbeat_ms_ago']} ms ago"
        )
    if not doc["nodes"]:
        lines.append("(no node has joined yet)")
    return "\n".join(lines) + "\n"
