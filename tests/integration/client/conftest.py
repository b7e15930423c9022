"""Fixtures of the client integration tests: both client kinds, a shared server, a PKI."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import trustme

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "unit" / "client"))

from client_drivers import KINDS, open_client
from server_harness import ServerProcess

Opened = Callable[..., Any]


@pytest.fixture(params=KINDS)
def kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def connect(kind: str) -> Iterator[Opened]:
    """``connect(address, **options)``: a client of this test's kind, closed afterwards."""
    opened: list[Any] = []

    def make(address: str, **options: Any) -> Any:
        client = open_client(kind, address, **options)
        opened.append(client)
        return client

    yield make
    for client in opened:
        client.close()


@pytest.fixture(scope="module")
def server(rstmdb_module_server: Callable[..., ServerProcess]) -> ServerProcess:
    return rstmdb_module_server()


__all__ = ["Pki"]


class Pki:
    """A CA, a server certificate for 127.0.0.1 and a client certificate, as files."""

    def __init__(self, base: Path) -> None:
        ca = trustme.CA()
        client_ca = trustme.CA()
        self.ca = self._write(base / "ca.pem", ca.cert_pem)
        self.client_ca = self._write(base / "client-ca.pem", client_ca.cert_pem)
        issued = ca.issue_cert("127.0.0.1", "localhost")
        self.cert = base / "server.pem"
        self.cert.write_bytes(b"".join(b.bytes() for b in issued.cert_chain_pems))
        self.key = self._write(base / "server.key", issued.private_key_pem)
        client = client_ca.issue_cert("client.example")
        self.client_cert = base / "client.pem"
        self.client_cert.write_bytes(b"".join(b.bytes() for b in client.cert_chain_pems))
        self.client_key = self._write(base / "client.key", client.private_key_pem)

    @staticmethod
    def _write(path: Path, blob: trustme.Blob) -> Path:
        blob.write_to_path(str(path))
        return path

    def env(self, mtls: bool = False) -> dict[str, str]:
        env = {
            "RSTMDB_TLS_ENABLED": "true",
            "RSTMDB_TLS_CERT": str(self.cert),
            "RSTMDB_TLS_KEY": str(self.key),
        }
        if mtls:
            env["RSTMDB_TLS_REQUIRE_CLIENT_CERT"] = "true"
            env["RSTMDB_TLS_CLIENT_CA"] = str(self.client_ca)
        return env


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return Pki(tmp_path_factory.mktemp("pki"))
