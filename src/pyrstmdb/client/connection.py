"""One open connection to a server: the asyncio transport of both clients.

:class:`Link` writes requests (numbered ``"1"``, ``"2"``, … per connection,
HELLO first) and runs one reader task that matches responses to their
requests by id — so any number of requests may be in flight at once — and
hands pushed events and notices to a callback. :func:`open_link` connects
(TCP, optional TLS), sends HELLO and, with a token, AUTH::

    open_connection ─▶ Link ─▶ HELLO ─▶ [AUTH] ─▶ ready
                        │
                        └─ reader task: bytes ─▶ StreamSplitter ─▶ response │ event │ notice

Raises: ``ClientConnectionError`` naming the address and the reason when the
connection cannot be made; the ``RstmdbError`` of a failed HELLO or AUTH;
:class:`LinkLost` (internal) for requests whose connection went away;
:class:`RequestTimeout` when a response does not come in time; ``BadRequest``
for a request that cannot be encoded.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import os
import socket
import ssl
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pyrstmdb.client.events import Event, Notice
from pyrstmdb.client.options import ClientOptions
from pyrstmdb.errors import BadRequest, ClientConnectionError, error_from_dict
from pyrstmdb.protocol import (
    ClientCodec,
    FramingError,
    MessageTooLarge,
    Operation,
    Response,
    StreamSplitter,
    parse_server_message,
    request_message,
)
from pyrstmdb.protocol import Event as WireEvent
from pyrstmdb.protocol import Notice as WireNotice

log = logging.getLogger("pyrstmdb.client")

JsonObject = dict[str, Any]
Push = Event | Notice
READ_SIZE = 1 << 16
FEATURES = ["idempotency", "batch"]


class LinkLost(Exception):
    """The connection of a request went away before its response came."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class RequestTimeout(ClientConnectionError, TimeoutError):
    """No response within the request timeout (the connection stays usable)."""


@dataclass(slots=True)
class _Pending:
    future: asyncio.Future[JsonObject]
    on_ok: Callable[[JsonObject], None] | None


def parse_message(payload: bytes) -> Response | WireEvent | Notice:
    """A server message, with notices turned into the client's typed ``Notice``."""
    try:
        message = parse_server_message(payload)
    except ValueError as exc:
        raise FramingError(f"invalid server message: {exc}") from None
    if isinstance(message, WireNotice):
        return Notice.from_dict(message.fields)
    return message


def describe(exc: BaseException) -> str:
    """A short reason for a failed connection attempt."""
    if isinstance(exc, ssl.SSLCertVerificationError):
        return f"TLS certificate verification failed: {exc.verify_message}"
    if isinstance(exc, ssl.SSLError):
        return f"TLS handshake failed: {exc.reason or exc}"
    if isinstance(exc, socket.gaierror):
        return f"cannot resolve host: {exc.strerror}"
    if isinstance(exc, OSError) and exc.errno:
        return os.strerror(exc.errno)
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return str(exc) or type(exc).__name__


