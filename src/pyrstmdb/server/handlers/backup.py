"""BACKUP_BEGIN, BACKUP_READ and BACKUP_END: streaming a consistent backup to a client.

These are extensions of this server; official clients never send them. A backup
belongs to the connection that began it (ids from other connections are
``NotFound``) and ends with BACKUP_END or when the connection closes; until then
compaction and FLUSH_ALL are refused with ``CONFLICT`` (automatic compaction waits),
while writes go on. See :mod:`pyrstmdb.storage.backup` for what is pinned.

Params: BACKUP_BEGIN none; BACKUP_READ ``backup_id``, ``file``, ``offset`` and
optionally ``length`` (at most ``chunk_bytes`` of the BACKUP_BEGIN result); the
data comes back base64-encoded with its CRC-32C; BACKUP_END ``backup_id``.
Pinning and reading run in a worker thread.
"""

from __future__ import annotations

import asyncio
import base64
import logging
from typing import Any

from crc32c import crc32c

from pyrstmdb.engine.commands import opt_uint, req_str, req_uint
from pyrstmdb.errors import BadRequest
from pyrstmdb.protocol import Operation
from pyrstmdb.server.handlers.base import Answer, Context, Handler, Params, Reply, Result
from pyrstmdb.storage.backup import MAX_CHUNK, Pin, pin_backup, read_chunk
from pyrstmdb.storage.disk import DiskStore

log = logging.getLogger("pyrstmdb.server.backup")


def backup_begin(ctx: Context, params: Params) -> Reply:
    store = ctx.core.store
    if not isinstance(store, DiskStore):
        raise BadRequest("backups need a server with a data directory")
    core = ctx.core
    work = ctx.loop.run_in_executor(None, lambda: core.pause_compaction(lambda: pin_backup(store)))
    answer: asyncio.Future[Result] = ctx.loop.create_future()

    def hold(done: asyncio.Future[Pin]) -> None:
        if done.cancelled():
            answer.cancel()
            return
        error = done.exception()
        if error is not None:
            answer.set_exception(error)
            return
        pin = done.result()
        answer.set_result(pin.to_dict())
        if not ctx.backups.add(pin):  # the client left while the backup was being pinned
            core.resume_compaction()
            return
        log.info(
            "backup %s began: %d files, %d bytes, log up to offset %d; "
            "compaction paused until it ends",
            pin.backup_id,
            len(pin.files),
            sum(f.size for f in pin.files),
            pin.end_offset,
        )

    work.add_done_callback(hold)
    return Answer(wait=answer)


def _chunk(pin: Pin, name: str, offset: int, length: int) -> Result:
    data = read_chunk(pin, name, offset, length)
    return {
        "backup_id": pin.backup_id,
        "file": name,
        "offset": offset,
        "length": len(data),
        "crc32c": crc32c(data),
        "data": base64.b64encode(data).decode("ascii"),
    }


def backup_read(ctx: Context, params: Params) -> Reply:
    pin = ctx.backups.get(req_str(params, "backup_id"))
    name = req_str(params, "file")
    offset = req_uint(params, "offset")
    length = opt_uint(params, "length")
    wanted = MAX_CHUNK if length is None else min(length, MAX_CHUNK)
    future: asyncio.Future[Any] = ctx.loop.run_in_executor(
        None, lambda: _chunk(pin, name, offset, wanted)
    )
    return Answer(wait=future)


def backup_end(ctx: Context, params: Params) -> Reply:
    backup_id = req_str(params, "backup_id")
    pin = ctx.backups.remove(backup_id)
    if pin is not None:
        ctx.core.resume_compaction()
        log.info("backup %s ended", backup_id)
    return {"backup_id": backup_id, "ended": pin is not None}


HANDLERS: dict[Operation, Handler] = {
    Operation.BACKUP_BEGIN: backup_begin,
    Operation.BACKUP_READ: backup_read,
    Operation.BACKUP_END: backup_end,
}
