"""Subscriptions as asyncio iterators, resumable after a reconnect, and their blocking form.

An :class:`AsyncSubscription` is created by ``AsyncClient.watch_instance`` /
``watch_all``. It starts on ``await``, ``async with`` or the first ``async
for`` step, and remembers where it is: the offset after the last event it
delivered. When the connection is re-established the channel re-issues the
WATCH with ``from_offset`` = that offset (inclusive on the server), so no
event is missed or delivered twice; events below it are dropped as a second
guard.

Raises from iteration: the ``RstmdbError`` of a failed (re-)WATCH, or
``ClientConnectionError`` when the connection is lost for good. Iteration
ends normally after ``unwatch()`` or when the client closes.

:class:`Subscription` (from ``Client.watch_instance`` / ``watch_all``) is the
blocking iterator over one, run on the client's loop thread.
"""

from __future__ import annotations

import asyncio
import warnings
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass
from typing import Any, Protocol, Self

from pyrstmdb.client.calls import WatchSpec
from pyrstmdb.client.events import Event, Notice
from pyrstmdb.client.loop_thread import LoopThread
from pyrstmdb.protocol import Operation

JsonObject = dict[str, Any]


class Watcher(Protocol):
    """What a subscription needs from the connection that serves it (the channel)."""

    async def watch(self, sub: AsyncSubscription) -> None: ...

    async def unwatch(self, sub: AsyncSubscription, timeout: float | None = None) -> bool: ...


@dataclass(frozen=True, slots=True)
class _Stop:
    error: BaseException | None = None


def _start_offset(op: Operation, result: JsonObject) -> int | None:
    """Where live delivery began for a WATCH without ``from_offset``."""
    if op is Operation.WATCH_INSTANCE:
        current = result.get("current_wal_offset")
        return current + 1 if isinstance(current, int) else None
    head = result.get("wal_offset")
    return head if isinstance(head, int) else None


class AsyncSubscription:
    """A stream of :class:`Event`; see the module docstring."""

    def __init__(self, channel: Watcher, spec: WatchSpec) -> None:
        self._channel = channel
        self.spec = spec
        self._queue: asyncio.Queue[Event | _Stop] = asyncio.Queue()
        self.subscription_id: str | None = None
        self.result: JsonObject = {}
        self.last_offset: int | None = None
        self.notices: list[Notice] = []
        requested = spec.params.get("from_offset")
        self._resume: int | None = requested if isinstance(requested, int) else None
        self._started = False
        self._stopped = False

    # -- public ------------------------------------------------------------------------------
    @property
    def resume_offset(self) -> int | None:
        """The ``from_offset`` a re-issued WATCH will carry."""
        return self._resume

    async def start(self) -> Self:
        """Send the WATCH (once); raises its error."""
        if not self._started:
            self._started = True
            try:
                await self._channel.watch(self)
            except BaseException as exc:
                self._stop(exc)
                raise
        return self

    def __await__(self) -> Generator[Any, None, Self]:
        return self.start().__await__()

    async def __aenter__(self) -> Self:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.unwatch()

    def __aiter__(self) -> Self:
        return self

    async def __anext__(self) -> Event:
        await self.start()
        item = await self._queue.get()
        if isinstance(item, Event):
            return item
        self._queue.put_nowait(item)  # every later call ends the same way
        if item.error is not None:
            raise item.error
        raise StopAsyncIteration

    async def get(self, timeout: float | None = None) -> Event:
        """The next event; ``TimeoutError`` if none comes within ``timeout`` seconds."""
        async with asyncio.timeout(timeout):
            return await self.__anext__()

    async def unwatch(self, timeout: float | None = None) -> bool:
        """Cancel the subscription; True if the server removed it (confirmed within
        ``timeout`` seconds, default: the client's request timeout)."""
        return await self._channel.unwatch(self, timeout)

    @property
    def active(self) -> bool:
        return self._started and not self._stopped

    # -- fed by the channel, on the event loop -------------------------------------------------
    def watch_params(self) -> JsonObject:
        params = dict(self.spec.params)
        if self._resume is not None:
            params["from_offset"] = self._resume
        return params

    def on_watch_result(self, result: JsonObject) -> None:
        self.subscription_id = str(result["subscription_id"])
        self.result = result
        if self._resume is None:
            self._resume = _start_offset(self.spec.op, result)
        start = result.get("history_start")
        if result.get("history_truncated") and isinstance(start, int) and self._resume is not None:
            self.notice(Notice(self.subscription_id, "HISTORY_LOST", self._resume, start))

    def deliver(self, event: Event) -> None:
        if self._stopped or (self._resume is not None and event.wal_offset < self._resume):
            return
        self._resume = event.wal_offset + 1
        self.last_offset = event.wal_offset
        self._queue.put_nowait(event)

    def notice(self, notice: Notice) -> None:
        self.notices.append(notice)
        resumed = notice.resumed_at
        if resumed is not None and (self._resume is None or resumed > self._resume):
            self._resume = resumed
        handler: Callable[[Notice], None] | None = self.spec.on_notice
        if handler is not None:
            handler(notice)
        else:
            warnings.warn(str(notice), notice.warning, stacklevel=2)

    def _stop(self, error: BaseException | None = None) -> None:
        if not self._stopped:
            self._stopped = True
            self._queue.put_nowait(_Stop(error))

    def stop(self, error: BaseException | None = None) -> None:
        """End iteration (with ``error`` raised to the consumer, if given)."""
        self._stop(error)


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
