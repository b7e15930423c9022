"""The state of one client session: wire mode, authentication, handshake.

This module owns every rule about *who may do what on this connection*, in
tables, and performs no I/O:

* :data:`AUTH_EXEMPT` — the operations served without authentication when
  ``auth.required`` is set (HELLO, AUTH, PING, BYE); every other operation,
  BATCH included, is refused with ``UNAUTHORIZED`` until an AUTH succeeds.
* HELLO: ``protocol_version`` must be 1 (else ``UNSUPPORTED_PROTOCOL``); the
  output wire mode becomes the first mode of the client's ``wire_modes`` that
  the server supports (binary when none is); features are the intersection of
  the client's list with :data:`SERVER_FEATURES`. HELLO may be repeated and is
  not required before other operations.
* AUTH: only ``bearer``. With auth required the token's SHA-256 (lowercase
  hex) must be a configured hash; without it any non-empty token is accepted.
  A failure keeps the connection and any earlier success.

Raises ``BadRequest``, ``UnsupportedProtocol``, ``AuthFailed`` and ``Unauthorized``.
"""

from __future__ import annotations

import hashlib
import hmac
from typing import Any

from pyrstmdb.engine.commands import opt_str, opt_str_list, req_str, req_uint
from pyrstmdb.errors import AuthFailed, Unauthorized, UnsupportedProtocol
from pyrstmdb.protocol import WIRE_MODES, Operation, WireMode

PROTOCOL_VERSION = 1
SERVER_NAME = "rstmdb"
SERVER_FEATURES = ("idempotency", "batch", "wal_read")

AUTH_EXEMPT = frozenset({Operation.HELLO, Operation.AUTH, Operation.PING, Operation.BYE})

_AUTH_METHODS = frozenset({"bearer"})


def token_hash(token: str) -> str:
    """The lowercase hex SHA-256 of a token's UTF-8 bytes (what the config stores)."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def choose_wire_mode(offered: list[str]) -> WireMode:
    """The first supported mode the client offers; binary when it offers none."""
    for mode in offered:
        for known in WIRE_MODES:
            if mode == known:
                return known
    return "binary_json"


class Session:
    """Per-connection handshake and authentication state."""

    __slots__ = ("_hashes", "auth_required", "authenticated", "client_name", "wire_mode")

    def __init__(self, auth_required: bool, token_hashes: frozenset[str]) -> None:
        self.auth_required = auth_required
        self._hashes = token_hashes
        self.authenticated = False
        self.wire_mode: WireMode = "binary_json"
        self.client_name: str | None = None

    def authorize(self, op: Operation) -> None:
        """Raise ``Unauthorized`` unless ``op`` may run on this session now."""
        if self.auth_required and not self.authenticated and op not in AUTH_EXEMPT:
            raise Unauthorized("authentication required")

    def hello(self, params: dict[str, Any], server_version: str) -> dict[str, Any]:
        """Negotiate; the new wire mode applies from this HELLO's own response on."""
        version = req_uint(params, "protocol_version")
        if version != PROTOCOL_VERSION:
            raise UnsupportedProtocol(
                f"unsupported protocol version {version} (this server speaks {PROTOCOL_VERSION})",
                {"requested": version, "supported": [PROTOCOL_VERSION]},
            )
        client_name = opt_str(params, "client_name")
        modes = opt_str_list(params, "wire_modes")
        wanted = set(opt_str_list(params, "features"))
        self.client_name = client_name
        self.wire_mode = choose_wire_mode(modes)
        return {
            "protocol_version": PROTOCOL_VERSION,
            "wire_mode": self.wire_mode,
            "server_name": SERVER_NAME,
            "server_version": server_version,
            "features": [name for name in SERVER_FEATURES if name in wanted],
        }

    def auth(self, params: dict[str, Any]) -> dict[str, Any]:
        """Check a bearer token; on success this connection stays authenticated."""
        method = req_str(params, "method")
        token = req_str(params, "token")
        if method not in _AUTH_METHODS:
            raise AuthFailed(
                f"authentication failed: unsupported method '{method}'", {"method": method}
            )
        if not token:
            raise AuthFailed("authentication failed: empty token")
        if self.auth_required and not self._known(token_hash(token)):
            raise AuthFailed("authentication failed: invalid token")
        self.authenticated = True
        return {"authenticated": True}

    def _known(self, digest: str) -> bool:
        found = False
        for candidate in self._hashes:
            found |= hmac.compare_digest(digest, candidate)
        return found
