"""HELLO, AUTH, PING, BYE and INFO: the session and server-information operations.

HELLO and AUTH delegate to :class:`~pyrstmdb.server.session.Session` (which
raises ``BadRequest``, ``UnsupportedProtocol`` and ``AuthFailed``); the others
never fail. BYE closes the connection once its response is written.
"""

from __future__ import annotations

from pyrstmdb.engine.commands import MAX_BATCH_OPS
from pyrstmdb.protocol import MAX_PAYLOAD, Operation
from pyrstmdb.server.handlers.base import Answer, Context, Handler, Params, Reply, Result
from pyrstmdb.server.session import PROTOCOL_VERSION, SERVER_FEATURES, SERVER_NAME


def hello(ctx: Context, params: Params) -> Reply:
    return ctx.session.hello(params, ctx.settings.server_version)


def auth(ctx: Context, params: Params) -> Reply:
    return ctx.session.auth(params)


def ping(ctx: Context, params: Params) -> Reply:
    return {"pong": True}


def bye(ctx: Context, params: Params) -> Reply:
    return Answer({"goodbye": True}, after_write=ctx.conn.close)


def info(ctx: Context, params: Params) -> Reply:
    result: Result = {
        "server_name": SERVER_NAME,
        "server_version": ctx.settings.server_version,
        "protocol_version": PROTOCOL_VERSION,
        "features": list(SERVER_FEATURES),
        "max_frame_bytes": MAX_PAYLOAD,
        "max_batch_ops": MAX_BATCH_OPS,
    }
    return result


HANDLERS: dict[Operation, Handler] = {
    Operation.HELLO: hello,
    Operation.AUTH: auth,
    Operation.PING: ping,
    Operation.BYE: bye,
    Operation.INFO: info,
}
