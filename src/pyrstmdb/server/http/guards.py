"""ASGI middleware in front of the HTTP API: body size limit and bearer authentication.

* :class:`BodyLimit`: a request body over ``limit`` bytes (the RCP frame
  limit) is answered 413 ``BAD_REQUEST`` without reading the rest; the body
  is read before the route runs, so the limit holds for chunked bodies too.
* :class:`BearerAuth`: with ``auth.required``, every ``/v1/`` route needs
  ``Authorization: Bearer <token>`` whose SHA-256 is a configured token hash
  (the RCP ``AUTH`` rule, :class:`~pyrstmdb.server.session.Session`). Missing
  → 401 ``UNAUTHORIZED``, wrong → 401 ``AUTH_FAILED``, both with
  ``WWW-Authenticate: Bearer``. The event streams also accept the token as
  the ``access_token`` query parameter (a browser's ``EventSource`` cannot
  set headers). ``/health``, ``/openapi.json``, ``/docs`` and the console's
  files need no token.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any
from urllib.parse import parse_qs

from pyrstmdb.errors import AuthFailed, ErrorCode, RstmdbError, Unauthorized
from pyrstmdb.server.http.errors import error_response, from_error
from pyrstmdb.server.session import Session

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

PROTECTED_PREFIX = "/v1/"
STREAM_SUFFIXES = ("/v1/events", "/events/stream")


class BodyLimit:
    """Refuse request bodies larger than ``limit`` bytes with 413."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = _header(scope, b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.limit:
            await self._refuse(scope, receive, send, int(declared))
            return
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                break  # the client went away; the route sees an empty body
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.limit:
                await self._refuse(scope, receive, send, size)
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send, size: int) -> None:
        message = f"request body of {size} bytes exceeds the limit of {self.limit} bytes"
        details = {"size": size, "limit": self.limit}
        response = error_response(413, ErrorCode.BAD_REQUEST, message, details)
        response.headers["Connection"] = "close"
        await response(scope, receive, send)


class BearerAuth:
    """Check the bearer token on ``/v1/`` routes when authentication is required."""

    def __init__(self, app: ASGIApp, required: bool, token_hashes: frozenset[str]) -> None:
        self.app = app
        self.required = required
        self.token_hashes = token_hashes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.required and scope["type"] == "http":
            path: str = scope.get("path", "")
            if path.startswith(PROTECTED_PREFIX):
                try:
                    self._check(scope, path)
                except RstmdbError as err:
                    await from_error(err)(scope, receive, send)
                    return
        await self.app(scope, receive, send)

    def _check(self, scope: Scope, path: str) -> None:
        token = _bearer(_header(scope, b"authorization"))
        if token is None and path.endswith(STREAM_SUFFIXES):
            query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
            token = (query.get("access_token") or [None])[0]
        if token is None:
            raise Unauthorized("authentication required: send Authorization: Bearer <token>")
        session = Session(True, self.token_hashes)
        try:
            session.auth({"method": "bearer", "token": token})
        except AuthFailed as err:
            raise AuthFailed(err.message) from None


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", ()):
        if key.lower() == name:
            text: str = value.decode("latin-1")
            return text
    return None


def _bearer(value: str | None) -> str | None:
    if value is None:
        return None
    scheme, _, token = value.strip().partition(" ")
    if scheme.lower() != "bearer":
        return ""  # present but not a bearer token: fails as a wrong token
    return token.strip()
