"""A scripted RCP server for client unit tests, speaking real frames on 127.0.0.1.

:class:`StubServer` runs on its own event-loop thread. Every request reaches
``handler(conn, request)``; the default handler answers HELLO, AUTH and PING
and an error for anything else. ``conn.reply(request, result)``,
``conn.fail(request, code, message)`` and ``conn.push(message)`` send
messages; ``conn.close()`` drops the connection. Every request seen is kept
in ``server.requests`` (op, params) in arrival order.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from typing import Any

from pyrstmdb.protocol import Request, ServerCodec, error_response, ok_response

Handler = Callable[["StubConnection", Request], None]


class StubConnection:
    def __init__(self, server: StubServer, writer: asyncio.StreamWriter) -> None:
        self.server = server
        self.writer = writer
        self.codec = ServerCodec()

    def push(self, message: dict[str, Any]) -> None:
        self.writer.write(self.codec.encode(message))

    def reply(self, request: Request, result: dict[str, Any]) -> None:
        self.push(ok_response(request.id, result))

    def fail(self, request: Request, code: str, message: str, **details: Any) -> None:
        error: dict[str, Any] = {"code": code, "message": message, "retryable": False}
        if details:
            error["details"] = details
        self.push(error_response(request.id, error))

    def close(self) -> None:
        self.writer.close()


def default_handler(conn: StubConnection, request: Request) -> None:
    if request.op == "HELLO":
        conn.reply(
            request,
            {
                "protocol_version": 1,
                "wire_mode": "binary_json",
                "server_name": "stub",
                "server_version": "0",
                "features": [],
            },
        )
    elif request.op == "AUTH":
        conn.reply(request, {"authenticated": True})
    elif request.op == "PING":
        conn.reply(request, {"pong": True})
    else:
        conn.fail(request, "BAD_REQUEST", f"stub does not know {request.op}")


class StubServer:
    def __init__(self, handler: Handler | None = None) -> None:
        self.handler = handler or default_handler
        self.requests: list[tuple[str, dict[str, Any]]] = []
        self.connections: list[StubConnection] = []
        self.loop = asyncio.new_event_loop()
        self.port = 0
        self._server: asyncio.Server | None = None
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> StubServer:
        self._thread.start()
        future = asyncio.run_coroutine_threadsafe(self._listen(), self.loop)
        future.result(timeout=5)
        return self

    async def _listen(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        conn = StubConnection(self, writer)
        self.connections.append(conn)
        try:
            while data := await reader.read(65536):
                for message in conn.codec.feed(data):
                    assert isinstance(message, Request), message
                    self.requests.append((str(message.op), message.params))
                    self.handler(conn, message)
        except (ConnectionError, OSError):
            pass
        finally:
            writer.close()

    def ops(self) -> list[str]:
        return [op for op, _ in self.requests]

    def call(self, fn: Callable[[], None]) -> None:
        """Run ``fn`` on the server's loop and wait for it."""

        async def run() -> None:
            fn()

        asyncio.run_coroutine_threadsafe(run(), self.loop).result(timeout=5)

    def stop(self) -> None:
        async def shutdown() -> None:
            if self._server is not None:
                self._server.close()
            for conn in self.connections:
                conn.close()

        asyncio.run_coroutine_threadsafe(shutdown(), self.loop).result(timeout=5)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(timeout=5)