class Link:
    """One connection; see the module docstring."""

    def __init__(
        self,
        address: str,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        on_push: Callable[[Push], None],
        on_lost: Callable[[Link], None],
    ) -> None:
        self.address = address
        self._reader = reader
        self._writer = writer
        self._on_push = on_push
        self._on_lost = on_lost
        self._codec = ClientCodec()
        self._splitter = StreamSplitter()
        self._ids = itertools.count(1)
        self._pending: dict[str, _Pending] = {}
        self.lost_reason: str | None = None
        self._task = asyncio.get_running_loop().create_task(self._read_loop())

    @property
    def alive(self) -> bool:
        return self.lost_reason is None

    # -- requests ---------------------------------------------------------------------------
    def _encode(self, request_id: str, op: Operation, params: JsonObject) -> bytes:
        try:
            return self._codec.encode(request_message(request_id, op, params))
        except MessageTooLarge as exc:
            raise BadRequest(f"invalid request: {exc}") from None
        except TypeError as exc:
            raise BadRequest(f"invalid request: params are not JSON: {exc}") from None

    def send(
        self,
        op: Operation,
        params: JsonObject,
        on_ok: Callable[[JsonObject], None] | None = None,
    ) -> tuple[str, asyncio.Future[JsonObject]]:
        """Write one request now; the future resolves with its result."""
        if self.lost_reason is not None:
            raise LinkLost(self.lost_reason)
        request_id = str(next(self._ids))
        data = self._encode(request_id, op, params)
        future: asyncio.Future[JsonObject] = asyncio.get_running_loop().create_future()
        self._pending[request_id] = _Pending(future, on_ok)
        self._writer.write(data)
        return request_id, future

    async def request(
        self,
        op: Operation,
        params: JsonObject,
        timeout: float | None,
        on_ok: Callable[[JsonObject], None] | None = None,
    ) -> JsonObject:
        """Send and wait for the result; raises the error response as ``RstmdbError``."""
        request_id, future = self.send(op, params, on_ok)
        try:
            with contextlib.suppress(ConnectionError):
                await self._writer.drain()
            async with asyncio.timeout(timeout):
                return await future
        except TimeoutError:
            if future.done() and not future.cancelled():
                raise
            raise RequestTimeout(
                f"{self.address}: no response to {op} within {timeout:g} s"
            ) from None
        finally:
            self._pending.pop(request_id, None)

    # -- reading ---------------------------------------------------------------------------
    async def _read_loop(self) -> None:
        reason = "connection closed"
        try:
            while True:
                data = await self._reader.read(READ_SIZE)
                if not data:
                    reason = "server closed the connection"
                    break
                for message in self._splitter.feed(data):
                    self._receive(message)
        except FramingError as exc:
            reason = f"protocol error: {exc}"
        except OSError as exc:
            reason = describe(exc)
        except asyncio.CancelledError:
            reason = "connection closed"
        finally:
            self._lost(reason)

    def _receive(self, payload: bytes) -> None:
        try:
            message = parse_message(payload)
        except ValueError as exc:  # a notice without a subscription id
            log.warning("%s: dropped a malformed notice: %s", self.address, exc)
            return
        self._dispatch(message)

    def _dispatch(self, message: Response | WireEvent | Notice) -> None:
        if isinstance(message, Response):
            self._on_response(message)
        elif isinstance(message, Notice):
            self._on_push(message)
        else:
            try:
                event = Event.from_dict(message.fields)
            except ValueError as exc:
                log.warning("%s: dropped a malformed event: %s", self.address, exc)
                return
            self._on_push(event)

    def _on_response(self, response: Response) -> None:
        if response.id is None:
            log.warning("%s: error response without id: %s", self.address, response.error)
            return
        pending = self._pending.pop(response.id, None)
        if pending is None or pending.future.done():
            return
        if not response.ok:
            pending.future.set_exception(error_from_dict(response.error or {}))
            return
        result = response.result if response.result is not None else {}
        try:
            if pending.on_ok is not None:
                pending.on_ok(result)
        except Exception as exc:  # a result the caller cannot use
            pending.future.set_exception(exc)
            return
        pending.future.set_result(result)

    def _lost(self, reason: str) -> None:
        if self.lost_reason is not None:
            return
        self.lost_reason = reason
        pending, self._pending = self._pending, {}
        for item in pending.values():
            if not item.future.done():
                item.future.set_exception(LinkLost(reason))
        self._writer.close()
        self._on_lost(self)

    async def close(self) -> None:
        """Close the connection; pending requests fail with :class:`LinkLost`."""
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        with contextlib.suppress(OSError, asyncio.TimeoutError):
            async with asyncio.timeout(1.0):
                await self._writer.wait_closed()


def _hello_params(options: ClientOptions) -> JsonObject:
    return {
        "protocol_version": 1,
        "client_name": options.client_name,
        "wire_modes": ["binary_json"],
        "features": list(FEATURES),
    }


async def _transport(
    options: ClientOptions, context: ssl.SSLContext | None
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    server_hostname = options.server_name if context is not None else None
    return await asyncio.open_connection(
        options.host, options.port, ssl=context, server_hostname=server_hostname
    )


async def _handshake(link: Link, options: ClientOptions) -> JsonObject:
    hello = await link.request(Operation.HELLO, _hello_params(options), None)
    if options.token is not None:
        auth = {"method": "bearer", "token": options.token}
        await link.request(Operation.AUTH, auth, None)
    return hello


async def open_link(
    options: ClientOptions,
    context: ssl.SSLContext | None,
    on_push: Callable[[Push], None],
    on_lost: Callable[[Link], None],
) -> tuple[Link, JsonObject]:
    """Connect, HELLO and AUTH within ``connect_timeout``; returns the link and HELLO result."""
    link: Link | None = None
    try:
        async with asyncio.timeout(options.connect_timeout):
            reader, writer = await _transport(options, context)
            link = Link(options.address, reader, writer, on_push, on_lost)
            return link, await _handshake(link, options)
    except TimeoutError:
        reason = f"timed out after {options.connect_timeout:g} s"
    except LinkLost as exc:
        reason = f"connection lost during handshake: {exc.reason}"
    except OSError as exc:
        reason = describe(exc)
    except BaseException:
        if link is not None:
            await link.close()
        raise
    if link is not None:
        await link.close()
    raise ClientConnectionError(f"{options.address}: {reason}")
