"""The HTTP listener: uvicorn serving the API inside the server's running event loop.

:class:`HttpServer` binds its socket itself (so a bind failure is a one-line
``StartupError`` and port 0 reports the chosen port), then runs uvicorn's
server on it in the loop the RCP listener runs on. uvicorn installs no signal
handlers (``main`` owns SIGINT and SIGTERM) and no logging configuration, and
runs no periodic task: an idle HTTP listener costs the loop nothing (the
``Date`` header is computed per response, cached for a second, instead of by
uvicorn's ten-per-second ticker). :meth:`HttpServer.stop` ends the event streams, stops accepting,
and lets the requests in flight finish for at most ``grace_secs``.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import ssl
import time
from collections.abc import Iterator
from email.utils import formatdate
from typing import Any

import uvicorn
from fastapi import FastAPI

from pyrstmdb.config import format_address
from pyrstmdb.server.http.sse import EventStream

log = logging.getLogger("pyrstmdb.server.http")


class _EmbeddedServer(uvicorn.Server):
    """uvicorn without its own signal handling."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def bind_socket(host: str, port: int) -> socket.socket:
    """A listening TCP socket on ``host:port``; raises ``OSError``."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    family, kind, proto, _, address = infos[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        sock.bind(address)
        sock.listen(1024)
        sock.setblocking(False)
    except BaseException:
        sock.close()
        raise
    return sock


class _Dated:
    """Adds the ``Date`` header to every response (formatted at most once a second)."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self._second = -1
        self._header = b""

    def _date(self) -> bytes:
        now = int(time.time())
        if now != self._second:
            self._second = now
            self._header = formatdate(now, usegmt=True).encode("ascii")
        return self._header

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def dated(message: Any) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", ()), (b"date", self._date())]
            await send(message)

        await self.app(scope, receive, dated)


class HttpServer:
    """uvicorn over one bound socket, started and stopped by the RCP ``Server``."""

    def __init__(self, app: FastAPI, sock: socket.socket, context: ssl.SSLContext | None) -> None:
        self.app = app
        self._sock = sock
        config = uvicorn.Config(
            _Dated(app),
            lifespan="off",
            log_config=None,
            access_log=False,
            server_header=False,
            date_header=False,
            proxy_headers=False,
            ws="none",
            timeout_graceful_shutdown=5,
        )
        config.load()
        config.ssl = context
        self._server = _EmbeddedServer(config)
        self._server.lifespan = config.lifespan_class(config)
        self._server.server_state.default_headers = list(config.encoded_headers)
        host, port = sock.getsockname()[:2]
        scheme = "https" if context is not None else "http"
        self.url = f"{scheme}://{format_address(host, port)}/"

    async def start(self) -> None:
        await self._server.startup(sockets=[self._sock])

    async def stop(self) -> None:
        """End the event streams, stop accepting, finish requests in flight."""
        streams: set[EventStream] = self.app.state.streams
        for stream in list(streams):
            stream.stop()
        self._server.should_exit = True
        try:
            await self._server.shutdown(sockets=[self._sock])
        except Exception:
            log.exception("HTTP listener shutdown failed")
