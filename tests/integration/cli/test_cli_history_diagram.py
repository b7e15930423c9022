"""GET_HISTORY over RCP (client library and rstmdb-cli) across restart and compaction, and
``get-machine --format mermaid|dot``."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable

import pytest
from cli_support import RunCli, no_traceback
from server_harness import ServerProcess

from pyrstmdb.client import AsyncClient, Client

pytestmark = pytest.mark.slow  # servers restarted and compacted

TOGGLE = {
    "states": ["off", "on"],
    "initial": "off",
    "transitions": [
        {"from": "off", "event": "FLIP", "to": "on"},
        {"from": "on", "event": "FLIP", "to": "off", "guard": "ctx.ok"},
    ],
}


def test_history_through_client_and_cli_across_restart_and_compaction(
    rstmdb_server: Callable[..., ServerProcess], run_cli: RunCli
) -> None:
    server = rstmdb_server(env={"RSTMDB_WAL_SEGMENT_SIZE_MB": "1"})
    blob = "q" * 3000
    with Client((server.host, server.port)) as client:
        client.put_machine("toggle", 1, TOGGLE)
        client.create_instance("toggle", 1, "a", {"ok": True})
        for n in range(400):  # ~1.3 MB: more than one segment
            client.apply_event("a", "FLIP", payload={"n": n, "blob": blob})
        client.create_instance("toggle", 1, "gone")
        client.delete_instance("gone")
        before = client.get_history("a", limit=1000)
        page = client.get_history("a", limit=2, before_offset=before.entries[-1]["wal_offset"])
        gone = client.get_history("gone")
    assert len(before.entries) == 100 and before.truncated is True  # the default keeps 100
    assert before.entries[-1]["payload"]["n"] == 399
    assert page.entries == before.entries[-3:-1]
    assert [e["kind"] for e in gone.entries] == ["created", "deleted"]

    assert server.stop() == 0
    server.start()
    with Client((server.host, server.port)) as client:
        assert client.get_history("a", limit=1000) == before
        compacted = client.compact(force_snapshot=True)
        assert compacted.segments_deleted >= 1
    assert server.stop() == 0
    server.start()
    with Client((server.host, server.port)) as client:
        assert client.get_history("a", limit=1000) == before
        assert client.get_history("gone") == gone

    async def read_async() -> object:
        async with AsyncClient(f"{server.host}:{server.port}") as client:
            return await client.get_history("a", limit=5, before_offset=None)

    assert asyncio.run(read_async()) == type(before)("a", before.entries[-5:], True)

    as_json = run_cli("--json", "history", "-i", "a", "--limit", "3", server=server)
    assert as_json.returncode == 0, as_json.stderr
    assert json.loads(as_json.stdout) == {
        "instance_id": "a",
        "entries": before.entries[-3:],
        "truncated": True,
    }
    text = run_cli("history", "gone", server=server)
    assert text.returncode == 0 and no_traceback(text.stdout, text.stderr)
    lines = text.stdout.splitlines()
    assert lines[0] == "History of gone" and "created in off" in lines[1]
    assert "deleted (was off)" in lines[2]
    missing = run_cli("history", "-i", "nobody", server=server)
    assert missing.returncode == 1 and "instance not found: nobody" in missing.stderr
    assert no_traceback(missing.stdout, missing.stderr)


def test_get_machine_diagram_formats(
    rstmdb_server: Callable[..., ServerProcess], run_cli: RunCli
) -> None:
    server = rstmdb_server()
    put = run_cli("put-machine", "-n", "toggle", "-v", "1", json.dumps(TOGGLE), server=server)
    assert put.returncode == 0, put.stderr
    mermaid = run_cli("get-machine", "toggle", "--format", "mermaid", server=server)
    assert mermaid.returncode == 0, mermaid.stderr
    assert mermaid.stdout == (
        "stateDiagram-v2\n"
        '    state "off" as s0\n'
        '    state "on" as s1\n'
        "    [*] --> s0\n"
        "    s0 --> s1: FLIP\n"
        "    s1 --> s0: FLIP [ctx.ok]\n"
    )
    dot = run_cli("get-machine", "toggle", "1", "--format", "dot", server=server)
    assert dot.returncode == 0 and dot.stdout.startswith('digraph "toggle v1" {')
    assert '    s1 -> s0 [label="FLIP [ctx.ok]"];' in dot.stdout
    wrong = run_cli("get-machine", "toggle", "--format", "svg", server=server)
    assert wrong.returncode != 0 and "invalid choice" in wrong.stderr
