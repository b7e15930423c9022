"""``AsyncClient``: the asyncio client.

Every operation comes from :class:`~pyrstmdb.client.api.Commands` and returns
a coroutine with the same typed result as ``pyrstmdb.Database``::

    async with AsyncClient("127.0.0.1:7401") as client:
        await client.put_machine("order", 1, definition)
        async for event in client.watch_all(machines=["order"]):
            ...

Concurrent calls share one connection and are pipelined. Connecting happens
on ``connect()``, ``async with`` or the first request. Raises what
:mod:`pyrstmdb.client.channel` raises.
"""

from __future__ import annotations

from typing import Any, Self, TypeVar, Unpack

from pyrstmdb.client.api import Commands
from pyrstmdb.client.calls import Plan, WatchSpec
from pyrstmdb.client.channel import Channel, run_plan, run_plans
from pyrstmdb.client.options import DEFAULT_ADDRESS, ClientArgs, ClientOptions
from pyrstmdb.client.plans import AsyncRunner, PipelineRunner
from pyrstmdb.client.stream import AsyncSubscription

T = TypeVar("T")

__all__ = ["AsyncClient", "AsyncPipeline", "AsyncSubscription"]


class AsyncClient(Commands, AsyncRunner):
    """An asyncio connection to an rstmdb server (see ``ClientOptions`` for the options)."""

    def __init__(
        self, address: str | tuple[str, int] = DEFAULT_ADDRESS, **options: Unpack[ClientArgs]
    ) -> None:
        self.options = ClientOptions.create(address, options)
        self._channel = Channel(self.options)

    async def _run(self, plan: Plan[T]) -> T:
        return await run_plan(self._channel, plan)

    def _watch(self, spec: WatchSpec) -> AsyncSubscription:
        return AsyncSubscription(self._channel, spec)

    @property
    def address(self) -> str:
        return self.options.address

    @property
    def connected(self) -> bool:
        return self._channel.connected

    @property
    def server_hello(self) -> dict[str, Any]:
        """The HELLO result of the current connection."""
        return dict(self._channel.hello)

    async def connect(self) -> Self:
        """Connect, HELLO and AUTH now (otherwise the first request does)."""
        await self._channel.connect()
        return self

    async def reconnect(self) -> None:
        """Close the connection and open a new one; subscriptions resume."""
        await self._channel.reconnect()

    async def close(self) -> None:
        """Close the connection and end every subscription."""
        await self._channel.close()

    async def __aenter__(self) -> Self:
        return await self.connect()

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    def pipeline(self) -> AsyncPipeline:
        """Queue operations, then send them together with ``await pipeline.execute()``."""
        return AsyncPipeline(self._channel)


class AsyncPipeline(Commands, PipelineRunner):
    """Operations queued by calling them; ``execute()`` runs them all at once."""

    def __init__(self, channel: Channel) -> None:
        super().__init__()
        self._channel = channel

    async def execute(self, raise_on_error: bool = True) -> list[Any]:
        """Results in call order; with ``raise_on_error=False`` failures are returned."""
        plans, self._queued = self._queued, []
        return await run_plans(self._channel, plans, raise_on_error)

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._queued.clear()
