"""The REPL through a pseudo-terminal: editing, completion, history, errors, reconnect."""

from __future__ import annotations

import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pexpect
import pytest
from cli_support import CLI, cli_env, free_port, no_traceback

PROMPT = "rstmdb>"
ACCEPTED = "\x1b[?2004l"  # prompt_toolkit leaves the prompt: output follows
NEXT_PROMPT = "\x1b[?2004h"  # ... until it draws the next prompt


class Session:
    def __init__(self, address: str, home: Path) -> None:
        self.child = pexpect.spawn(
            str(CLI),
            env=cli_env(home, {"RSTMDB_SERVER": address, "TERM": "xterm"}),
            encoding="utf-8",
            timeout=15,
            dimensions=(50, 200),
        )
        self.child.expect("rstmdb CLI")
        self.child.expect(f"Connecting to {address}...")
        self.child.expect("Connected!")
        self.child.expect("Type 'help' for available commands.")
        self.prompt()

    def prompt(self) -> str:
        self.child.expect(PROMPT)
        return str(self.child.before)

    def run(self, line: str) -> str:
        """Send one line; everything printed before the next prompt."""
        self.child.sendline(line)
        return self.output()

    def output(self) -> str:
        self.child.expect_exact(ACCEPTED)
        self.child.expect_exact(NEXT_PROMPT)
        printed = str(self.child.before)
        self.prompt()
        return printed

    def close(self) -> str:
        self.child.sendline("quit")
        self.child.expect("Disconnected.")
        self.child.expect(pexpect.EOF)
        self.child.close()
        assert self.child.exitstatus == 0
        return str(self.child.before)


@pytest.fixture
def sessions() -> Iterator[list[Session]]:
    opened: list[Session] = []
    yield opened
    for session in opened:
        if session.child.isalive():
            session.child.kill(signal.SIGKILL)


def start(address: str, home: Path, sessions: list[Session]) -> Session:
    session = Session(address, home)
    sessions.append(session)
    return session


@pytest.mark.slow
def test_editing_completion_multiline_and_errors(
    rstmdb_server: Any, cli_home: Path, sessions: list[Session]
) -> None:
    server = rstmdb_server()
    repl = start(server.address, cli_home, sessions)
    assert "PONG" in repl.run("PING")
    repl.child.sendline('pm order 1 {"states": ["created", "paid"],')
    repl.child.sendline('  "initial": "created",')
    out = repl.run('  "transitions": [{"from": "created", "event": "PAY", "to": "paid"}]}')
    assert "Created machine order v1" in out
    out = repl.run('create order 1 order-123 {"customer": "alice smith"}')
    assert "Created instance order-123" in out
    repl.child.send("get order-1")
    repl.child.send("\t")  # completes the instance id seen in this session
    out = repl.run("")
    assert (
        "Instance order-123" in out
        and "State: created" in out
        and '"customer": "alice smith"' in out
    )
    out = repl.run('apply order-123 PAY {"amount": 99.99}')
    assert "created → paid" in out
    not_found = repl.run("get nope")
    assert "Error [INSTANCE_NOT_FOUND]: core error: instance not found: nope" in not_found
    as_json = repl.run("get order-123 --json")  # options after the command, in the REPL too
    assert '"state":"paid"' in as_json and '"machine":"order"' in as_json
    assert "Unknown command: frobnicate. Type 'help' for help." in repl.run("frobnicate")
    usage = repl.run("apply order-123")
    assert "Usage: apply ID EVENT [PAYLOAD_JSON]" in usage and "Error: missing EVENT" in usage
    assert "Error: invalid JSON in --payload" in repl.run("apply order-123 SHIP '{bad}'")
    listing = repl.run("li order")
    assert "Instances (1 total)" in listing and "order-123 (order v1) state=paid" in listing
    assert "WAL Statistics" in repl.run("ws")
    repl.child.send("wal-st\t")  # command names complete too
    assert "I/O Statistics" in repl.run("")
    assert "create MACHINE VERSION [ID] [CTX_JSON]" in repl.run("help")
    repl.child.sendintr()
    repl.child.expect(r"\^C")
    assert "PONG" in repl.run("ping")
    assert no_traceback(repl.close())


@pytest.mark.slow
def test_history_is_kept_between_sessions(
    rstmdb_server: Any, cli_home: Path, sessions: list[Session]
) -> None:
    server = rstmdb_server()
    first = start(server.address, cli_home, sessions)
    assert "PONG" in first.run("ping")
    assert "No machines registered" in first.run("list-machines")
    first.close()
    history = (cli_home / ".rstmdb_history").read_text()
    assert "+ping" in history and "+list-machines" in history
    second = start(server.address, cli_home, sessions)
    second.child.send("\x1b[A")  # up arrow: "quit", the last entry of the first session
    second.child.send("\x1b[A")  # and once more: "list-machines"
    assert "No machines registered" in second.run("")
    second.child.sendeof()
    second.child.expect(r"\^D")
    second.child.expect("Disconnected.")
    second.child.expect(pexpect.EOF)


@pytest.mark.slow
def test_reconnect_after_the_server_restarts(
    rstmdb_server: Any, cli_home: Path, sessions: list[Session], tmp_path: Path
) -> None:
    server = rstmdb_server(bind=f"127.0.0.1:{free_port()}", data_dir=tmp_path / "data")
    repl = start(server.address, cli_home, sessions)
    assert "PONG" in repl.run("ping")
    server.restart()
    # The lost connection is noticed by a command or between commands; either way the
    # next command reconnects by itself.
    first = repl.run("ping")
    if "PONG" not in first:
        assert "Error: " in first and "the next command reconnects" in first
        assert "reconnect()" not in first
        first = repl.run("ping")
    assert f"Reconnecting to {server.address}..." in first and "Reconnected!" in first
    assert "PONG" in first
    out = repl.run("rc")
    assert f"Reconnecting to {server.address}..." in out and "Reconnected!" in out
    assert "PONG" in repl.run("ping")
    repl.close()


@pytest.mark.slow
def test_piped_input_without_a_terminal(run_cli: Any, rstmdb_server: Any) -> None:
    server = rstmdb_server()
    script = 'pm m 1 {"states": ["a", "b"],\n"initial": "a", "transitions": []}\nping\nget x\nq\n'
    done = run_cli(server=server, input=script)
    # No banner without a terminal; a failed entry makes the exit status 1 and its error
    # goes to standard error.
    assert done.returncode == 1
    lines = done.stdout.splitlines()
    assert lines[0].startswith("Created machine m v1") and lines[1:] == ["PONG"]
    assert done.stderr == "Error [INSTANCE_NOT_FOUND]: core error: instance not found: x\n"
    ok = run_cli(server=server, input="ping\nget-instance missing --json\n")
    assert ok.returncode == 1 and ok.stdout == "PONG\n"
    fine = run_cli(server=server, input="ping\nlist-machines --json\n")
    assert fine.returncode == 0 and fine.stderr == ""
    assert fine.stdout.splitlines()[0] == "PONG" and '"machine":"m"' in fine.stdout
