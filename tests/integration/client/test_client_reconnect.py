"""Reconnecting after a server restart, and subscriptions resuming without gaps."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from client_drivers import free_port

from pyrstmdb.client import Client, ClientConnectionError

ORDER = {
    "states": ["s0", "s1", "s2", "s3", "s4", "s5", "s6"],
    "initial": "s0",
    "transitions": [{"from": f"s{n}", "event": "NEXT", "to": f"s{n + 1}"} for n in range(6)],
}


@pytest.fixture
def fixed(rstmdb_server: Any, tmp_path: Path) -> Any:
    """A server on a fixed port, so a restart comes back at the same address."""
    return rstmdb_server(bind=f"127.0.0.1:{free_port()}", data_dir=tmp_path / "data")


def test_requests_reconnect_after_a_restart(connect: Any, fixed: Any) -> None:
    client = connect(fixed.address, reconnect=True, backoff_initial=0.02)
    client.put_machine("order", 1, ORDER)
    client.create_instance("order", 1, "o-1")
    fixed.restart()
    assert client.get_instance("o-1").state == "s0"
    assert client.apply_event("o-1", "NEXT").to_state == "s1"


def test_without_reconnect_the_loss_is_reported(connect: Any, fixed: Any) -> None:
    client = connect(fixed.address)
    assert client.ping()
    fixed.restart()
    with pytest.raises(ClientConnectionError) as caught:
        client.ping()
    assert fixed.address in str(caught.value)
    client.reconnect()
    assert client.ping()


@pytest.mark.slow
def test_subscription_resumes_without_gap_or_duplicate(connect: Any, fixed: Any) -> None:
    watcher = connect(fixed.address, reconnect=True, backoff_initial=0.02)
    with Client(fixed.address) as writer:
        writer.put_machine("order", 1, ORDER)
        writer.create_instance("order", 1, "o-1")
    sub = watcher.watch_all(machines=["order"])
    with Client(fixed.address) as writer:
        for _ in range(3):
            writer.apply_event("o-1", "NEXT")
    seen = [sub.get(5).to_state for _ in range(3)]
    fixed.restart()
    with Client(fixed.address) as writer:  # written before the watcher is back
        for _ in range(3):
            writer.apply_event("o-1", "NEXT")
    seen += [sub.get(10).to_state for _ in range(3)]
    assert seen == ["s1", "s2", "s3", "s4", "s5", "s6"]
    with pytest.raises(TimeoutError):
        sub.get(0.3)
    assert sub.last_offset is not None and sub.resume_offset == sub.last_offset + 1


def test_subscription_ends_when_the_server_is_gone_for_good(connect: Any, fixed: Any) -> None:
    watcher = connect(fixed.address, reconnect=True, reconnect_attempts=2, backoff_initial=0.02)
    sub = watcher.watch_all()
    fixed.kill()
    with pytest.raises(ClientConnectionError, match=fixed.address):
        sub.get(10)
