"""``Client``: the blocking client.

The operations are the same plans as the asyncio client's
(:class:`~pyrstmdb.client.api.Commands`), run on the same
:class:`~pyrstmdb.client.channel.Channel`; the channel lives on a private
event-loop thread and each method waits for its result. So there is one
implementation of the protocol, reconnects and subscriptions, and the
blocking client may be shared by threads (their requests are pipelined)::

    with Client("127.0.0.1:7401") as client:      # connects here
        client.create_instance("order", 1, "o-1")
        for event in client.watch_instance("o-1"):
            ...

A client still open when the interpreter exits is closed then (an ``atexit``
hook), so no task is left pending. Raises what :mod:`pyrstmdb.client.channel`
raises; calling a client method from inside an ``on_notice`` callback (which
runs on the loop thread) raises ``RuntimeError``.
"""

from __future__ import annotations

import asyncio
import atexit
import threading
import weakref
from collections.abc import Coroutine, Iterator
from typing import Any, Self, TypeVar, Unpack

from pyrstmdb.client.api import Commands
from pyrstmdb.client.channel import Channel, run_plan, run_plans
from pyrstmdb.client.events import Event, Notice
from pyrstmdb.client.options import DEFAULT_ADDRESS, ClientArgs, ClientOptions
from pyrstmdb.client.plans import PipelineRunner, Plan, SyncRunner, WatchSpec
from pyrstmdb.client.stream import AsyncSubscription

T = TypeVar("T")

__all__ = ["Client", "Pipeline", "Subscription"]


class LoopThread:
    """An event loop on a daemon thread; ``run(coro)`` blocks for its result."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._main, name="pyrstmdb-client", daemon=True)
        self._thread.start()

    def _main(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_forever()

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        if threading.current_thread() is self._thread:
            coro.close()
            raise RuntimeError("a blocking client cannot be called from its own callbacks")
        if self.loop.is_closed():
            coro.close()
            raise RuntimeError("the client is closed")
        future = asyncio.run_coroutine_threadsafe(coro, self.loop)
        try:
            return future.result()
        except BaseException:
            # An interrupted wait (Ctrl+C) must not leave the call running on the loop, where
            # a pending ``next(sub)`` would take the following event for nobody.
            future.cancel()
            raise

    def stop(self) -> None:
        if self.loop.is_closed():
            return
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(timeout=5.0)
        if not self._thread.is_alive():
            self.loop.close()


_OPEN: weakref.WeakSet[Client] = weakref.WeakSet()


@atexit.register
def _close_at_exit() -> None:
    """Close the clients still open when the interpreter exits, so nothing is left pending."""
    for client in list(_OPEN):
        try:
            client.close()
        except Exception:  # best effort: the process is leaving anyway
            continue


class Client(Commands, SyncRunner):
    """A blocking connection to an rstmdb server.

    Connects in the constructor unless ``connect=False`` (then on ``connect()``
    or the first request). Options: see ``ClientOptions``.
    """

    def __init__(
        self,
        address: str | tuple[str, int] = DEFAULT_ADDRESS,
        *,
        connect: bool = True,
        **options: Unpack[ClientArgs],
    ) -> None:
        self.options = ClientOptions.create(address, options)
        self._thread = LoopThread()
        self._channel = Channel(self.options)
        _OPEN.add(self)
        if connect:
            try:
                self.connect()
            except BaseException:
                self.close()
                raise

    def _run(self, plan: Plan[T]) -> T:
        return self._thread.run(run_plan(self._channel, plan))

    def _watch(self, spec: WatchSpec) -> Subscription:
        return Subscription(AsyncSubscription(self._channel, spec), self._thread).start()

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

    def connect(self) -> Self:
        self._thread.run(self._channel.connect())
        return self

    def reconnect(self) -> None:
        """Close the connection and open a new one; subscriptions resume."""
        self._thread.run(self._channel.reconnect())

    def close(self) -> None:
        """Close the connection, end every subscription and stop the loop thread."""
        _OPEN.discard(self)
        if not self._thread.loop.is_closed():
            self._thread.run(self._channel.close())
        self._thread.stop()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def pipeline(self) -> Pipeline:
        """Queue operations, then send them together with ``pipeline.execute()``."""
        return Pipeline(self._channel, self._thread)


class Pipeline(Commands, PipelineRunner):
    """Operations queued by calling them; ``execute()`` runs them all at once."""

    def __init__(self, channel: Channel, thread: LoopThread) -> None:
        super().__init__()
        self._channel = channel
        self._thread = thread

    def execute(self, raise_on_error: bool = True) -> list[Any]:
        """Results in call order; with ``raise_on_error=False`` failures are returned."""
        plans, self._queued = self._queued, []
        return self._thread.run(run_plans(self._channel, plans, raise_on_error))

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self._queued.clear()


class Subscription:
    """A blocking iterator of :class:`Event` over an :class:`AsyncSubscription`."""

    def __init__(self, inner: AsyncSubscription, thread: LoopThread) -> None:
        self._inner = inner
        self._thread = thread

    def start(self) -> Self:
        self._thread.run(self._inner.start())
        return self

    @property
    def subscription_id(self) -> str | None:
        return self._inner.subscription_id

    @property
    def result(self) -> dict[str, Any]:
        """The result of the latest WATCH (it changes when a reconnect re-issues it)."""
        return self._inner.result

    @property
    def last_offset(self) -> int | None:
        return self._inner.last_offset

    @property
    def resume_offset(self) -> int | None:
        return self._inner.resume_offset

    @property
    def notices(self) -> list[Notice]:
        return self._inner.notices

    def __iter__(self) -> Iterator[Event]:
        return self

    def __next__(self) -> Event:
        try:
            return self._thread.run(self._inner.__anext__())
        except StopAsyncIteration:
            raise StopIteration from None

    def get(self, timeout: float | None = None) -> Event:
        """The next event; ``TimeoutError`` if none comes within ``timeout`` seconds."""
        try:
            return self._thread.run(self._inner.get(timeout))
        except StopAsyncIteration:
            raise StopIteration from None

    def unwatch(self, timeout: float | None = None) -> bool:
        """Cancel the subscription; True if the server removed it (confirmed within
        ``timeout`` seconds, default: the client's request timeout)."""
        return self._thread.run(self._inner.unwatch(timeout))

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        if not self._thread.loop.is_closed():
            self.unwatch()
