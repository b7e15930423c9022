"""``rstmdb`` start-up as operators see it: version and help, health while loading, logs."""

from __future__ import annotations

import json
import re
import socket
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pexpect
import pytest
from server_harness import RawClient, ServerProcess, clean_env, rstmdb_command, run_rstmdb

from pyrstmdb import Database, __version__

ORDER = {
    "states": ["a", "b"],
    "initial": "a",
    "transitions": [
        {"from": "a", "event": "E", "to": "b"},
        {"from": "b", "event": "E", "to": "a"},
    ],
}
RECORDS = 200_000
STARTED = re.compile(r"data loaded in (\d+\.\d) s \(([\d,]+) log records replayed\)")
PROGRESS = re.compile(r"replaying the log: ([\d,]+) records \((\d+)%\)")


@pytest.mark.slow
def test_version_and_help() -> None:
    version = run_rstmdb(["--version"])
    assert version.returncode == 0 and version.stdout == f"rstmdb {__version__}\n"
    assert run_rstmdb(["-V"]).stdout == version.stdout
    helped = run_rstmdb(["--help"])
    assert helped.returncode == 0
    text = " ".join(helped.stdout.split())
    for variable in ("RSTMDB_CONFIG", "RSTMDB_BIND", "RSTMDB_DATA", "RSTMDB_LOG_FORMAT"):
        assert variable in text
    assert "docs/CONFIGURATION.md" in text and "--version" in text


@pytest.fixture(scope="module")
def long_log(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A data directory whose log holds about ``RECORDS`` records and no checkpoint."""
    path = tmp_path_factory.mktemp("long") / "data"
    db = Database(path, fsync_policy="never")
    db.put_machine("m", 1, ORDER)
    db.create_instance("m", 1, instance_id="i")
    ops = [{"op": "APPLY_EVENT", "params": {"instance_id": "i", "event": "E"}}] * 100
    for _ in range(RECORDS // 100):
        db.batch(ops, mode="best_effort")
    db.close()
    return path


def _first_answer(port: int, deadline: float) -> RawClient:
    while time.monotonic() < deadline:
        try:
            return RawClient("127.0.0.1", port, timeout=10.0)
        except OSError:
            time.sleep(0.005)
    raise AssertionError("the port never opened")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.slow
def test_health_checks_tell_starting_from_ready(long_log: Path, tmp_path: Path) -> None:
    port = _free_port()
    server = ServerProcess(long_log, tmp_path / "server.log", bind=f"127.0.0.1:{port}")
    proc = subprocess.Popen(
        server.command(),
        env=clean_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        text=True,
    )
    try:
        with _first_answer(port, time.monotonic() + 20) as client:
            ping = client.call("PING")
            info = client.call("INFO")
            get = client.call("GET_INSTANCE", {"instance_id": "i"})
        assert ping.result == {"pong": True, "status": "starting"}
        assert info.result is not None and info.result["status"] == "starting"
        assert set(info.result["replay"]) == {"records", "percent"}
        assert get.error is not None
        assert (get.error["code"], get.error["retryable"]) == ("RATE_LIMITED", True)
        assert get.error["message"].startswith("the server is starting")
        assert get.error["details"]["status"] == "starting"
        assert proc.stdout is not None
        assert proc.stdout.readline() == f"listening on 127.0.0.1:{port}\n"
        with RawClient("127.0.0.1", port) as client:
            assert client.call("PING").result == {"pong": True}
            assert client.call("GET_INSTANCE", {"instance_id": "i"}).ok
    finally:
        proc.terminate()
        _, log = proc.communicate(timeout=30)
    messages = [json.loads(line)["message"] for line in log.splitlines()]
    (done,) = [m for m in messages if STARTED.fullmatch(m)]
    seconds, count = STARTED.fullmatch(done).groups()  # type: ignore[union-attr]
    assert int(count.replace(",", "")) == RECORDS + 2
    progress = [PROGRESS.fullmatch(m) for m in messages if PROGRESS.fullmatch(m)]
    # About one line a second, only for replays longer than a second.
    assert len(progress) <= float(seconds) + 1
    if float(seconds) >= 2.0:
        assert progress
    if float(seconds) < 1.0:
        assert not progress
    for found in progress:
        assert found is not None and 0 < int(found.group(1).replace(",", "")) <= RECORDS + 2
    assert any(m.startswith("ready in ") for m in messages)


@pytest.mark.slow
def test_logs_are_text_on_a_terminal_and_json_otherwise(
    rstmdb_server: Callable[..., ServerProcess], tmp_path: Path
) -> None:
    piped = rstmdb_server()
    lines = piped.log().splitlines()
    assert lines and all(json.loads(line)["level"] for line in lines)
    assert piped.stdout_lines[0] == f"listening on {piped.address}"
    assert not any("listening on" in line for line in lines)  # said once, on stdout

    def on_terminal(env: dict[str, str]) -> str:
        child = pexpect.spawn(
            rstmdb_command()[0],
            ["--bind", "127.0.0.1:0", "--data-dir", str(tmp_path / "tty")],
            env=clean_env(env),
            encoding="utf-8",
            timeout=20,
        )
        child.expect(r"ready in [\d.]+ s[^\r\n]*\r\n")
        seen = str(child.before) + str(child.after)
        child.kill(15)
        child.expect(pexpect.EOF)
        return seen

    text = on_terminal({}).splitlines()
    # stdout's lines (`listening on`, then `http on`) come before the `ready` log line
    assert re.fullmatch(r"listening on 127\.0\.0\.1:\d+", text[-3])
    assert re.fullmatch(r"http on http://127\.0\.0\.1:\d+/", text[-2])
    assert re.fullmatch(r"\S+Z  INFO pyrstmdb\.server: ready in [\d.]+ s \(tls: off.*", text[-1])
    assert not any(line.startswith("{") for line in text)
    assert sum("listening on" in line for line in text) == 1
    forced = on_terminal({"RSTMDB_LOG_FORMAT": "json"}).splitlines()
    assert json.loads(forced[-1])["message"].startswith("ready in ")
