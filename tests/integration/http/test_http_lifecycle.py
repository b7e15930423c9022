"""The HTTP listener's life: start-up lines, disabled, bind failures, clean shutdown."""

from __future__ import annotations

import signal
import socket
import time
from collections.abc import Callable

import httpx
import pytest
from http_support import http_client
from server_harness import ServerProcess, run_rstmdb
from sse_support import frames


def test_http_line_follows_the_listening_line(http_server: Callable[..., ServerProcess]) -> None:
    server = http_server()
    lines = server.stdout_lines
    assert lines[0] == f"listening on {server.host}:{server.port}"
    assert server.http_url is not None and lines[1] == f"http on {server.http_url}"
    assert not server.http_url.endswith(":0/")


def test_http_disabled(rstmdb_server: Callable[..., ServerProcess]) -> None:
    server = rstmdb_server(env={"RSTMDB_HTTP_ENABLED": "false"})
    time.sleep(0.3)
    assert server.http_url is None
    assert not any(line.startswith("http on") for line in server.stdout_lines)


def test_http_address_in_use_is_one_line(tmp_path: object) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = run_rstmdb(
            [
                "--bind",
                "127.0.0.1:0",
                "--http-bind",
                f"127.0.0.1:{port}",
                "--data-dir",
                f"{tmp_path}/d",
            ]
        )
    assert result.returncode == 1
    # The HTTP port is bound once the data is loaded, so the start-up's log line saying so may
    # come first; the failure itself is one `rstmdb:` line, last, and nothing else is an error.
    lines = result.stderr.strip().splitlines()
    assert [line for line in lines if line.startswith("rstmdb:")] == [
        f"rstmdb: cannot listen for http on 127.0.0.1:{port}: address already in use"
    ]
    assert lines[-1].startswith("rstmdb:")
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_signal_with_open_streams_and_requests_exits_cleanly(
    http_server: Callable[..., ServerProcess], signum: int
) -> None:
    server = http_server()
    with http_client(server) as client, client.stream("GET", "/v1/events") as response:
        stream = frames(response)
        next(stream)  # subscribed: the stream is open
        started = time.monotonic()
        server.send_signal(signum)
        assert server.stop(signum, timeout=15) == 0
        elapsed = time.monotonic() - started
        try:
            rest = list(stream)  # the stream ends: the server closed it when stopping
        except httpx.HTTPError:
            rest = []
        assert all(item.event != "transition" for item in rest)
    assert elapsed < 8.0
    log = server.log()
    assert "Traceback" not in log and "Server stopped" in log
