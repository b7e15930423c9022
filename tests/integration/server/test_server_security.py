"""Authentication, TLS and mTLS against the real server (official client and raw sockets)."""

from __future__ import annotations

import asyncio
import hashlib
import socket
import ssl
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import trustme
from rstmdb import Client, ServerError
from rstmdb import ConnectionError as ClientConnectionError
from server_harness import RawClient, ServerProcess

TOKEN = "my-secret-token"
TOKEN_HASH = hashlib.sha256(TOKEN.encode()).hexdigest()


@pytest.fixture(scope="module")
def auth_server(rstmdb_module_server: Callable[..., ServerProcess]) -> ServerProcess:
    return rstmdb_module_server(
        env={"RSTMDB_AUTH_REQUIRED": "true", "RSTMDB_AUTH_TOKEN_HASH": TOKEN_HASH.upper()}
    )


def run(coro: Any) -> Any:
    return asyncio.run(coro)


def test_official_client_with_token(auth_server: ServerProcess) -> None:
    async def main() -> None:
        async with Client(auth_server.host, auth_server.port, token=TOKEN) as client:
            assert (await client.info())["server_name"] == "rstmdb"
            assert await client.list_machines() is not None

    run(main())


def test_wrong_token_fails_connect(auth_server: ServerProcess) -> None:
    async def main() -> None:
        client = Client(auth_server.host, auth_server.port, token="wrong")
        with pytest.raises(ServerError) as caught:
            await client.connect()
        assert caught.value.code.value == "AUTH_FAILED"
        await client.close()

    run(main())


def test_unauthenticated_only_exempt_ops(auth_server: ServerProcess) -> None:
    async def main() -> None:
        async with Client(auth_server.host, auth_server.port) as client:
            assert await client.ping()
            with pytest.raises(ServerError) as caught:
                await client.info()
            assert caught.value.code.value == "UNAUTHORIZED"
            assert caught.value.message == "authentication required"

    run(main())


def test_failed_auth_keeps_connection_and_retries(auth_server: ServerProcess) -> None:
    with auth_server.raw() as client:
        batch = client.call("BATCH", {"ops": [{"op": "GET_INSTANCE", "params": {}}]})
        assert batch.error is not None and batch.error["code"] == "UNAUTHORIZED"
        wrong = client.call("AUTH", {"method": "bearer", "token": "nope"})
        assert wrong.error is not None and wrong.error["code"] == "AUTH_FAILED"
        basic = client.call("AUTH", {"method": "basic", "token": TOKEN})
        assert basic.error is not None and basic.error["code"] == "AUTH_FAILED"
        missing = client.call("AUTH", {"method": "bearer"})
        assert missing.error is not None and missing.error["code"] == "BAD_REQUEST"
        assert client.call("HELLO", {"protocol_version": 1}).ok
        assert client.call("AUTH", {"method": "bearer", "token": TOKEN}).result == {
            "authenticated": True
        }
        assert client.call("AUTH", {"method": "bearer", "token": "nope"}).error is not None
        assert client.call("WAL_STATS").ok  # the earlier success stands
    with auth_server.raw() as other:
        assert other.call("WAL_STATS").error is not None  # per connection
        assert other.call("BYE").result == {"goodbye": True}


def test_token_never_logged(auth_server: ServerProcess) -> None:
    with auth_server.raw() as client:
        client.call("AUTH", {"method": "bearer", "token": TOKEN})
        client.call("AUTH", {"method": "bearer", "token": TOKEN + "-bad"})
    assert TOKEN not in auth_server.log()


def test_auth_not_required(rstmdb_server: Callable[..., ServerProcess]) -> None:
    server = rstmdb_server()
    with server.raw() as client:
        assert client.call("AUTH", {"method": "bearer", "token": "anything"}).ok
        empty = client.call("AUTH", {"method": "bearer", "token": ""})
        assert empty.error is not None and empty.error["code"] == "AUTH_FAILED"
        assert client.call("INFO").ok


