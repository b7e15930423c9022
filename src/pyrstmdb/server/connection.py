"""One client connection: bytes -> codec -> dispatch -> responses in request order -> bytes.

:class:`Connection` is an ``asyncio.Protocol``; the event loop calls it when
bytes arrive, and it writes responses back. It only moves bytes and keeps the
order; what requests mean is :mod:`dispatch`'s and the handlers' business.

Ordering and pipelining: every decoded message gets a :class:`Slot` appended
to a FIFO at once; requests keep being read and run while earlier responses
wait for their fsync, and responses leave strictly in request order (the head
of the FIFO first). All responses that are ready together go out in one write.

Backpressure: reading stops while the transport's write buffer is above its
high-water mark (a client that does not read cannot make the server buffer
without bound) and while too many responses are in flight; it resumes below
the low-water marks. Subscription events are written straight away, between
responses.

Limits: with TLS the handshake is started here on the accepted connection, so
it is counted and idle-timed like any other. The size an unfinished message
will reach (announced by its frame header) is reserved in the server's
:class:`~pyrstmdb.server.limits.BufferBudget`; a connection whose message does
not fit, or that announces more than 64 KiB before a required AUTH, is closed.

Closing: a framing fault (bad magic, version, flags, size, CRC) logs why,
stops reading, answers what came before it and closes; BYE closes after its
response; shutdown stops reading, answers what is in flight, then closes; the
idle timeout closes, or aborts if the peer has not read what was already
written. Closing removes the connection's subscriptions and ends its backups. Raises nothing to the
loop.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol, cast

from pyrstmdb.aio import DurabilityWaiter
from pyrstmdb.core import Core
from pyrstmdb.errors import InternalError
from pyrstmdb.protocol import (
    FramingError,
    InvalidMessage,
    MessageTooLarge,
    Operation,
    Request,
    ServerCodec,
    error_response,
)
from pyrstmdb.server.dispatch import Dispatcher, Slot
from pyrstmdb.server.handlers.base import Context, Settings, Subscriptions
from pyrstmdb.server.limits import PRE_AUTH_MAX_MESSAGE, BufferBudget
from pyrstmdb.server.metrics import ServerMetrics
from pyrstmdb.server.session import Session

log = logging.getLogger("pyrstmdb.server.connection")

WRITE_HIGH_WATER = 1024 * 1024
WRITE_LOW_WATER = 256 * 1024
MAX_IN_FLIGHT = 1024
RESUME_IN_FLIGHT = 256


class Hub(Subscriptions, Protocol):
    """The subscription hub as the connection uses it (see ``pyrstmdb.subscriptions``)."""

    def drop(self, sink: Any) -> None: ...

    def resume(self, sink: Any) -> None: ...

    def stats(self) -> dict[str, int]: ...


class Registry(Protocol):
    """The server's set of open connections (enforces ``max_connections``)."""

    def add(self, conn: Connection) -> bool: ...

    def remove(self, conn: Connection) -> None: ...


@dataclass(slots=True)
class Shared:
    """What every connection of one server uses."""

    core: Core
    waiter: DurabilityWaiter
    dispatcher: Dispatcher
    settings: Settings
    auth_required: bool
    token_hashes: frozenset[str]
    hub: Hub | None
    metrics: ServerMetrics | None
    registry: Registry
    loop: asyncio.AbstractEventLoop
    budget: BufferBudget | None = None  # unfinished incoming messages, all connections
    tls: ssl.SSLContext | None = None  # TLS is started on each accepted TCP connection
    handshake_timeout: float = 60.0


