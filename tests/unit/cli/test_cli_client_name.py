"""The CLI introduces itself as ``rstmdb-cli`` and sends its token."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "client"))

from client_stub import StubServer

from pyrstmdb.cli.main import build_parser, client_factory


def test_hello_names_the_cli_and_auth_carries_the_token() -> None:
    stub = StubServer().start()
    try:
        ns = build_parser({"RSTMDB_TOKEN": "from-env"}).parse_args(["-s", stub.address, "ping"])
        client = client_factory(ns)()
        assert client.ping() is True
        client.close()
    finally:
        stub.stop()
    assert stub.ops() == ["HELLO", "AUTH", "PING"]
    assert stub.requests[0][1]["client_name"] == "rstmdb-cli"
    assert stub.requests[1][1] == {"method": "bearer", "token": "from-env"}
