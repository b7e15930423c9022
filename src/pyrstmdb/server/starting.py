"""Start-up: the listener opened before the log is loaded, and the replay's progress.

The server binds its address first, then loads the data directory in a worker
thread. Meanwhile :class:`Gate` answers on the real address, so a health check
can tell "starting" from "down" (connection refused):

* ``HELLO`` and ``PING`` answer as usual plus ``"status": "starting"``; ``INFO``
  adds ``status`` and ``replay`` (``records``, ``percent``); ``AUTH`` and ``BYE``
  work as usual (auth rules apply as after start-up);
* every other op gets ``RATE_LIMITED`` (retryable) saying the server is starting,
  with ``details.status = "starting"``.

Once the data is loaded, :meth:`Gate.admit` hands the same listening socket to
the real connections and closes the connections of the starting phase (clients
reconnect; nothing they sent was executed).

:class:`ReplayReport` logs the replay's progress (records and percent) when it
lasts longer than :data:`QUIET_SECONDS`: at most one line per
:data:`REPORT_EVERY` seconds and per :data:`REPORT_STEP` percent (so at most
ten lines however long it takes), then how long loading took.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable
from typing import Any, cast

from pyrstmdb import __version__
from pyrstmdb.engine.commands import MAX_BATCH_OPS
from pyrstmdb.errors import RateLimited, RstmdbError
from pyrstmdb.protocol import (
    MAX_PAYLOAD,
    FramingError,
    InvalidMessage,
    Operation,
    Request,
    ServerCodec,
    error_response,
    ok_response,
)
from pyrstmdb.server.session import PROTOCOL_VERSION, SERVER_FEATURES, SERVER_NAME, Session

log = logging.getLogger("pyrstmdb.server")

QUIET_SECONDS = 1.0
REPORT_EVERY = 1.0
REPORT_STEP = 10  # percent
STARTING = "starting"


class ReplayReport:
    """Follows the replay (called from the loading thread) and logs its progress."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self.started = clock()
        self._next_report = self.started + QUIET_SECONDS
        self._next_percent = 0
        self._lock = threading.Lock()
        self.records = 0
        self.percent = 0
        self.reported = False

    def __call__(self, records: int, done: int, total: int) -> None:
        percent = 100 if total <= 0 else min(100, done * 100 // total)
        now = self._clock()
        with self._lock:
            self.records, self.percent = records, percent
            if now < self._next_report or percent < self._next_percent:
                return
            if percent >= 100 or records == 0:
                return
            self._next_report = now + REPORT_EVERY
            self._next_percent = (percent // REPORT_STEP + 1) * REPORT_STEP
            self.reported = True
        log.info("replaying the log: %s records (%d%%)", f"{records:,}", percent)

    def elapsed(self) -> float:
        return self._clock() - self.started

    def finished(self) -> None:
        """Log that the data is loaded, with the record count and how long it took."""
        log.info(
            "data loaded in %.1f s (%s log records replayed)",
            self.elapsed(),
            f"{self.records:,}",
        )


class _StartingConnection(asyncio.Protocol):
    """A connection accepted before the data is loaded (see the module docstring)."""

    def __init__(self, gate: Gate) -> None:
        self._gate = gate
        self._codec = ServerCodec()
        self._session = Session(gate.auth_required, gate.token_hashes)
        self._transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.Transport, transport)
        self._gate.connections.add(self)

    def connection_lost(self, exc: Exception | None) -> None:
        self._gate.connections.discard(self)
        self._transport = None

    def close(self) -> None:
        if self._transport is not None:
            self._transport.close()

    def data_received(self, data: bytes) -> None:
        try:
            messages = self._codec.feed(data)
        except FramingError as exc:
            messages = exc.decoded
            self._answer(messages)
            self.close()
            return
        self._answer(messages)

    def _answer(self, messages: list[Request | InvalidMessage]) -> None:
        for message in messages:
            if self._transport is None:
                return
            if isinstance(message, InvalidMessage):
                reply = error_response(message.id, _starting_error().to_dict())
            else:
                reply = self._reply(message)
            self._transport.write(self._codec.encode(reply))
            if isinstance(message, Request) and message.op is Operation.BYE:
                self.close()

    def _reply(self, request: Request) -> dict[str, Any]:
        try:
            self._session.authorize(request.op)
            return ok_response(request.id, self._result(request))
        except RstmdbError as exc:
            return error_response(request.id, exc.to_dict())

    def _result(self, request: Request) -> dict[str, Any]:
        op = request.op
        if op is Operation.HELLO:
            result = self._session.hello(request.params, __version__)
            self._codec.output_mode = self._session.wire_mode
            return {**result, "status": STARTING}
        if op is Operation.AUTH:
            return self._session.auth(request.params)
        if op is Operation.PING:
            return {"pong": True, "status": STARTING}
        if op is Operation.BYE:
            return {"goodbye": True}
        if op is Operation.INFO:
            return {
                "server_name": SERVER_NAME,
                "server_version": __version__,
                "protocol_version": PROTOCOL_VERSION,
                "features": list(SERVER_FEATURES),
                "max_frame_bytes": MAX_PAYLOAD,
                "max_batch_ops": MAX_BATCH_OPS,
                "status": STARTING,
                "replay": self._gate.progress(),
            }
        raise _starting_error(self._gate.progress())


def _starting_error(progress: dict[str, int] | None = None) -> RateLimited:
    detail = f" ({progress['percent']}% of the log replayed)" if progress else ""
    return RateLimited(
        f"the server is starting{detail}; retry shortly", {"status": STARTING, **(progress or {})}
    )


class Gate:
    """The listener of the starting phase; :meth:`admit` turns it into the real one."""

    def __init__(
        self, auth_required: bool, token_hashes: frozenset[str], report: ReplayReport
    ) -> None:
        self.auth_required = auth_required
        self.token_hashes = token_hashes
        self.report = report
        self.connections: set[_StartingConnection] = set()
        self.listener: asyncio.base_events.Server | None = None
        self._factory: Callable[[], asyncio.Protocol] = lambda: _StartingConnection(self)

    def progress(self) -> dict[str, int]:
        return {"records": self.report.records, "percent": self.report.percent}

    def protocol(self) -> asyncio.Protocol:
        """The protocol factory given to the listener: starting, then real connections."""
        return self._factory()

    async def listen(self, host: str, port: int) -> asyncio.base_events.Server:
        """Bind (raises ``OSError``) and answer with the starting status (plain TCP: a
        TLS server binds only once loaded, because its connections start TLS themselves)."""
        loop = asyncio.get_running_loop()
        self.listener = await loop.create_server(self.protocol, host, port, backlog=1024)
        return self.listener

    def admit(self, factory: Callable[[], asyncio.Protocol]) -> asyncio.base_events.Server:
        """From now on accept real connections; close the starting ones."""
        assert self.listener is not None
        self._factory = factory
        for conn in list(self.connections):
            conn.close()
        return self.listener

    def close(self) -> None:
        if self.listener is not None:
            self.listener.close()
        for conn in list(self.connections):
            conn.close()
