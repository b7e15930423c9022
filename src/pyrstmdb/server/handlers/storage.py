"""WAL_READ, WAL_STATS, COMPACT, SNAPSHOT_INSTANCE and FLUSH_ALL.

The blocking ones (reading the log, compaction, instance snapshots, flushing)
run in a worker thread so the event loop keeps serving other connections.
WAL_READ stops before its response would exceed the frame limit; its
``next_offset`` continues from there (⚑P8). FLUSH_ALL is refused with
``BadRequest`` unless ``storage.allow_flush_all`` is set.
"""

from __future__ import annotations

import orjson

from pyrstmdb.engine.commands import opt_bool, opt_uint, parse_instance_id, req_uint
from pyrstmdb.errors import BadRequest
from pyrstmdb.protocol import MAX_PAYLOAD, Operation
from pyrstmdb.results import WalReadResult
from pyrstmdb.server.handlers.base import Context, Handler, Params, Reply, Result, in_thread

# Room left for the response envelope (type, id, status) around the records.
ENVELOPE_ROOM = 64 * 1024
READ_BUDGET = MAX_PAYLOAD - ENVELOPE_ROOM


class _FittedRead:
    """A WAL_READ result cut to the frame limit."""

    def __init__(self, result: WalReadResult, budget: int = READ_BUDGET) -> None:
        self._result = result
        self._budget = budget

    def to_dict(self) -> Result:
        records: list[Result] = []
        used = 0
        for record in self._result.records:
            item = record.to_dict()
            size = len(orjson.dumps(item)) + 1
            if records and used + size > self._budget:
                break
            used += size
            records.append(item)
        next_offset = records[-1]["offset"] + 1 if records else None
        return {"records": records, "next_offset": next_offset}


def wal_read(ctx: Context, params: Params) -> Reply:
    start = req_uint(params, "from_offset")
    limit = opt_uint(params, "limit")
    return in_thread(ctx, lambda: _FittedRead(ctx.core.wal_read(start, limit)))


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
