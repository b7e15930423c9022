"""The listening server: TLS, connection limit, idle timeout, graceful shutdown.

:class:`Server` wires one ``Database`` to the network: it starts the
subscription hub, the durability waiter, the dispatcher, the metrics listener
(only when enabled) and the TCP listener (plain, TLS, or TLS with required
client certificates), then serves until
:meth:`Server.stop` is called (``main`` calls it on SIGINT and SIGTERM).

* ``network.max_connections``: a connection beyond the limit is accepted and
  closed at once, nothing sent, and counted in ``rstmdb_connections_rejected_total``.
* ``network.idle_timeout_secs``: a connection with no request, no event written
  and no response owed for that long is closed silently (aborted if bytes written
  to it are still unread: its subscriptions end either way).
* Shutdown: stop accepting, stop reading, answer the requests in flight (up to
  :data:`DRAIN_SECONDS`), close every connection, close the hub and the metrics
  listener, then close the database (final fsync) in a worker thread.

Raises :class:`StartupError` (one line, for the operator) when a listener cannot
be bound or a certificate cannot be loaded.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import ssl
from collections.abc import Coroutine, Mapping
from typing import Any

from pyrstmdb import __version__
from pyrstmdb.aio import DurabilityWaiter
from pyrstmdb.config import Config, TlsConfig, format_address
from pyrstmdb.database import Database
from pyrstmdb.server.connection import Connection, Shared
from pyrstmdb.server.dispatch import Dispatcher
from pyrstmdb.server.handlers.base import Settings
from pyrstmdb.server.http import HttpServer, open_http
from pyrstmdb.server.metrics import ServerMetrics, start_metrics_listener
from pyrstmdb.subscriptions import Hub

log = logging.getLogger("pyrstmdb.server")

DRAIN_SECONDS = 5.0


class StartupError(Exception):
    """The server cannot start; the message is one line for the operator."""


def build_ssl_context(tls: TlsConfig) -> ssl.SSLContext | None:
    """The server TLS context, or ``None`` when TLS is off; raises ``StartupError``."""
    if not tls.enabled:
        return None
    assert tls.cert_path is not None and tls.key_path is not None
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        context.load_cert_chain(tls.cert_path, tls.key_path)
    except (OSError, ValueError) as exc:
        raise StartupError(
            f"cannot load TLS certificate {tls.cert_path!r} with key {tls.key_path!r}: "
            f"{_reason(exc)}"
        ) from None
    if tls.require_client_cert:
        assert tls.client_ca_path is not None
        try:
            context.load_verify_locations(cafile=tls.client_ca_path)
        except (OSError, ValueError) as exc:
            raise StartupError(
                f"cannot load TLS client CA {tls.client_ca_path!r}: {_reason(exc)}"
            ) from None
        context.verify_mode = ssl.CERT_REQUIRED
    return context


class _Connections:
    """The open connections; refuses the ones beyond ``max_connections``."""

    def __init__(self, limit: int, metrics: ServerMetrics | None) -> None:
        self.open: set[Connection] = set()
        self._limit = limit
        self._metrics = metrics
        self.changed = asyncio.Event()

    def add(self, conn: Connection) -> bool:
        if len(self.open) >= self._limit:
            log.warning(
                "connection from %s refused: limit of %d connections reached",
                conn.peer,
                self._limit,
            )
            if self._metrics is not None:
                self._metrics.connection_rejected()
            return False
        self.open.add(conn)
        if self._metrics is not None:
            self._metrics.connection_opened()
        return True

    def remove(self, conn: Connection) -> None:
        if conn in self.open:
            self.open.discard(conn)
            if self._metrics is not None:
                self._metrics.connection_closed()
            self.changed.set()


class Server:
    """One running rstmdb server over an open ``Database``."""

    def __init__(self, config: Config, db: Database) -> None:
        self.config = config
        self.db = db
        self.addresses: list[str] = []
        self.metrics_address: str | None = None
        self.http_url: str | None = None
        self._http: HttpServer | None = None
        self._listener: asyncio.base_events.Server | None = None
        self._metrics_listener: asyncio.base_events.Server | None = None
        self._hub: Hub | None = None
        self._waiter: DurabilityWaiter | None = None
        self._connections: _Connections | None = None
        self._idle_task: asyncio.Task[None] | None = None
        self._stopped = asyncio.Event()

    async def start(self) -> None:
        """Bind and start serving; raises ``StartupError`` on a bind or certificate failure."""
        loop = asyncio.get_running_loop()
        config = self.config
        context = build_ssl_context(config.tls)
        core = self.db.core
        self._hub = Hub(core, loop, buffer_events=config.subscriptions.buffer_events)
        metrics = ServerMetrics(core, self._hub_stats) if config.metrics.enabled else None
        self._connections = _Connections(config.network.max_connections, metrics)
        self._waiter = DurabilityWaiter(core, loop)
        settings = Settings(__version__, config.storage.allow_flush_all)
        shared = Shared(
            core=core,
            waiter=self._waiter,
            dispatcher=Dispatcher(metrics),
            settings=settings,
            auth_required=config.auth.required,
            token_hashes=config.auth.token_hashes,
            hub=self._hub,
            metrics=metrics,
            registry=self._connections,
            loop=loop,
        )
        if metrics is not None:
            self._metrics_listener = await _listen(
                "metrics",
                config.metrics.bind_addr,
                start_metrics_listener(metrics, config.metrics.bind_host, config.metrics.bind_port),
            )
            self.metrics_address = _bound(self._metrics_listener)[0]
        self._listener = await _listen(
            "",
            config.network.bind_addr,
            loop.create_server(
                lambda: Connection(shared),
                config.network.bind_host,
                config.network.bind_port,
                ssl=context,
                backlog=1024,
            ),
        )
        self.addresses = _bound(self._listener)
        if config.http.enabled:
            await self._start_http(settings, context)
        self._idle_task = asyncio.create_task(self._sweep_idle())

    async def _start_http(self, settings: Settings, context: ssl.SSLContext | None) -> None:
        assert self._hub is not None and self._waiter is not None
        address = self.config.http.bind_addr
        try:
            http = open_http(self.config, self.db.core, self._waiter, settings, self._hub, context)
        except OSError as exc:
            if self._listener is not None:
                self._listener.close()
            raise StartupError(f"cannot listen for http on {address}: {_reason(exc)}") from None
        await http.start()
        self._http = http
        self.http_url = http.url

    def _hub_stats(self) -> Mapping[str, int]:
        return {} if self._hub is None else self._hub.stats()

    async def _sweep_idle(self) -> None:
        timeout = float(self.config.network.idle_timeout_secs)
        period = min(1.0, timeout / 4)
        loop = asyncio.get_running_loop()
        assert self._connections is not None
        while True:
            await asyncio.sleep(period)
            now = loop.time()
            for conn in list(self._connections.open):
                if not conn.busy and now - conn.last_activity >= timeout:
                    log.debug("closing idle connection from %s", conn.peer)
                    conn.close_idle()

    def stop(self) -> None:
        """Ask :meth:`serve_until_stopped` to shut down (safe to call twice)."""
        self._stopped.set()

    async def serve_until_stopped(self) -> None:
        await self._stopped.wait()
        await self.shutdown()

    async def shutdown(self) -> None:
        """Stop accepting, answer what is in flight, close everything, fsync."""
        log.info("shutting down")
        if self._listener is not None:
            self._listener.close()
        if self._idle_task is not None:
            self._idle_task.cancel()
        if self._http is not None:
            await self._http.stop()
        await self._drain_connections()
        if self._hub is not None:
            await self._hub.close()
        if self._metrics_listener is not None:
            self._metrics_listener.close()
        if self._waiter is not None:
            self._waiter.close()
        await asyncio.to_thread(self.db.close)
        log.info("Server stopped")

    async def _drain_connections(self) -> None:
        connections = self._connections
        if connections is None:
            return
        for conn in list(connections.open):
            conn.finish()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + DRAIN_SECONDS
        while connections.open and loop.time() < deadline:
            connections.changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(connections.changed.wait(), deadline - loop.time())
        for conn in list(connections.open):
            conn.abort()
        await asyncio.sleep(0)


def _reason(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.errno:
        return os.strerror(exc.errno).lower()
    return str(exc) or type(exc).__name__


async def _listen(
    what: str, address: str, starting: Coroutine[Any, Any, asyncio.base_events.Server]
) -> asyncio.base_events.Server:
    try:
        return await starting
    except OSError as exc:
        label = f"for {what} " if what else ""
        raise StartupError(f"cannot listen {label}on {address}: {_reason(exc)}") from None


def _bound(listener: asyncio.base_events.Server) -> list[str]:
    addresses = []
    for sock in listener.sockets:
        host, port = sock.getsockname()[:2]
        addresses.append(format_address(host, port))
    return addresses