class Connection(asyncio.Protocol):
    def __init__(self, shared: Shared) -> None:
        self._shared = shared
        self._loop = shared.loop
        self._codec = ServerCodec()
        self._slots: deque[Slot] = deque()
        self._transport: asyncio.Transport | None = None
        self._ctx: Context | None = None
        self._paused_for: set[str] = set()
        self._write_paused = False
        self._flush_scheduled = False
        self._draining = False  # stop reading; close once every response is written
        self._closed = False
        self._registered = False
        self._tls = shared.tls is not None
        self._held = 0  # bytes reserved in the shared budget for an unfinished message
        self._handshake: asyncio.Task[None] | None = None  # held: the loop keeps no reference
        self._early: list[bytes] = []  # bytes received before TLS took over the transport
        self._tls_installed = False
        self._early_requests: list[bytes] = []  # decrypted before the handshake's end ran
        self.peer = "?"
        self.last_activity = self._loop.time()

    # -- asyncio.Protocol ---------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.Transport, transport)
        self.peer = _peer_name(transport)
        if not self._shared.registry.add(self):
            self._closed = True
            self._transport.close()  # nothing was written: the peer just sees the close
            return
        self._registered = True
        if self._shared.tls is not None:
            # Counted (max_connections) and timed (idle sweep) from the TCP accept on;
            # the handshake runs on top, bounded by its own timeout too.
            self._transport.pause_reading()
            self._handshake = self._loop.create_task(
                self._start_tls(self._transport, self._shared.tls)
            )
            return
        self._ready(self._transport)

    async def _start_tls(self, raw: asyncio.Transport, context: ssl.SSLContext) -> None:
        # start_tls puts the TLS protocol in our place at once and schedules its start;
        # bytes that reached us before (uvloop reads right after connection_made) are
        # handed to it first, before reading resumes.
        self._loop.call_soon(self._hand_over_early, raw)
        try:
            secured = await self._loop.start_tls(
                raw,
                self,
                context,
                server_side=True,
                ssl_handshake_timeout=self._shared.handshake_timeout,
            )
        except (OSError, ssl.SSLError, TimeoutError) as exc:
            log.debug("TLS handshake with %s failed: %s", self.peer, exc)
            self.connection_lost(exc)
            return
        finally:
            self._handshake = None
        if secured is None or self._closed:
            return
        self._ready(secured)

    def _before_ready(self, data: bytes) -> None:
        if not self._tls_installed:  # raw bytes meant for the TLS protocol: keep them
            self._early.append(data)
            if self._transport is not None:
                self._transport.pause_reading()
        else:  # requests that came with the end of the handshake: run them once ready
            self._early_requests.append(data)

    def _hand_over_early(self, raw: asyncio.Transport) -> None:
        self._tls_installed = True
        data, self._early = b"".join(self._early), []
        protocol = raw.get_protocol()
        if data and protocol is not self and not raw.is_closing():
            _feed(protocol, data)

    def _ready(self, transport: asyncio.Transport) -> None:
        self._transport = transport
        transport.set_write_buffer_limits(high=WRITE_HIGH_WATER, low=WRITE_LOW_WATER)
        session = Session(self._shared.auth_required, self._shared.token_hashes)
        shared = self._shared
        self._ctx = Context(
            shared.core, shared.waiter, session, shared.settings, shared.loop, shared.hub, self
        )
        log.debug("connection from %s", self.peer)
        early, self._early_requests = self._early_requests, []
        for data in early:
            self.data_received(data)

    def data_received(self, data: bytes) -> None:
        if self._ctx is None and self._tls and not self._closed:
            self._before_ready(data)
            return
        if self._draining or self._ctx is None:
            return
        try:
            messages = self._codec.feed(data)
        except FramingError as exc:
            self._run(exc.decoded)
            log.info("closing connection from %s: %s", self.peer, exc.reason)
            self.finish()
            return
        except Exception:
            log.exception("closing connection from %s: cannot decode its input", self.peer)
            self.finish()
            return
        self._run(messages)
        if self._codec.pending_size != self._held:
            self._hold_pending()

    def _hold_pending(self) -> None:
        """Reserve what the unfinished message will take; close if it may not be held."""
        pending = self._codec.pending_size
        session = self._ctx.session if self._ctx is not None else None
        if (
            session is not None
            and session.auth_required
            and not session.authenticated
            and pending > PRE_AUTH_MAX_MESSAGE
        ):
            reason = (
                f"message of {pending} bytes before authentication "
                f"(limit {PRE_AUTH_MAX_MESSAGE} bytes)"
            )
        elif self._shared.budget is None or self._shared.budget.change(self._held, pending):
            self._held = pending
            return
        else:
            reason = (
                f"its message of {pending} bytes would take unfinished messages of all "
                f"connections over network.frame_buffer_mb ({self._shared.budget.limit} bytes)"
            )
        log.info("closing connection from %s: %s", self.peer, reason)
        self._release()
        self._codec = ServerCodec()  # drop what was buffered at once
        self.finish()

    def _release(self) -> None:
        if self._held and self._shared.budget is not None:
            self._shared.budget.change(self._held, 0)
        self._held = 0

    def eof_received(self) -> bool | None:
        self.finish()
        # Keep our half open until the remaining responses are written (TLS cannot).
        return None if self._tls else True

    def connection_lost(self, exc: Exception | None) -> None:
        self._closed = True
        self._slots.clear()
        self._release()
        if not self._registered:
            return
        self._registered = False
        self._shared.registry.remove(self)
        if self._shared.hub is not None:
            self._shared.hub.drop(self)
        if self._ctx is not None:
            self._ctx.release()
        log.debug("connection from %s closed", self.peer)

    def pause_writing(self) -> None:
        self._write_paused = True
        self._pause("write")

    def resume_writing(self) -> None:
        self._write_paused = False
        self._resume("write")
        if self._shared.hub is not None and not self._closed:
            self._shared.hub.resume(self)

    # -- requests -----------------------------------------------------------------
    def _run(self, messages: list[Request | InvalidMessage]) -> None:
        if not messages:
            return
        ctx = self._ctx
        assert ctx is not None
        dispatch = self._shared.dispatcher.dispatch
        for message in messages:
            self._slots.append(dispatch(ctx, message, self._schedule_flush))
            if type(message) is Request and message.op is Operation.BYE:
                self._draining = True
                self._pause("bye")
                break
        self.last_activity = self._loop.time()
        self._flush()
        if len(self._slots) >= MAX_IN_FLIGHT:
            self._pause("in-flight")

    def _schedule_flush(self) -> None:
        if not self._flush_scheduled and not self._closed:
            self._flush_scheduled = True
            self._loop.call_soon(self._flush)

    def _flush(self) -> None:
        self._flush_scheduled = False
        slots = self._slots
        transport = self._transport
        if self._closed or transport is None:
            return
        chunks: list[bytes] = []
        after: list[Callable[[], None]] = []
        while slots and slots[0].message is not None:
            slot = slots.popleft()
            chunks.append(self._encode(slot))
            if slot.after_write is not None:
                after.append(slot.after_write)
        if chunks and not transport.is_closing():
            transport.write(chunks[0] if len(chunks) == 1 else b"".join(chunks))
            for action in after:
                self._after_write(action)
        if len(slots) < RESUME_IN_FLIGHT:
            self._resume("in-flight")
        if self._draining and not slots and not self._closed:
            transport.close()

    def _after_write(self, action: Callable[[], None]) -> None:
        try:
            action()
        except Exception:
            log.exception("action after a response to %s failed", self.peer)

    def _encode(self, slot: Slot) -> bytes:
        codec = self._codec
        if codec.output_mode != slot.mode:
            codec.output_mode = slot.mode
        message = slot.message
        assert message is not None
        try:
            return codec.encode(message)
        except MessageTooLarge as exc:
            error = InternalError(
                f"response too large: {exc.size} bytes exceeds the frame limit of "
                f"{exc.limit} bytes",
                {"size": exc.size, "limit": exc.limit},
            )
        except TypeError:
            log.exception("response to request %s cannot be encoded", message.get("id"))
            error = InternalError("response cannot be encoded as JSON")
        if self._shared.metrics is not None:
            self._shared.metrics.failed(error.code.value)
        body = error.to_dict()
        # The request was carried out (a write was made); only its answer cannot be
        # sent, so a retry would repeat it.
        body["retryable"] = False
        body["message"] += " (the request itself was carried out)"
        return codec.encode(error_response(message.get("id"), body))

    # -- reading control ---------------------------------------------------------------
    def _pause(self, reason: str) -> None:
        if not self._paused_for and self._transport is not None and not self._closed:
            self._transport.pause_reading()
        self._paused_for.add(reason)

    def _resume(self, reason: str) -> None:
        if reason not in self._paused_for:
            return
        self._paused_for.discard(reason)
        if not self._paused_for and self._transport is not None and not self._closed:
            self._transport.resume_reading()

    # -- closing -----------------------------------------------------------------------
    def finish(self) -> None:
        """Stop reading, write the responses still owed, then close."""
        if self._closed:
            return
        self._draining = True
        self._pause("closing")
        self._flush()

    def close(self) -> None:
        """Close once what was already written has been sent (BYE)."""
        self._draining = True
        if self._transport is not None and not self._closed:
            self._transport.close()

    def close_idle(self) -> None:
        """Close after the idle timeout.

        What was written is sent first, unless the peer left earlier bytes unread for the
        whole timeout (a stalled subscriber): waiting for it could last forever, keeping
        the connection and its subscriptions, so the connection is aborted instead.
        """
        transport = self._transport
        if transport is not None and not self._closed and transport.get_write_buffer_size():
            self._draining = True
            transport.abort()
        else:
            self.close()

    def abort(self) -> None:
        """Drop the connection at once (shutdown deadline)."""
        if self._transport is not None and not self._closed:
            self._transport.abort()

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def busy(self) -> bool:
        """True while responses are still owed to the client."""
        return bool(self._slots)

    # -- subscriptions (the hub's sink) ------------------------------------------------
    def send_event(self, message: dict[str, Any]) -> None:
        transport = self._transport
        if self._closed or transport is None or transport.is_closing():
            return
        try:
            data = self._codec.encode(message)
        except MessageTooLarge as exc:
            # Too big for one frame: say so instead of dropping it silently.
            log.warning("event for %s too large to send: %s", self.peer, exc)
            data = self._codec.encode(_too_large_notice(message, exc.size))
        transport.write(data)
        self.last_activity = self._loop.time()

    def writable(self) -> bool:
        return not self._closed and not self._write_paused


def _too_large_notice(message: dict[str, Any], size: int) -> dict[str, Any]:
    return {
        "type": "notice",
        "subscription_id": message.get("subscription_id"),
        "code": "EVENT_TOO_LARGE",
        "instance_id": message.get("instance_id"),
        "wal_offset": message.get("wal_offset"),
        "size": size,
    }


def _feed(protocol: asyncio.BaseProtocol, data: bytes) -> None:
    """Deliver ``data`` as the transport would (buffered protocols copy into their buffer)."""
    get_buffer = getattr(protocol, "get_buffer", None)
    if get_buffer is None:
        cast(asyncio.Protocol, protocol).data_received(data)
        return
    view = memoryview(data)
    while view:
        buffer = memoryview(get_buffer(len(view))).cast("B")
        size = min(len(buffer), len(view))
        buffer[:size] = view[:size]
        cast(asyncio.BufferedProtocol, protocol).buffer_updated(size)
        view = view[size:]


def _peer_name(transport: asyncio.BaseTransport) -> str:
    peer = transport.get_extra_info("peername")
    if isinstance(peer, tuple) and len(peer) >= 2:
        return f"{peer[0]}:{peer[1]}"
    return str(peer)
