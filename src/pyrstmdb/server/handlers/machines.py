"""PUT_MACHINE, GET_MACHINE and LIST_MACHINES.

Params are parsed strictly (``BadRequest`` naming the field); the Core raises
the semantic errors (``MACHINE_NOT_FOUND``, ``MACHINE_VERSION_EXISTS``,
``MACHINE_VERSION_LIMIT_EXCEEDED``, ``BAD_REQUEST`` for invalid definitions and
definitions over the size limits). Every result waits until what it reports is
durable.

A definition of :data:`OFF_LOOP_BYTES` or more is checked and compiled in a
worker thread, outside the database lock, so the event loop keeps answering
other clients meanwhile; the write itself then runs on the loop as usual.
"""

from __future__ import annotations

from typing import Any

from pyrstmdb.engine.commands import PutMachine, json_size, parse_machine_ref, parse_put_machine
from pyrstmdb.engine.machine import precompile
from pyrstmdb.protocol import Operation
from pyrstmdb.server.handlers.base import (
    Answer,
    Context,
    Handler,
    Params,
    Reply,
    durable,
    durable_read,
)

OFF_LOOP_BYTES = 16 * 1024
"""Definitions at least this large (bytes of compact JSON) compile in a worker thread."""


def put_machine(ctx: Context, params: Params) -> Reply:
    cmd = parse_put_machine(params)
    if json_size("definition", cmd.definition) < OFF_LOOP_BYTES:
        return durable(ctx, ctx.core.put_machine(cmd))
    return Answer(wait=ctx.loop.create_task(_put_large(ctx, cmd)))


async def _put_large(ctx: Context, cmd: PutMachine) -> dict[str, Any]:
    compiled = await ctx.loop.run_in_executor(None, precompile, cmd)
    reply = durable(ctx, ctx.core.put_machine(cmd, compiled))
    if isinstance(reply, Answer):
        assert reply.wait is not None and reply.result is not None
        await reply.wait
        return reply.result
    return reply


def get_machine(ctx: Context, params: Params) -> Reply:
    name, version = parse_machine_ref(params)
    return durable_read(ctx, lambda: ctx.core.get_machine(name, version))


def list_machines(ctx: Context, params: Params) -> Reply:
    return durable_read(ctx, ctx.core.list_machines)


HANDLERS: dict[Operation, Handler] = {
    Operation.PUT_MACHINE: put_machine,
    Operation.GET_MACHINE: get_machine,
    Operation.LIST_MACHINES: list_machines,
}
