"""HTTP API fixtures: a real ``rstmdb`` process and an ``httpx`` client on its HTTP port
(helpers in ``http_support``: test modules import from there, never from a conftest)."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence

import httpx
import pytest
from http_support import ORDER, http_client
from server_harness import ServerProcess

StartServer = Callable[..., ServerProcess]


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
        yield client
