"""WATCH_INSTANCE, WATCH_ALL and UNWATCH, on top of the subscription hub.

A new subscription is activated only after its WATCH response has been
written, so no event can precede the response that names it. WATCH_INSTANCE
reports the instance's current state, so like GET_INSTANCE it answers only
once the instance's latest record is durable; if that record fails to become
durable, the answer is the error and the subscription is removed. UNWATCH of
an id this connection does not hold answers ``removed: false``. WATCH_INSTANCE
of an unknown or deleted instance raises ``InstanceNotFound`` (from the hub); a
server without a hub answers ``InternalError``.
"""

from __future__ import annotations

import asyncio
from typing import Any

from pyrstmdb.engine.commands import opt_bool, opt_str_list, opt_uint, parse_instance_id, req_str
from pyrstmdb.errors import InternalError
from pyrstmdb.protocol import Operation
from pyrstmdb.server.handlers.base import (
    Answer,
    Context,
    Handler,
    Params,
    Reply,
    Result,
    Subscriptions,
)


def _hub(ctx: Context) -> Subscriptions:
    if ctx.hub is None:
        raise InternalError("subscriptions are not available on this server")
    return ctx.hub


def _activated(
    ctx: Context, hub: Subscriptions, result: Result, visible: int | None = None
) -> Answer:
    """Answer ``result`` (once the record at ``visible`` is durable); delivery starts after."""
    subscription_id = str(result["subscription_id"])
    pending = None if visible is None else ctx.waiter.wait(visible)
    if pending is not None:

        def forget_if_lost(done: asyncio.Future[Any]) -> None:
            if done.cancelled() or done.exception() is not None:
                hub.unwatch(ctx.conn, subscription_id)

        pending.add_done_callback(forget_if_lost)
    return Answer(result, pending, after_write=lambda: hub.activate(ctx.conn, subscription_id))


def watch_instance(ctx: Context, params: Params) -> Reply:
    instance_id = parse_instance_id(params)
    include_ctx = opt_bool(params, "include_ctx", True)
    from_offset = opt_uint(params, "from_offset")
    hub = _hub(ctx)
    result = hub.watch_instance(ctx.conn, instance_id, include_ctx, from_offset)
    return _activated(ctx, hub, result, int(result["current_wal_offset"]))


def watch_all(ctx: Context, params: Params) -> Reply:
    machines = opt_str_list(params, "machines")
    from_states = opt_str_list(params, "from_states")
    to_states = opt_str_list(params, "to_states")
    events = opt_str_list(params, "events")
    include_ctx = opt_bool(params, "include_ctx", True)
    from_offset = opt_uint(params, "from_offset")
    hub = _hub(ctx)
    result = hub.watch_all(
        ctx.conn, machines, from_states, to_states, events, include_ctx, from_offset
    )
    return _activated(ctx, hub, result)


def unwatch(ctx: Context, params: Params) -> Reply:
    subscription_id = req_str(params, "subscription_id")
    removed = _hub(ctx).unwatch(ctx.conn, subscription_id)
    return {"subscription_id": subscription_id, "removed": removed}


HANDLERS: dict[Operation, Handler] = {
    Operation.WATCH_INSTANCE: watch_instance,
    Operation.WATCH_ALL: watch_all,
    Operation.UNWATCH: unwatch,
}
