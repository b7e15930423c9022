"""``rstmdb-cli`` one-shot commands against a real server, as a user runs them."""

from __future__ import annotations

import hashlib
import json
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
from cli_support import CLI, RunCli, cli_env, free_port, no_traceback
from server_harness import ServerProcess

QUICK_EXAMPLE = """
# In another terminal, create a state machine
rstmdb-cli put-machine -n order -v 1 '{
  "states": ["created", "paid", "shipped", "delivered"],
  "initial": "created",
  "transitions": [
    {"from": "created", "event": "PAY", "to": "paid"},
    {"from": "paid", "event": "SHIP", "to": "shipped"},
    {"from": "shipped", "event": "DELIVER", "to": "delivered"}
  ]
}'

# Create an order instance
rstmdb-cli create-instance -m order -V 1 -i order-123 -c '{"customer": "alice"}'

# Process the order
rstmdb-cli apply-event -i order-123 -e PAY -p '{"amount": 99.99}'
rstmdb-cli apply-event -i order-123 -e SHIP -p '{"carrier": "fedex"}'

# Check the current state
rstmdb-cli get-instance order-123
"""

APPROVAL = {
    "states": ["pending", "approved", "rejected"],
    "initial": "pending",
    "transitions": [
        {"from": "pending", "event": "APPROVE", "to": "approved", "guard": "ctx.amount <= 1000"},
        {"from": "pending", "event": "REJECT", "to": "rejected"},
    ],
}


def bash(script: str, server: ServerProcess, home: Path) -> subprocess.CompletedProcess[str]:
    env = cli_env(home, {"RSTMDB_SERVER": server.address})
    return subprocess.run(
        ["bash", "-e", "-c", script], env=env, capture_output=True, text=True, timeout=60
    )


