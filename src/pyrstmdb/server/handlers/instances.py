"""CREATE_INSTANCE, GET_INSTANCE, LIST_INSTANCES, DELETE_INSTANCE, APPLY_EVENT, BATCH
and GET_HISTORY.

Params are parsed by :mod:`pyrstmdb.engine.commands` (``BadRequest`` naming the
field); the Core decides and raises the semantic errors. A write's response is
held back until its record is durable; a read waits for the latest record it
reflects. An atomic BATCH failure is one ``BadRequest`` naming the op's index.
"""

from __future__ import annotations

from pyrstmdb.engine.commands import (
    parse_apply_event,
    parse_batch,
    parse_create_instance,
    parse_delete_instance,
    parse_get_history,
    parse_instance_id,
    parse_list_instances,
)
from pyrstmdb.protocol import Operation
from pyrstmdb.server.handlers.base import Context, Handler, Params, Reply, durable


def create_instance(ctx: Context, params: Params) -> Reply:
    return durable(ctx, ctx.core.write(parse_create_instance(params)))


def get_instance(ctx: Context, params: Params) -> Reply:
    return durable(ctx, ctx.core.get_instance(parse_instance_id(params)))


def get_history(ctx: Context, params: Params) -> Reply:
    return durable(ctx, ctx.core.get_history(*parse_get_history(params)))


def list_instances(ctx: Context, params: Params) -> Reply:
    return durable(ctx, ctx.core.list_instances(parse_list_instances(params)))


def delete_instance(ctx: Context, params: Params) -> Reply:
    return durable(ctx, ctx.core.write(parse_delete_instance(params)))


def apply_event(ctx: Context, params: Params) -> Reply:
    return durable(ctx, ctx.core.apply_event(parse_apply_event(params)))


def batch(ctx: Context, params: Params) -> Reply:
    ops, mode = parse_batch(params)
    return durable(ctx, ctx.core.batch(ops, mode))


HANDLERS: dict[Operation, Handler] = {
    Operation.CREATE_INSTANCE: create_instance,
    Operation.GET_INSTANCE: get_instance,
    Operation.LIST_INSTANCES: list_instances,
    Operation.DELETE_INSTANCE: delete_instance,
    Operation.APPLY_EVENT: apply_event,
    Operation.BATCH: batch,
    Operation.GET_HISTORY: get_history,
}
