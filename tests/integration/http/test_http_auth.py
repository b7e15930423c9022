"""Authentication and TLS on the HTTP API: the RCP tokens, the RCP certificate."""

from __future__ import annotations

import hashlib
import ssl
from collections.abc import Callable
from pathlib import Path

import httpx
import trustme
from server_harness import ServerProcess

from conftest import ORDER, http_client

TOKEN = "s3cret-token"


def auth_env() -> dict[str, str]:
    digest = hashlib.sha256(TOKEN.encode()).hexdigest()
    return {"RSTMDB_AUTH_REQUIRED": "true", "RSTMDB_AUTH_TOKEN_HASH": digest}


def test_auth_required(http_server: Callable[..., ServerProcess]) -> None:
    server = http_server(env=auth_env())
    with http_client(server) as client:
        missing = client.get("/v1/machines")
        assert missing.status_code == 401
        assert missing.json()["error"]["code"] == "UNAUTHORIZED"
        assert missing.headers["www-authenticate"] == "Bearer"
        for value in ("Bearer wrong", "Basic czNjcmV0", "Bearer", f"bearer {TOKEN}x"):
            wrong = client.get("/v1/machines", headers={"Authorization": value})
            assert wrong.status_code == 401, value
            assert wrong.json()["error"]["code"] == "AUTH_FAILED", value
            assert wrong.headers["www-authenticate"] == "Bearer"
        # unknown routes under /v1/ are not revealed without a token
        assert client.get("/v1/nothing").status_code == 401
        for path in ("/health", "/openapi.json", "/docs", "/docs/assets/swagger-ui.css"):
            assert client.get(path).status_code == 200, path
        good = {"Authorization": f"Bearer {TOKEN}"}
        assert client.get("/v1/machines", headers=good).status_code == 200
        put = client.put("/v1/machines/order/versions/1", json=ORDER, headers=good)
        assert put.status_code == 201
        assert client.get("/v1/nothing", headers=good).status_code == 404
        stream = client.get("/v1/events", params={"access_token": "nope"})
        assert stream.status_code == 401 and stream.json()["error"]["code"] == "AUTH_FAILED"
        with client.stream("GET", "/v1/events", params={"access_token": TOKEN}) as events:
            assert events.status_code == 200
            assert events.headers["content-type"].startswith("text/event-stream")


def test_https_with_the_server_certificate(
    http_server: Callable[..., ServerProcess], tmp_path: Path
) -> None:
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1", "localhost")
    cert_path, key_path = tmp_path / "server.pem", tmp_path / "server.key"
    cert.private_key_and_cert_chain_pem.write_to_path(str(cert_path))
    cert.private_key_pem.write_to_path(str(key_path))
    env = {
        "RSTMDB_TLS_ENABLED": "true",
        "RSTMDB_TLS_CERT": str(cert_path),
        "RSTMDB_TLS_KEY": str(key_path),
    }
    server = http_server(env=env)
    assert server.http_url is not None and server.http_url.startswith("https://")
    context = ssl.create_default_context()
    ca.configure_trust(context)
    with httpx.Client(base_url=server.http_url, verify=context, timeout=30) as client:
        assert client.get("/health").json() == {"status": "ok"}
        assert client.get("/v1/machines").json() == {"items": []}
    plain = server.http_url.replace("https://", "http://")
    with httpx.Client(base_url=plain, timeout=10) as client:
        try:
            answer = client.get("/health")
        except httpx.HTTPError:
            return  # the TLS listener closed the plain-text connection
        assert answer.status_code == 400
