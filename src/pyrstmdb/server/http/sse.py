"""WATCH_ALL and WATCH_INSTANCE as Server-Sent Events, on the subscription hub.

An :class:`EventStream` is the hub's ``Sink`` for one SSE response. The hub
sends it events only while it is writable: fewer than :data:`HIGH_WATER`
messages queued. The response body is written from the queue; when the client
reads slowly, the transport's flow control holds the writer, the queue stays
full, the hub stops sending and (once its per-subscription buffer is full)
catches the stream up from the log when the queue drains below
:data:`LOW_WATER` — exactly like a slow RCP subscriber. Server memory per
stream is therefore bounded by the two limits, whatever the write rate.

Frames (HTML living standard, server-sent events)::

    id: <wal_offset>\\nevent: transition\\ndata: <the RCP event object>\\n\\n
    event: notice\\ndata: <the RCP notice, e.g. HISTORY_LOST>\\n\\n
    : keep-alive\\n\\n                       (when nothing was sent for a while)

The first frame is ``event: subscribed`` with the WATCH result (no ``id``, so
it does not move the client's ``Last-Event-ID``). Raises nothing; the stream
ends when the client disconnects or the server shuts down.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import AsyncIterator
from typing import Any, Protocol

import orjson

HIGH_WATER = 256  # queued messages at which the hub stops sending
LOW_WATER = 64  # queued messages below which a stopped hub is asked to resume
FRAMES_PER_WRITE = 256  # messages joined into one body chunk
RETRY_MS = 1000  # the client's reconnection delay


class Resumable(Protocol):
    """The hub, as a stream sees it."""

    def resume(self, sink: Any) -> None: ...

    def drop(self, sink: Any) -> None: ...


def frame(message: dict[str, Any]) -> bytes:
    """One SSE frame for a hub message (an event or a notice)."""
    data = orjson.dumps(message)
    if message.get("type") == "event":
        return b"id: %d\nevent: transition\ndata: %s\n\n" % (message["wal_offset"], data)
    return b"event: notice\ndata: " + data + b"\n\n"


def opening(result: dict[str, Any]) -> bytes:
    """The first frame: the reconnection delay and the WATCH result."""
    return b"retry: %d\nevent: subscribed\ndata: %s\n\n" % (RETRY_MS, orjson.dumps(result))


class EventStream:
    """One SSE response's queue; the hub's sink."""

    def __init__(self, hub: Resumable, keepalive_secs: float) -> None:
        self._hub = hub
        self._keepalive = keepalive_secs
        self._queue: deque[dict[str, Any]] = deque()
        self._wake = asyncio.Event()
        self._stopped = False
        self._held = False  # the hub found this stream unwritable since the last resume
        self.peak = 0  # the most messages ever queued (for tests and stats)

    # -- the hub's side ----------------------------------------------------------------
    def send_event(self, message: dict[str, Any]) -> None:
        self._queue.append(message)
        if len(self._queue) > self.peak:
            self.peak = len(self._queue)
        self._wake.set()

    def writable(self) -> bool:
        if self._stopped or len(self._queue) >= HIGH_WATER:
            self._held = True
            return False
        return True

    # -- the response's side -----------------------------------------------------------
    def stop(self) -> None:
        """End the stream (server shutdown)."""
        self._stopped = True
        self._wake.set()

    async def body(self, first: list[bytes]) -> AsyncIterator[bytes]:
        """The response body; drops the stream's subscriptions when it ends."""
        try:
            yield b"".join(first)
            while not self._stopped:
                if not self._queue:
                    self._wake.clear()
                    try:
                        await asyncio.wait_for(self._wake.wait(), self._keepalive)
                    except TimeoutError:
                        yield b": keep-alive\n\n"
                    continue
                yield self._take()
                if self._held and len(self._queue) < LOW_WATER:
                    self._held = False
                    self._hub.resume(self)
        finally:
            self._stopped = True
            with contextlib.suppress(Exception):
                self._hub.drop(self)

    def _take(self) -> bytes:
        queue = self._queue
        count = min(len(queue), FRAMES_PER_WRITE)
        return b"".join(frame(queue.popleft()) for _ in range(count))
