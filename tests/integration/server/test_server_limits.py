"""Connection limit, idle timeout and the metrics listener of the real server."""

from __future__ import annotations

import time
import urllib.error
import urllib.request
from collections.abc import Callable

import pytest
from server_harness import RawClient, ServerProcess

ORDER = {
    "states": ["a", "b"],
    "initial": "a",
    "transitions": [{"from": "a", "event": "GO", "to": "b"}],
}


@pytest.fixture(scope="module")
def limited(rstmdb_module_server: Callable[..., ServerProcess]) -> ServerProcess:
    return rstmdb_module_server(
        env={
            "RSTMDB_MAX_CONNECTIONS": "3",
            "RSTMDB_METRICS_ENABLED": "true",
            "RSTMDB_METRICS_BIND": "127.0.0.1:0",
        }
    )


def scrape(server: ServerProcess, path: str = "/metrics") -> tuple[int, str, str]:
    url = f"http://127.0.0.1:{server.metrics_port}{path}"
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status, response.headers["Content-Type"], response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.headers["Content-Type"], error.read().decode()


def sample(text: str, name: str) -> float:
    for line in text.splitlines():
        if line.startswith(name + " ") or (
            line.startswith(name + "{") and line.split(" ")[0] == name
        ):
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"{name} not in metrics")


def wait_for(predicate: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.02)


def test_connections_beyond_the_limit_are_closed(limited: ServerProcess) -> None:
    first = [limited.raw() for _ in range(3)]
    try:
        for client in first:
            assert client.call("PING").ok
        with limited.raw() as extra:
            assert extra.closed_by_server(timeout=5)
        for client in first:
            assert client.call("PING").ok
        first.pop().close()
        wait_for(lambda: sample(scrape(limited)[2], "rstmdb_connections_active") == 2)
        with limited.raw() as replacement:
            assert replacement.call("PING").ok
    finally:
        for client in first:
            client.close()
    text = scrape(limited)[2]
    assert sample(text, "rstmdb_connections_rejected_total") >= 1
    wait_for(lambda: sample(scrape(limited)[2], "rstmdb_connections_active") == 0)


def test_metrics_endpoints_and_values(limited: ServerProcess) -> None:
    with limited.raw() as client:
        client.call("PUT_MACHINE", {"machine": "m", "version": 1, "definition": ORDER})
        client.call("CREATE_INSTANCE", {"machine": "m", "version": 1, "instance_id": "i1"})
        client.call("CREATE_INSTANCE", {"machine": "m", "version": 1, "instance_id": "i2"})
        client.call("DELETE_INSTANCE", {"instance_id": "i2"})
        client.call("GET_INSTANCE", {"instance_id": "missing"})
        ops = [{"op": "APPLY_EVENT", "params": {"instance_id": "i1", "event": "GO"}}]
        client.call("BATCH", {"ops": ops})
        stats = client.call("WAL_STATS").result
        assert stats is not None
    status, content_type, text = scrape(limited)
    assert status == 200 and content_type == "text/plain; version=0.0.4; charset=utf-8"
    assert 'rstmdb_requests_total{operation="PUT_MACHINE"} 1.0' in text
    assert 'rstmdb_requests_total{operation="APPLY_EVENT"} 1.0' in text  # the BATCH sub-op
    assert 'rstmdb_errors_total{code="INSTANCE_NOT_FOUND"} 1.0' in text
    assert 'rstmdb_request_duration_seconds_bucket{le="0.001",operation="PING"}' in text
    assert sample(text, "rstmdb_instances_total") == 1
    assert sample(text, "rstmdb_machines_total") == 1
    assert sample(text, "rstmdb_wal_entries") == stats["entry_count"]
    assert sample(text, "rstmdb_wal_segments") == stats["segment_count"]
    assert sample(text, "rstmdb_wal_writes_total") >= stats["io_stats"]["writes"]
    assert sample(text, "rstmdb_connections_total") >= 1
    assert 'rstmdb_subscriptions_active{type="all"} 0.0' in text
    assert "process_resident_memory_bytes" in text
    assert scrape(limited, "/health")[::2] == (200, "OK")
    assert scrape(limited, "/healthz")[::2] == (200, "OK")
    home = scrape(limited, "/")
    assert home[0] == 200 and "/metrics" in home[2]
    assert scrape(limited, "/nope")[::2] == (404, "Not Found")


@pytest.mark.slow
def test_idle_connections_are_closed(rstmdb_server: Callable[..., ServerProcess]) -> None:
    server = rstmdb_server(env={"RSTMDB_IDLE_TIMEOUT": "1"})
    with server.raw() as idle, server.raw() as busy:
        idle.call("PING")
        started = time.monotonic()
        for _ in range(8):
            time.sleep(0.3)
            assert busy.call("PING").ok
        assert idle.closed_by_server(timeout=3)
        assert 0.9 < time.monotonic() - started < 4.5
        assert busy.call("PING").ok


def test_unanswered_raw_client_is_not_idle_while_waiting(limited: ServerProcess) -> None:
    with RawClient(limited.host, limited.port) as client:
        assert client.call("INFO").ok
