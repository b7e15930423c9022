"""PUT_MACHINE, GET_MACHINE and LIST_MACHINES.

Params are parsed strictly (``BadRequest`` naming the field); the Core raises
the semantic errors (``MACHINE_NOT_FOUND``, ``MACHINE_VERSION_EXISTS``,
``MACHINE_VERSION_LIMIT_EXCEEDED``, ``BAD_REQUEST`` for invalid definitions).
Every result waits until what it reports is durable.
"""

from __future__ import annotations

from pyrstmdb.engine.commands import parse_machine_ref, parse_put_machine
from pyrstmdb.protocol import Operation
from pyrstmdb.server.handlers.base import Context, Handler, Params, Reply, durable, durable_read


def put_machine(ctx: Context, params: Params) -> Reply:
    return durable(ctx, ctx.core.put_machine(parse_put_machine(params)))


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
