"""Each system's run: start what it needs, measure every plan, stop what it started.

Servers run one at a time, each in its own directory under the same temporary
root (same disk), and are stopped by PID on the way out, errors and Ctrl+C
included.
"""

from __future__ import annotations

import dataclasses
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path

from bench.compare import report, runner
from bench.compare.runner import Plan
from bench.compare.workload import Target

SystemRun = Callable[[Path, list[Plan]], Awaitable[list[report.Row]]]


async def measure(target: Target, plans: list[Plan], tag: str) -> list[report.Row]:
    rows = []
    try:
        for plan in plans:
            print(f"  {target.label}: {plan.clients} client(s) ...", file=sys.stderr, flush=True)
            named = dataclasses.replace(plan, prefix=f"{tag}{plan.clients}")
            rows.append(report.row(await runner.run(target, named), target.in_process))
    finally:
        await target.close()
    return rows


async def rstmdb(root: Path, plans: list[Plan]) -> list[report.Row]:
    from bench.compare.peer_rstmdb import RstmdbServer, RstmdbTarget

    server = RstmdbServer(root)
    try:
        return await measure(await RstmdbTarget.connect(server), plans, "r")
    finally:
        server.stop()


async def embedded(root: Path, plans: list[Plan]) -> list[report.Row]:
    from bench.compare.peer_embedded import EmbeddedTarget

    return await measure(EmbeddedTarget(root), plans, "e")


async def sqlite(root: Path, plans: list[Plan]) -> list[report.Row]:
    from bench.compare.peer_sqlite import SqliteTarget

    return await measure(SqliteTarget(root), plans, "s")


async def redis(root: Path, plans: list[Plan]) -> list[report.Row]:
    from bench.compare.peer_redis import RedisServer, RedisTarget, find_binary

    binary = find_binary()
    if binary is None:
        raise RuntimeError("redis-server is not installed")
    server = RedisServer(root, binary)
    try:
        return await measure(await RedisTarget.connect(server), plans, "x")
    finally:
        server.stop()


async def postgres(root: Path, plans: list[Plan]) -> list[report.Row]:
    from bench.compare import pgserver
    from bench.compare.peer_postgres import PostgresTarget, create_schema

    server = pgserver.start(root)
    try:
        await create_schema(server)
        rows = await measure(await PostgresTarget.connect(server, "function"), plans, "f")
        target = await PostgresTarget.connect(server, "statements")
        return rows + await measure(target, plans, "t")
    finally:
        server.stop()


SYSTEMS: dict[str, SystemRun] = {
    "rstmdb": rstmdb,
    "redis": redis,
    "postgres": postgres,
    "embedded": embedded,
    "sqlite": sqlite,
}
