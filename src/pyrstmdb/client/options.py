"""Client settings: address, authentication, TLS, timeouts, reconnect policy.

:class:`ClientOptions` is frozen and built once by :meth:`ClientOptions.create`
from the keyword arguments both clients accept (:class:`ClientArgs`).
:func:`ssl_context` builds the stdlib ``ssl.SSLContext`` for TLS and mTLS.

Raises ``ValueError`` for an unusable address or an incomplete client
certificate; ``ClientConnectionError`` when a certificate file cannot be
loaded.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from typing import TypedDict

from pyrstmdb.config import parse_address
from pyrstmdb.errors import ClientConnectionError

DEFAULT_ADDRESS = "127.0.0.1:7401"
LIBRARY_CLIENT_NAME = "pyrstmdb-py"


class ClientArgs(TypedDict, total=False):
    """Keyword arguments of ``Client(...)`` and ``AsyncClient(...)``."""

    token: str | None
    tls: bool
    ca_file: str | None
    cert_file: str | None
    key_file: str | None
    insecure: bool
    server_name: str | None
    connect_timeout: float
    request_timeout: float | None
    reconnect: bool
    reconnect_attempts: int
    backoff_initial: float
    backoff_max: float
    client_name: str


@dataclass(frozen=True, slots=True)
class ClientOptions:
    """Everything a client needs to (re)connect.

    ``tls`` is implied by ``ca_file``, ``cert_file`` or ``insecure``.
    ``request_timeout=None`` waits for ever. With ``reconnect`` a lost
    connection is re-established with exponential backoff (``backoff_initial``
    doubling up to ``backoff_max``, at most ``reconnect_attempts`` tries per
    outage) and subscriptions resume where they stopped.
    """

    host: str
    port: int
    address: str
    token: str | None = None
    tls: bool = False
    ca_file: str | None = None
    cert_file: str | None = None
    key_file: str | None = None
    insecure: bool = False
    server_name: str | None = None
    connect_timeout: float = 10.0
    request_timeout: float | None = 30.0
    reconnect: bool = False
    reconnect_attempts: int = 10
    backoff_initial: float = 0.05
    backoff_max: float = 2.0
    client_name: str = LIBRARY_CLIENT_NAME

    @classmethod
    def create(cls, address: str | tuple[str, int], args: ClientArgs) -> ClientOptions:
        if isinstance(address, tuple):
            host, port = address
            text = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        else:
            host, port = parse_address(address)
            text = address.strip()
        if bool(args.get("cert_file")) != bool(args.get("key_file")):
            raise ValueError("cert_file and key_file must be given together")
        options = cls(host, port, text, **args)
        return options

    @property
    def use_tls(self) -> bool:
        return self.tls or bool(self.ca_file or self.cert_file or self.insecure)

    def backoff(self, attempt: int) -> float:
        """Seconds to wait before reconnect attempt ``attempt`` (0-based)."""
        return float(min(self.backoff_initial * (2**attempt), self.backoff_max))


def ssl_context(options: ClientOptions) -> ssl.SSLContext | None:
    """The TLS context for ``options``, or ``None`` without TLS."""
    if not options.use_tls:
        return None
    try:
        context = ssl.create_default_context(cafile=options.ca_file)
        if options.insecure:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        if options.cert_file:
            context.load_cert_chain(options.cert_file, options.key_file)
    except (OSError, ssl.SSLError) as exc:
        raise ClientConnectionError(f"{options.address}: cannot load TLS files: {exc}") from None
    return context
