"""``watch-instance`` / ``watch-all`` as background processes: events, replay, SIGINT, close."""

from __future__ import annotations

import json
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cli_support import CLI, cli_env, no_traceback
from server_harness import ServerProcess

from pyrstmdb.client import Client

FLOW = {
    "states": ["a", "b", "c"],
    "initial": "a",
    "transitions": [
        {"from": "a", "event": "GO", "to": "b"},
        {"from": "b", "event": "GO", "to": "c"},
    ],
}


#: Starts a command with SIGINT ignored, as a shell without job control starts ``cmd &``.
SIGINT_IGNORED = ("/bin/sh", "-c", 'trap "" INT; exec "$0" "$@"')


def launcher_ignores_sigint() -> bool:
    """What a command started through ``SIGINT_IGNORED`` inherits (read by ``grep``)."""
    seen = subprocess.run(
        [*SIGINT_IGNORED, "grep", "^SigIgn:", "/proc/self/status"],
        capture_output=True,
        text=True,
        check=True,
    )
    mask = int(seen.stdout.split()[1], 16)
    return bool(mask & (1 << (signal.SIGINT - 1)))


class Watcher:
    """A ``rstmdb-cli watch-*`` process with its pipes."""

    def __init__(
        self, server: ServerProcess, home: Path, *args: str, ignoring_sigint: bool = False
    ) -> None:
        launcher = SIGINT_IGNORED if ignoring_sigint else ()
        self.proc = subprocess.Popen(
            [*launcher, str(CLI), *args],
            env=cli_env(home, {"RSTMDB_SERVER": server.address}),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert self.proc.stdout is not None and self.proc.stderr is not None
        self.stdout = self.proc.stdout
        self.stderr = self.proc.stderr
        self.status = self.stderr.readline().strip()
        assert self.stderr.readline().strip() == "Press Ctrl+C to stop...", self.status

    def event(self) -> dict[str, Any]:
        line = self.stdout.readline()
        assert line.endswith("\n"), line
        event: dict[str, Any] = json.loads(line)
        return event

    def stop(self, signum: int = signal.SIGINT) -> tuple[int, str, str]:
        self.proc.send_signal(signum)
        out, err = self.proc.communicate(timeout=15)
        return self.proc.returncode, out, err


@pytest.fixture
def watchers(cli_home: Path) -> Iterator[list[Watcher]]:
    started: list[Watcher] = []
    yield started
    for watcher in started:
        if watcher.proc.poll() is None:
            watcher.proc.kill()
            watcher.proc.wait(10)


def test_watch_all_streams_until_sigint(
    rstmdb_server: Any, cli_home: Path, watchers: list[Watcher]
) -> None:
    server = rstmdb_server()
    with Client(server.address) as client:
        client.put_machine("flow", 1, FLOW)
        client.create_instance("flow", 1, "f-1", {"n": 1})
        watcher = Watcher(server, cli_home, "watch-all", "--machines", "flow", "--events", "GO")
        watchers.append(watcher)
        assert watcher.status.startswith("Watching all events (sub_id: sub-")
        first = client.apply_event("f-1", "GO", {"step": 1})
        client.apply_event("f-1", "GO")
        one, two = watcher.event(), watcher.event()
    assert one == {
        "type": "event",
        "subscription_id": one["subscription_id"],
        "instance_id": "f-1",
        "machine": "flow",
        "version": 1,
        "wal_offset": first.wal_offset,
        "from_state": "a",
        "to_state": "b",
        "event": "GO",
        "payload": {"step": 1},
        "ctx": {"n": 1, "step": 1},
    }
    assert "payload" not in two and two["to_state"] == "c"
    status, out, err = watcher.stop()
    assert status == 0 and out == ""
    assert err.strip() == "Stopping watch..." and no_traceback(err)


def test_watch_instance_replays_history_without_ctx(
    rstmdb_server: Any, cli_home: Path, watchers: list[Watcher]
) -> None:
    server = rstmdb_server()
    with Client(server.address) as client:
        client.put_machine("flow", 1, FLOW)
        created = client.create_instance("flow", 1, "f-1")
        client.apply_event("f-1", "GO")
        args = ("watch-instance", "f-1", "--no-ctx", "--from-offset", str(created.wal_offset))
        watcher = Watcher(server, cli_home, *args)
        watchers.append(watcher)
        assert watcher.status.startswith("Watching instance f-1 (sub_id: sub-")
        assert "state: b, wal_offset: " in watcher.status
        replayed = watcher.event()
        client.apply_event("f-1", "GO")
        live = watcher.event()
    assert (replayed["to_state"], live["to_state"]) == ("b", "c")
    assert "ctx" not in replayed and "ctx" not in live
    assert watcher.stop()[0] == 0


def test_sigint_stops_a_watch_started_with_sigint_ignored(
    rstmdb_server: Any, cli_home: Path, watchers: list[Watcher]
) -> None:
    """A watch run in the background of a script inherits an ignored SIGINT; Ctrl+C
    (``kill -INT``) still stops it cleanly."""
    assert launcher_ignores_sigint()
    server = rstmdb_server()
    with Client(server.address) as client:
        client.put_machine("flow", 1, FLOW)
        client.create_instance("flow", 1, "f-1")
        watcher = Watcher(server, cli_home, "watch-instance", "f-1", ignoring_sigint=True)
        watchers.append(watcher)
        client.apply_event("f-1", "GO")
        assert watcher.event()["to_state"] == "b"
    status, out, err = watcher.stop()
    assert (status, out, err.strip()) == (0, "", "Stopping watch...")


@pytest.mark.slow
def test_server_going_away_ends_the_watch(
    rstmdb_server: Any, cli_home: Path, watchers: list[Watcher]
) -> None:
    server = rstmdb_server()
    watcher = Watcher(server, cli_home, "watch-all")
    watchers.append(watcher)
    server.stop(signal.SIGTERM)
    out, err = watcher.proc.communicate(timeout=15)
    assert watcher.proc.returncode == 0 and out == ""
    assert err.strip() == "Connection closed"


def test_watching_an_unknown_instance_fails(run_cli: Any, rstmdb_server: Any) -> None:
    server = rstmdb_server()
    done = run_cli("watch-instance", "ghost", server=server)
    assert done.returncode == 1
    assert done.stderr.startswith("Error [INSTANCE_NOT_FOUND]: ") and "ghost" in done.stderr
    assert no_traceback(done.stderr)
