"""One process per data directory, with real processes.

A running server holds its directory: a second server, an embedded ``Database`` in
another process and ``rstmdb check --repair``/``--salvage`` are refused with one line
naming the directory and the server's PID, while a read-only ``rstmdb check`` works and
says the directory is live. Once the server is SIGKILLed the kernel has dropped the
lock, and every one of them works.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from rstmdb import Client
from server_harness import ServerProcess, clean_env, run_rstmdb

COUNTER = {
    "states": ["s"],
    "initial": "s",
    "transitions": [{"from": "s", "event": "INC", "to": "s"}],
}

EMBEDDED = """
import sys
from pyrstmdb import Database, DataDirectoryLocked
try:
    db = Database(sys.argv[1])
except DataDirectoryLocked as err:
    print(f"refused pid={err.pid}: {err}")
    sys.exit(3)
print("opened", len(db.list_instances().instances))
db.close()
"""


def _embedded_open(data_dir: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", EMBEDDED, str(data_dir)],
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=60,
    )


def _write(server: ServerProcess, instance_id: str) -> None:
    import asyncio

    async def main() -> None:
        async with Client(server.host, server.port) as client:
            await client.put_machine("counter", 1, COUNTER)
            await client.create_instance("counter", 1, instance_id=instance_id)

    asyncio.run(main())


def _one_line(text: str) -> str:
    lines = text.strip().splitlines()
    assert len(lines) == 1, text
    return lines[0]


@pytest.mark.slow
def test_a_running_server_holds_its_directory_until_it_dies(
    rstmdb_server: Callable[..., ServerProcess], tmp_path: Path
) -> None:
    first = rstmdb_server()
    _write(first, "i-1")
    assert first.proc is not None
    pid = first.proc.pid
    data_dir = first.data_dir

    second = run_rstmdb(["--bind", "127.0.0.1:0", "--data-dir", str(data_dir)])
    assert second.returncode != 0
    line = _one_line(second.stderr)
    assert line == f"rstmdb: data directory {data_dir} is in use by another process (pid {pid})"
    assert "listening" not in second.stdout
    assert (data_dir / "LOCK").read_text().strip() == str(pid)

    embedded = _embedded_open(data_dir)
    assert embedded.returncode == 3, embedded.stdout + embedded.stderr
    assert embedded.stdout.strip() == (
        f"refused pid={pid}: data directory {data_dir} is in use by another process (pid {pid})"
    )

    for flag in ("--repair", "--salvage"):
        repair = run_rstmdb(["check", flag, "--data-dir", str(data_dir)])
        assert repair.returncode == 1
        assert _one_line(repair.stderr) == line
        assert repair.stdout == ""

    live = run_rstmdb(["check", "--data-dir", str(data_dir)])
    assert live.returncode == 0, live.stdout
    assert f"live: the directory is open in a running process (pid {pid})" in live.stdout
    assert "result: OK" in live.stdout

    _write(first, "i-2")  # the refused openers changed nothing for the holder
    first.kill()

    embedded = _embedded_open(data_dir)
    assert embedded.returncode == 0, embedded.stdout + embedded.stderr
    assert embedded.stdout.strip() == "opened 2"
    repaired = run_rstmdb(["check", "--repair", "--data-dir", str(data_dir)])
    assert repaired.returncode == 0, repaired.stdout + repaired.stderr
    assert "live:" not in repaired.stdout
    again = rstmdb_server(data_dir=data_dir)
    assert again.proc is not None
    assert (data_dir / "LOCK").read_text().strip() == str(again.proc.pid)
    _write(again, "i-3")
