"""Runs operations for the HTTP API through the RCP handlers.

The HTTP API is another way into the same operations: :meth:`Gateway.call`
builds the params an RCP request would carry and runs the operation's RCP
handler with a context of its own (the server's ``Core``, durability waiter
and settings), then waits, like the RCP connection does, until what the
result reports is durable. Parsing, validation, semantics, durability and
error codes are therefore those of RCP by construction.

Authorization is the HTTP layer's job (the middleware checks the bearer
token before a route runs), so the context's session counts as authenticated.
Raises the operation's ``RstmdbError``.
"""

from __future__ import annotations

import asyncio
from typing import Any

from pyrstmdb.aio import DurabilityWaiter
from pyrstmdb.core import Core
from pyrstmdb.protocol import Operation
from pyrstmdb.server.dispatch import HANDLERS
from pyrstmdb.server.handlers.base import Answer, Context, Peer, Settings, Subscriptions
from pyrstmdb.server.session import Session

Result = dict[str, Any]


class _NoPeer:
    """Stands in for a connection: the HTTP operations never write events to it."""

    def send_event(self, message: dict[str, Any]) -> None:
        raise RuntimeError("an HTTP operation has no event stream")

    def writable(self) -> bool:
        return False

    def close(self) -> None:
        return None


class Gateway:
    """The operations of one server, as awaitable calls."""

    def __init__(
        self,
        core: Core,
        waiter: DurabilityWaiter,
        settings: Settings,
        hub: Subscriptions | None,
        loop: asyncio.AbstractEventLoop,
    ) -> None:
        session = Session(auth_required=False, token_hashes=frozenset())
        session.authenticated = True
        peer: Peer = _NoPeer()
        self.core = core
        self.hub = hub
        self.waiter = waiter
        self._ctx = Context(core, waiter, session, settings, loop, hub, peer)

    async def call(self, op: Operation, params: dict[str, Any]) -> Result:
        """Run ``op`` and return its result once it is durable."""
        reply = HANDLERS[op](self._ctx, params)
        if type(reply) is dict:
            return reply
        assert isinstance(reply, Answer)
        if reply.wait is None:
            return reply.result or {}
        value = await asyncio.shield(reply.wait)
        return reply.result if reply.result is not None else dict(value)

    async def visible(self, offset: int) -> None:
        """Wait until the record at ``offset`` is durable (``WalIoError`` if it never is)."""
        future = self.waiter.wait(offset)
        if future is not None:
            await asyncio.shield(future)
