"""Run the same test code against the blocking ``Client`` and the ``AsyncClient``.

``open_client("sync" | "async", address, **options)`` returns either a
``Client`` or a :class:`Driven` wrapper of an ``AsyncClient`` whose calls run
to completion on a private event loop (coroutines are awaited, subscriptions
started, pipelines wrapped), so a test reads the same for both kinds.
"""

from __future__ import annotations

import asyncio
import inspect
import socket
from typing import Any

from pyrstmdb.client import AsyncClient, AsyncPipeline, AsyncSubscription, Client

KINDS = ["sync", "async"]


class Driven:
    """Blocking view of an asyncio object: awaitables are run on ``loop``."""

    def __init__(self, loop: asyncio.AbstractEventLoop, target: Any) -> None:
        self._loop = loop
        self._target = target

    @property
    def target(self) -> Any:
        return self._target

    def _wrap(self, value: Any) -> Any:
        if isinstance(value, AsyncSubscription):
            self._loop.run_until_complete(value.start())
            return Driven(self._loop, value)
        if isinstance(value, AsyncPipeline):
            return Driven(self._loop, value)
        if inspect.isawaitable(value):
            return self._wrap(self._loop.run_until_complete(value))
        return value

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._target, name)
        if not callable(attr):
            return attr

        def call(*args: Any, **kwargs: Any) -> Any:
            return self._wrap(attr(*args, **kwargs))

        return call

    def __iter__(self) -> Driven:
        return self

    def __next__(self) -> Any:
        try:
            return self._loop.run_until_complete(self._target.__anext__())
        except StopAsyncIteration:
            raise StopIteration from None

    def close(self) -> None:
        if isinstance(self._target, AsyncClient):
            self._loop.run_until_complete(self._target.close())
            self._loop.close()


def open_client(kind: str, address: str, **options: Any) -> Any:
    """A connected client of ``kind`` (``connect=False`` leaves it unconnected)."""
    connect = options.pop("connect", True)
    if kind == "sync":
        return Client(address, connect=connect, **options)
    loop = asyncio.new_event_loop()
    client = Driven(loop, AsyncClient(address, **options))
    if connect:
        try:
            client.connect()
        except BaseException:
            client.close()
            raise
    return client


def free_port() -> int:
    """A loopback port that was free a moment ago."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
