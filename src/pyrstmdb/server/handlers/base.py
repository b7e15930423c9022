"""What every handler receives and may return.

:class:`Context` is built once per connection: the shared ``Core``, the
durability waiter, the session, the server-wide settings, the connection
itself as the subscription sink, and the backups the connection holds.
:class:`Answer` is a result that is not ready yet (or needs an action after
it is written). :func:`durable` and
:func:`in_thread` build the two common kinds. Raises nothing.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from pyrstmdb.aio import DurabilityWaiter
from pyrstmdb.core import Core
from pyrstmdb.errors import WalIoError
from pyrstmdb.server.session import Session
from pyrstmdb.storage.backup import BackupSet

log = logging.getLogger("pyrstmdb.server.backup")

Params = dict[str, Any]
Result = dict[str, Any]


class ProtocolResult(Protocol):
    def to_dict(self) -> Result: ...


class Sink(Protocol):
    """The connection, as the subscription hub sees it."""

    def send_event(self, message: dict[str, Any]) -> None: ...

    def writable(self) -> bool: ...


class Subscriptions(Protocol):
    """The part of the subscription hub the handlers use."""

    def watch_instance(
        self, sink: Sink, instance_id: str, include_ctx: bool, from_offset: int | None
    ) -> Result: ...

    def watch_all(
        self,
        sink: Sink,
        machines: list[str],
        from_states: list[str],
        to_states: list[str],
        events: list[str],
        include_ctx: bool,
        from_offset: int | None,
    ) -> Result: ...

    def activate(self, sink: Sink, subscription_id: str) -> None: ...

    def unwatch(self, sink: Sink, subscription_id: str) -> bool: ...


class Peer(Sink, Protocol):
    """The connection as the handlers see it."""

    def close(self) -> None:
        """Close the connection once what is already written has been sent."""


@dataclass(frozen=True, slots=True)
class Settings:
    """Server-wide facts the handlers need."""

    server_version: str
    allow_flush_all: bool


@dataclass(slots=True)
class Context:
    core: Core
    waiter: DurabilityWaiter
    session: Session
    settings: Settings
    loop: asyncio.AbstractEventLoop
    hub: Subscriptions | None
    conn: Peer
    backups: BackupSet = field(default_factory=BackupSet)

    def release(self) -> None:
        """The connection is gone: end the backups it still held."""
        for pin in self.backups.close():
            self.core.resume_compaction()
            log.info("backup %s ended: its client left", pin.backup_id)


class Answer:
    """A response to finish later.

    ``result`` is the result when it is already known (then ``wait`` only
    delays it); otherwise ``wait`` resolves to the result dict. ``after_write``
    runs once the response has been handed to the transport.
    """

    __slots__ = ("after_write", "result", "wait")

    def __init__(
        self,
        result: Result | None = None,
        wait: asyncio.Future[Any] | None = None,
        after_write: Callable[[], None] | None = None,
    ) -> None:
        self.result = result
        self.wait = wait
        self.after_write = after_write


Reply = Result | Answer
Handler = Callable[[Context, Params], Reply]


def durable(ctx: Context, pair: tuple[ProtocolResult, int]) -> Reply:
    """The result of a Core call, held back until its ``wait_offset`` is visible."""
    result, offset = pair
    future = ctx.waiter.wait(offset)
    body = result.to_dict()
    return body if future is None else Answer(body, future)


#: How often a read is answered again after what it saw was rolled back.
READ_ATTEMPTS = 3


def durable_read(ctx: Context, read: Callable[[], tuple[ProtocolResult, int]]) -> Reply:
    """Like :func:`durable` for a read: when a change it saw is rolled back (its fsync
    failed) before becoming visible, the read is answered again from the rolled-back
    state instead of failing."""
    result, offset = read()
    future = ctx.waiter.wait(offset)
    if future is None:
        return result.to_dict()
    return Answer(wait=ctx.loop.create_task(_read_again(ctx, read, result, future)))


async def _read_again(
    ctx: Context,
    read: Callable[[], tuple[ProtocolResult, int]],
    result: ProtocolResult,
    future: asyncio.Future[None],
) -> Result:
    for _ in range(READ_ATTEMPTS):
        try:
            await future
        except WalIoError:
            result, offset = read()
            again = ctx.waiter.wait(offset)
            if again is None:
                return result.to_dict()
            future = again
        else:
            return result.to_dict()
    await future
    return result.to_dict()


def in_thread(ctx: Context, work: Callable[[], ProtocolResult]) -> Answer:
    """Run a blocking Core call in a worker thread; its result is the response."""
    return Answer(wait=ctx.loop.run_in_executor(None, lambda: work().to_dict()))
