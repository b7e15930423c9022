"""The HTTP API (HTTP.md): JSON routes, OpenAPI, SSE streams, docs and the web console.

:func:`open_http` builds and binds the listener for a running ``Server``;
the caller starts and stops it. Raises ``OSError`` when the address cannot
be bound.
"""

from __future__ import annotations

import asyncio
import ssl

from pyrstmdb.aio import DurabilityWaiter
from pyrstmdb.config import Config
from pyrstmdb.core import Core
from pyrstmdb.server.handlers.base import Settings
from pyrstmdb.server.http.app import build_app
from pyrstmdb.server.http.gateway import Gateway
from pyrstmdb.server.http.server import HttpServer, bind_socket
from pyrstmdb.subscriptions import Hub

__all__ = ["HttpServer", "open_http"]


def open_http(
    config: Config,
    core: Core,
    waiter: DurabilityWaiter,
    settings: Settings,
    hub: Hub,
    context: ssl.SSLContext | None,
) -> HttpServer:
    """The HTTP listener of ``config.http``, bound but not yet serving."""
    loop = asyncio.get_running_loop()
    gateway = Gateway(core, waiter, settings, hub, loop)
    app = build_app(
        gateway,
        hub,
        auth_required=config.auth.required,
        token_hashes=config.auth.token_hashes,
        keepalive_secs=float(config.http.sse_keepalive_secs),
    )
    sock = bind_socket(config.http.bind_host, config.http.bind_port)
    return HttpServer(app, sock, context)
