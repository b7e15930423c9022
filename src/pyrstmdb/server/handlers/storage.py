"""WAL_READ, WAL_STATS, COMPACT, SNAPSHOT_INSTANCE and FLUSH_ALL.

The blocking ones (reading the log, compaction, instance snapshots, flushing)
run in a worker thread so the event loop keeps serving other connections.
WAL_READ results are cut by the store before they would exceed the frame
limit; ``next_offset`` continues from there (⚑P8). FLUSH_ALL is refused with
``BadRequest`` unless ``storage.allow_flush_all`` is set.
"""

from __future__ import annotations

from pyrstmdb.engine.commands import opt_bool, opt_uint, parse_instance_id, req_uint
from pyrstmdb.errors import BadRequest
from pyrstmdb.protocol import Operation
from pyrstmdb.server.handlers.base import Context, Handler, Params, Reply, in_thread


def wal_read(ctx: Context, params: Params) -> Reply:
    start = req_uint(params, "from_offset")
    limit = opt_uint(params, "limit")
    return in_thread(ctx, lambda: ctx.core.wal_read(start, limit))


def wal_stats(ctx: Context, params: Params) -> Reply:
    return ctx.core.wal_stats().to_dict()


def compact(ctx: Context, params: Params) -> Reply:
    force = opt_bool(params, "force_snapshot", False)
    return in_thread(ctx, lambda: ctx.core.compact(force))


def snapshot_instance(ctx: Context, params: Params) -> Reply:
    instance_id = parse_instance_id(params)
    return in_thread(ctx, lambda: ctx.core.snapshot_instance(instance_id))


def flush_all(ctx: Context, params: Params) -> Reply:
    if not ctx.settings.allow_flush_all:
        raise BadRequest(
            "FLUSH_ALL is disabled: set storage.allow_flush_all: true "
            "(or RSTMDB_ALLOW_FLUSH_ALL=true) to enable it",
            {"setting": "storage.allow_flush_all"},
        )
    return in_thread(ctx, ctx.core.flush_all)


HANDLERS: dict[Operation, Handler] = {
    Operation.WAL_READ: wal_read,
    Operation.WAL_STATS: wal_stats,
    Operation.COMPACT: compact,
    Operation.SNAPSHOT_INSTANCE: snapshot_instance,
    Operation.FLUSH_ALL: flush_all,
}