@pytest.mark.slow
def test_quick_example_verbatim_with_watch(rstmdb_server: Any, cli_home: Path) -> None:
    server = rstmdb_server()
    watch = subprocess.Popen(
        [str(CLI), "watch-all", "--machines", "order", "--to-states", "shipped"],
        env=cli_env(cli_home, {"RSTMDB_SERVER": server.address}),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert watch.stderr is not None and watch.stdout is not None
        assert watch.stderr.readline().startswith("Watching all events (sub_id: sub-")
        assert watch.stderr.readline().strip() == "Press Ctrl+C to stop..."
        done = bash(QUICK_EXAMPLE, server, cli_home)
        assert done.returncode == 0, done.stderr
        shipped = json.loads(watch.stdout.readline())
    finally:
        watch.terminate()
        watch.wait(10)
    assert done.stdout.startswith("Created machine order v1 (checksum: ")
    assert "Created instance order-123\n  Machine: order v1\n  State: created\n" in done.stdout
    assert "Applied event SHIP on order-123\n  paid → shipped\n" in done.stdout
    tail = done.stdout[done.stdout.index("Instance order-123") :]
    assert tail.splitlines()[:3] == [
        "Instance order-123",
        "  Machine: order v1",
        "  State: shipped",
    ]
    context = tail[tail.index("{") : tail.index("}") + 1]
    assert json.loads(context) == {"customer": "alice", "amount": 99.99, "carrier": "fedex"}
    assert (shipped["event"], shipped["to_state"], shipped["payload"]) == (
        "SHIP",
        "shipped",
        {"carrier": "fedex"},
    )
    assert shipped["ctx"]["carrier"] == "fedex" and "type" in shipped


INSTANCE_MANAGEMENT = """
# Create an instance
rstmdb-cli create-instance -m order -V 1 -i order-001 -c '{"amount": 500}'

# Apply an event
rstmdb-cli apply-event -i order-001 -e APPROVE -p '{"approver": "alice"}'
"""


@pytest.mark.slow
def test_instance_management_example(run_cli: RunCli, rstmdb_server: Any, cli_home: Path) -> None:
    server = rstmdb_server()
    put = run_cli("put-machine", "-n", "order", "-v", "1", json.dumps(APPROVAL), server=server)
    assert put.returncode == 0
    done = bash(INSTANCE_MANAGEMENT, server, cli_home)
    assert done.returncode == 0, done.stderr
    assert "Created instance order-001" in done.stdout
    assert "  pending → approved" in done.stdout


def json_of(run_cli: RunCli, server: ServerProcess, *args: str) -> Any:
    done = run_cli("--json", *args, server=server)
    assert done.returncode == 0, done.stderr
    assert len(done.stdout.strip().splitlines()) == 1
    return json.loads(done.stdout)


def human(run_cli: RunCli, server: ServerProcess, *args: str) -> str:
    done = run_cli(*args, server=server)
    assert done.returncode == 0, done.stderr
    return done.stdout


@pytest.mark.slow
def test_machine_commands(run_cli: RunCli, server: ServerProcess, tmp_path: Path) -> None:
    definition = tmp_path / "approval.json"
    definition.write_text(json.dumps(APPROVAL))
    out = human(run_cli, server, "put-machine", "-n", "appr", "-v", "1", f"@{definition}")
    assert re.fullmatch(r"Created machine appr v1 \(checksum: [0-9a-f]{64}\)\n", out)
    doc = json_of(
        run_cli, server, "put-machine", "--name", "appr", "--version", "2", f"@{definition}"
    )
    assert doc["created"] is True and set(doc) == {
        "machine",
        "version",
        "stored_checksum",
        "created",
    }
    again = human(run_cli, server, "pm", "appr", "2", json.dumps(APPROVAL))
    assert again.startswith("Already exists machine appr v2")
    shown = human(run_cli, server, "get-machine", "appr")
    assert shown.startswith("Machine appr v2\n{")
    assert json.loads(shown[shown.index("{") :])["initial"] == "pending"
    assert human(run_cli, server, "get-machine", "-n", "appr", "-v", "1").startswith(
        "Machine appr v1"
    )
    assert set(json_of(run_cli, server, "get-machine", "appr", "1")) == {"definition", "checksum"}
    assert (
        "  appr v2 (3 states, 2 transitions)"
        in human(run_cli, server, "list-machines").splitlines()
    )
    listing = json_of(run_cli, server, "list-machines")
    assert {"machine": "appr", "versions": [1, 2]} in listing["items"]


@pytest.mark.slow
def test_instance_commands(run_cli: RunCli, server: ServerProcess) -> None:
    human(run_cli, server, "put-machine", "-n", "flow", "-v", "1", json.dumps(APPROVAL))
    created = json_of(
        run_cli,
        server,
        "create-instance",
        "-m",
        "flow",
        "-V",
        "1",
        "-i",
        "f-1",
        "-c",
        '{"amount": 5}',
        "--idempotency-key",
        "k-1",
    )
    assert set(created) == {"instance_id", "state", "wal_offset"}
    repeat = json_of(
        run_cli,
        server,
        "create-instance",
        "-m",
        "flow",
        "--machine-version",
        "1",
        "-i",
        "f-1",
        "-c",
        '{"amount": 5}',
        "--idempotency-key",
        "k-1",
    )
    assert repeat == created
    out = human(run_cli, server, "create-instance", "-m", "flow", "-V", "1", "-i", "f-2")
    assert out.splitlines()[0] == "Created instance f-2"
    got = json_of(run_cli, server, "get-instance", "f-1")
    assert (got["state"], got["ctx"]) == ("pending", {"amount": 5})
    listed = json_of(run_cli, server, "list-instances", "--machine", "flow", "--limit", "1")
    assert (listed["total"], listed["has_more"], len(listed["instances"])) == (2, True, 1)
    text = human(run_cli, server, "list-instances", "--machine", "flow", "--state", "pending")
    assert text.splitlines() == [
        "Instances (2 total)",
        "  f-1 (flow v1) state=pending",
        "  f-2 (flow v1) state=pending",
    ]
    assert "f-2" in human(run_cli, server, "list-instances", "--machine", "flow", "--offset", "1")
    applied = json_of(
        run_cli,
        server,
        "apply-event",
        "-i",
        "f-1",
        "-e",
        "APPROVE",
        "-p",
        '{"by": "bob"}',
        "--expected-state",
        "pending",
        "--idempotency-key",
        "a-1",
    )
    assert (applied["from_state"], applied["to_state"], applied["applied"]) == (
        "pending",
        "approved",
        True,
    )
    out = human(run_cli, server, "apply-event", "-i", "f-2", "-e", "REJECT")
    assert out.splitlines() == [
        "Applied event REJECT on f-2",
        "  pending → rejected",
        f"  WAL offset: {json_of(run_cli, server, 'get-instance', 'f-2')['last_wal_offset']}",
    ]
    snap = json_of(run_cli, server, "snapshot-instance", "f-1")
    assert snap["instance_id"] == "f-1" and snap["snapshot_id"].startswith("snap-")
    assert human(run_cli, server, "snapshot-instance", "f-1").startswith(
        "Snapshot created for instance f-1"
    )
    assert human(run_cli, server, "delete-instance", "f-2") == "Deleted instance f-2\n"
    deleted = json_of(run_cli, server, "delete-instance", "f-1")
    assert deleted["deleted"] is True


@pytest.mark.slow
def test_server_and_storage_commands(run_cli: RunCli, server: ServerProcess) -> None:
    assert human(run_cli, server, "ping") == "PONG\n"
    assert json_of(run_cli, server, "ping") == {"pong": True}
    info = json.loads(human(run_cli, server, "info"))
    assert info["protocol_version"] == 1 and info == json_of(run_cli, server, "info")
    wal = json_of(run_cli, server, "wal-read", "--limit", "2")
    assert len(wal["records"]) == 2 and wal["next_offset"] == wal["records"][1]["offset"] + 1
    text = human(run_cli, server, "wal-read", "-f", str(wal["records"][1]["offset"]), "-l", "1")
    assert re.match(r"\[ +2\] +\d+ \| \w+\n", text)
    assert text.endswith(f"\nNext offset: {wal['next_offset']}\n")
    stats = json_of(run_cli, server, "wal-stats")
    assert {"entry_count", "segment_count", "total_size_bytes", "io_stats"} <= set(stats)
    assert human(run_cli, server, "wal-stats").startswith("WAL Statistics\n  Entries:")
    compacted = human(run_cli, server, "compact", "--force")
    assert compacted.splitlines()[0] == "Compaction complete"
    assert "  WAL segments remaining: " in compacted
    assert set(json_of(run_cli, server, "compact")) >= {"snapshots_created", "wal_segments"}
    missing = human(run_cli, server, "unwatch", "sub-nothing")
    assert missing == "Warning: subscription sub-nothing not found\n"
    assert json_of(run_cli, server, "unwatch", "sub-x") == {
        "subscription_id": "sub-x",
        "removed": False,
    }


@pytest.mark.slow
def test_batch_and_flush_all(run_cli: RunCli, rstmdb_server: Any) -> None:
    server = rstmdb_server(env={"RSTMDB_ALLOW_FLUSH_ALL": "true"})
    human(run_cli, server, "put-machine", "-n", "b", "-v", "1", json.dumps(APPROVAL))
    create = {
        "op": "CREATE_INSTANCE",
        "params": {"machine": "b", "version": 1, "instance_id": "b-1"},
    }
    batch = json_of(run_cli, server, "batch", json.dumps([create]))
    assert batch["results"][0]["result"]["instance_id"] == "b-1"
    apply = {"op": "APPLY_EVENT", "params": {"instance_id": "b-1", "event": "NOPE"}}
    ok = {"op": "APPLY_EVENT", "params": {"instance_id": "b-1", "event": "REJECT"}}
    # A best_effort batch with a failed op prints every result and exits 1.
    done = run_cli("batch", "--mode", "best_effort", json.dumps([apply, ok]), server=server)
    assert done.returncode == 1 and done.stderr == "Error: 1 of 2 batch ops failed\n"
    lines = done.stdout.splitlines()
    assert lines[0] == "Batch (2 ops)" and lines[1].startswith("  [0] error INVALID_TRANSITION: ")
    assert lines[2].startswith("  [1] ok ")
    ops = json.dumps([apply])
    as_json = run_cli("--json", "batch", "--mode", "best_effort", ops, server=server)
    assert as_json.returncode == 1
    assert json.loads(as_json.stdout)["results"][0]["error"]["code"] == "INVALID_TRANSITION"
    flushed = json_of(run_cli, server, "flush-all")
    assert flushed == {"flushed": True, "instances_removed": 1, "machines_removed": 1}
    again = human(run_cli, server, "flush-all")
    assert again == "Flushed: 0 instances and 0 machine versions removed\n"
    assert human(run_cli, server, "list-machines") == "No machines registered\n"
    assert human(run_cli, server, "list-instances") == "No instances\n"


@pytest.mark.slow
def test_hash_token_is_offline(run_cli: RunCli) -> None:
    done = run_cli("-s", "127.0.0.1:1", "hash-token", "my-secret-token")
    assert done.stdout == "ea5add57437cbf20af59034d7ed17968dcc56767b41965fcc5b376d45db8b4a3\n"
    assert run_cli("--json", "hash-token", "test").stdout.strip() == (
        hashlib.sha256(b"test").hexdigest()
    )


@pytest.mark.slow
def test_errors_are_one_line_with_the_right_status(
    run_cli: RunCli, server: ServerProcess, tmp_path: Path
) -> None:
    cases: list[tuple[tuple[str, ...], int, str]] = [
        (
            ("get-instance", "no-such"),
            1,
            "Error [INSTANCE_NOT_FOUND]: core error: instance not found: no-such",
        ),
        (
            ("create-instance", "-m", "x", "-V", "1", "-c", "{bad"),
            1,
            "Error: invalid JSON in --ctx: ",
        ),
        (("put-machine", "-n", "x", "-v", "1", f"@{tmp_path}/none.json"), 1, "Error: cannot read"),
        (
            ("--client-cert", "c.pem", "ping"),
            1,
            "Error: --client-cert and --client-key must be used together",
        ),
        (("create-instance", "-m", "x"), 2, "rstmdb-cli: error: missing VERSION"),
        (("get-instance",), 2, "rstmdb-cli: error: the following arguments are required: ID"),
        (("no-such-command",), 2, "rstmdb-cli: error: argument COMMAND: invalid choice"),
    ]
    for args, status, message in cases:
        done = run_cli(*args, server=server)
        assert done.returncode == status, (args, done.stderr)
        lines = done.stderr.splitlines()
        assert lines[-1].startswith(message), (args, done.stderr)
        assert len(lines) <= 2 and done.stdout == "" and no_traceback(done.stderr)


@pytest.mark.slow
def test_connection_failures(run_cli: RunCli, server: ServerProcess) -> None:
    port = free_port()
    done = run_cli("-s", f"127.0.0.1:{port}", "ping", server=server)
    assert done.returncode == 1
    assert done.stderr == f"Connection failed: 127.0.0.1:{port}: Connection refused\n"
    flag_wins = run_cli("ping", env={"RSTMDB_SERVER": f"127.0.0.1:{port}"})
    assert flag_wins.returncode == 1 and f"127.0.0.1:{port}" in flag_wins.stderr
    by_name = run_cli("-s", f"localhost:{server.port}", "ping", env={"RSTMDB_SERVER": "x:1"})
    assert by_name.stdout == "PONG\n"
    bad = run_cli("-s", "no-port", "ping")
    assert bad.returncode == 2 and no_traceback(bad.stderr)


@pytest.mark.slow
def test_token_from_the_environment(run_cli: RunCli, rstmdb_server: Any) -> None:
    token_hash = hashlib.sha256(b"letmein").hexdigest()
    server = rstmdb_server(
        env={"RSTMDB_AUTH_REQUIRED": "true", "RSTMDB_AUTH_TOKEN_HASH": token_hash}
    )
    assert run_cli("list-machines", server=server, env={"RSTMDB_TOKEN": "letmein"}).returncode == 0
    refused = run_cli("list-machines", server=server)
    assert refused.returncode == 1
    assert refused.stderr == "Error [UNAUTHORIZED]: authentication required\n"
    wrong = run_cli("-t", "nope", "ping", server=server, env={"RSTMDB_TOKEN": "letmein"})
    assert wrong.returncode == 1 and wrong.stderr.startswith("Connection failed: ")
