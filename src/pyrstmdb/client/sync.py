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

import atexit
import weakref
from typing import Any, Self, TypeVar, Unpack

from pyrstmdb.client.api import Commands
from pyrstmdb.client.calls import Plan, WatchSpec
from pyrstmdb.client.channel import Channel, run_plan, run_plans
from pyrstmdb.client.loop_thread import LoopThread
from pyrstmdb.client.options import DEFAULT_ADDRESS, ClientArgs, ClientOptions
from pyrstmdb.client.plans import PipelineRunner, SyncRunner
from pyrstmdb.client.stream import AsyncSubscription, Subscription

T = TypeVar("T")

__all__ = ["Client", "Pipeline", "Subscription"]


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
