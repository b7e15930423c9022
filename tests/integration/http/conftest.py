"""HTTP API fixtures: a real ``rstmdb`` process and an ``httpx`` client on its HTTP port."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

import httpx
import pytest
from server_harness import ServerProcess

ORDER = {
    "states": ["created", "paid", "shipped", "cancelled"],
    "initial": "created",
    "transitions": [
        {"from": "created", "event": "PAY", "to": "paid", "guard": "ctx.amount > 0"},
        {"from": "paid", "event": "SHIP", "to": "shipped"},
        {"from": ["created", "paid"], "event": "CANCEL", "to": "cancelled"},
    ],
}

StartServer = Callable[..., ServerProcess]


def http_client(server: ServerProcess, **options: Any) -> httpx.Client:
    assert server.http_url is not None, server.stdout_lines
    return httpx.Client(base_url=server.http_url, timeout=30.0, **options)


@pytest.fixture
def http_server(rstmdb_server: StartServer) -> Callable[..., ServerProcess]:
    """Start a server with the HTTP API on a free port (extra env/args allowed)."""

    def start(env: Mapping[str, str] | None = None, args: Sequence[str] = ()) -> ServerProcess:
        return rstmdb_server(env={"RSTMDB_LOG_FORMAT": "text", **(env or {})}, args=args)

    return start


@pytest.fixture
def api(http_server: Callable[..., ServerProcess]) -> Iterator[httpx.Client]:
    """A client of a fresh server with the ``order`` machine v1 registered."""
    server = http_server()
    with http_client(server) as client:
        created = client.put("/v1/machines/order/versions/1", json=ORDER)
        assert created.status_code == 201, created.text
        client.headers["x-server-log"] = str(server.log_path)
        yield client