# -- TLS -----------------------------------------------------------------------------------------


class Pki:
    def __init__(self, base: Path, key_type: trustme.KeyType) -> None:
        self.ca = trustme.CA(key_type=key_type)
        self.client_ca = trustme.CA()
        self.base = base
        self.ca_path = self._write("ca.pem", self.ca.cert_pem)
        self.client_ca_path = self._write("client-ca.pem", self.client_ca.cert_pem)
        server_cert = self.ca.issue_cert("127.0.0.1", key_type=key_type)
        self.cert_path = base / "server.pem"
        self.cert_path.write_bytes(b"".join(b.bytes() for b in server_cert.cert_chain_pems))
        self.key_path = self._write("server.key", server_cert.private_key_pem)
        client_cert = self.client_ca.issue_cert("client.example")
        self.client_cert_path = base / "client.pem"
        self.client_cert_path.write_bytes(b"".join(b.bytes() for b in client_cert.cert_chain_pems))
        self.client_key_path = self._write("client.key", client_cert.private_key_pem)

    def _write(self, name: str, blob: trustme.Blob) -> Path:
        path = self.base / name
        blob.write_to_path(str(path))
        return path

    def env(self, mtls: bool) -> dict[str, str]:
        env = {
            "RSTMDB_TLS_ENABLED": "true",
            "RSTMDB_TLS_CERT": str(self.cert_path),
            "RSTMDB_TLS_KEY": str(self.key_path),
        }
        if mtls:
            env["RSTMDB_TLS_REQUIRE_CLIENT_CERT"] = "true"
            env["RSTMDB_TLS_CLIENT_CA"] = str(self.client_ca_path)
        return env


def tls_raw(server: ServerProcess, context: ssl.SSLContext) -> RawClient:
    sock = socket.create_connection((server.host, server.port), timeout=10)
    wrapped = context.wrap_socket(sock, server_hostname="127.0.0.1")
    return RawClient(server.host, server.port, sock=wrapped)


@pytest.mark.parametrize(
    "key_type", [trustme.KeyType.RSA, trustme.KeyType.ECDSA], ids=["rsa", "ec"]
)
def test_tls_with_official_client(
    rstmdb_server: Callable[..., ServerProcess], tmp_path: Path, key_type: trustme.KeyType
) -> None:
    pki = Pki(tmp_path, key_type)
    server = rstmdb_server(env=pki.env(mtls=False))

    async def main() -> None:
        async with Client(server.host, server.port, ca_cert=str(pki.ca_path)) as client:
            assert await client.ping()
            assert (await client.info())["protocol_version"] == 1

    run(main())
    with socket.create_connection((server.host, server.port), timeout=5) as plain:
        plain.sendall(b"RCPX" + b"\x00" * 40)
        plain.settimeout(5)
        assert plain.recv(100)[:4] != b"RCPX"  # a TLS alert or a close, never a frame


def test_mtls_requires_client_certificate(
    rstmdb_server: Callable[..., ServerProcess], tmp_path: Path
) -> None:
    pki = Pki(tmp_path, trustme.KeyType.ECDSA)
    server = rstmdb_server(env=pki.env(mtls=True))

    async def main() -> None:
        good = Client(
            server.host,
            server.port,
            ca_cert=str(pki.ca_path),
            client_cert=str(pki.client_cert_path),
            client_key=str(pki.client_key_path),
        )
        await good.connect()
        assert await good.ping()
        anonymous = Client(server.host, server.port, ca_cert=str(pki.ca_path), request_timeout=5)
        with pytest.raises((ClientConnectionError, ssl.SSLError, OSError)):
            await anonymous.connect()
        await anonymous.close()
        assert (await good.info())["server_name"] == "rstmdb"
        await good.close()

    run(main())
    context = ssl.create_default_context(cafile=str(pki.ca_path))
    context.load_cert_chain(str(pki.client_cert_path), str(pki.client_key_path))
    with tls_raw(server, context) as client:
        assert client.call("PING").result == {"pong": True}
    assert server.running()
