"""``rstmdb-cli`` as scripts and people use it: options anywhere, help, pages, completion."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
from cli_support import CLI, RunCli, cli_env
from server_harness import ServerProcess

ORDER = {
    "states": ["created", "paid"],
    "initial": "created",
    "transitions": [{"from": "created", "event": "PAY", "to": "paid"}],
}


@pytest.mark.slow
def test_global_options_after_the_command(
    run_cli: RunCli, server: ServerProcess, cli_home: Path
) -> None:
    assert (
        run_cli("put-machine", "-n", "o", "-v", "1", json.dumps(ORDER), server=server).returncode
        == 0
    )
    assert (
        run_cli("create-instance", "-m", "o", "-V", "1", "-i", "o-1", server=server).returncode == 0
    )
    after = run_cli("get-instance", "o-1", "--json", server=server)
    assert after.returncode == 0, after.stderr
    assert json.loads(after.stdout)["state"] == "created"
    # -s after the command beats RSTMDB_SERVER, as it does before the command.
    moved = run_cli("ping", "-s", server.address, env={"RSTMDB_SERVER": "127.0.0.1:1"})
    assert moved.stdout == "PONG\n", moved.stderr
    mixed = run_cli("--json", "apply-event", "-i", "o-1", "-e", "PAY", "-s", server.address)
    assert json.loads(mixed.stdout)["to_state"] == "paid", mixed.stderr


@pytest.mark.slow
def test_apply_event_help_describes_and_marks_required_options(run_cli: RunCli) -> None:
    done = run_cli("apply-event", "--help")
    assert done.returncode == 0
    usage = " ".join(done.stdout.split("\n\n")[0].split())
    assert usage.startswith("usage: rstmdb-cli apply-event -i ID -e EVENT [-p JSON]")
    assert "-i ID, --instance ID  instance id (required; or as a positional word)" in done.stdout
    assert "event payload: JSON or @file" in done.stdout
    assert "global options:" in done.stdout and "--json" in done.stdout
    lines = done.stdout.splitlines()
    for index, line in enumerate(lines):
        described_here = "  " in line.strip()
        described_below = index + 1 < len(lines) and lines[index + 1].startswith(" " * 10)
        if line.startswith("  -") and not (described_here or described_below):
            raise AssertionError(f"option without a description: {line}")


@pytest.mark.slow
def test_version_flags(run_cli: RunCli) -> None:
    for flag in ("--version", "-V"):
        done = run_cli(flag)
        assert done.returncode == 0 and done.stdout.startswith("rstmdb-cli ")


@pytest.mark.slow
def test_wal_read_prints_a_page_and_says_how_to_get_the_next(
    run_cli: RunCli, rstmdb_server: Any
) -> None:
    server = rstmdb_server()
    assert (
        run_cli("put-machine", "-n", "o", "-v", "1", json.dumps(ORDER), server=server).returncode
        == 0
    )
    ops = [
        {"op": "CREATE_INSTANCE", "params": {"machine": "o", "version": 1, "instance_id": f"i{n}"}}
        for n in range(100)
    ]
    for _ in range(2):
        ops = [
            {**op, "params": {**op["params"], "instance_id": op["params"]["instance_id"] + "x"}}
            for op in ops
        ]
        assert run_cli("batch", json.dumps(ops), server=server).returncode == 0
    first = run_cli("--json", "wal-read", server=server)
    assert first.returncode == 0
    page = json.loads(first.stdout)
    assert len(page["records"]) == 100  # 201 records in the log, a page of 100 shown
    hint = f"More records: rstmdb-cli wal-read --from {page['next_offset']} --limit 100"
    assert first.stderr.strip() == hint
    last = run_cli("wal-read", "--from", str(page["next_offset"]), "--limit", "500", server=server)
    assert last.returncode == 0 and last.stderr == ""
    assert last.stdout.count("| create_instance") == 101


@pytest.mark.slow
def test_completion_scripts_come_from_the_command_table(run_cli: RunCli, tmp_path: Path) -> None:
    bash_script = run_cli("completion", "bash")
    assert bash_script.returncode == 0
    script = tmp_path / "rstmdb-cli.bash"
    script.write_text(bash_script.stdout)

    def complete(*words: str) -> list[str]:
        probe = (
            f"source {script}\n"
            f"COMP_WORDS=(rstmdb-cli {' '.join(repr(w) for w in words)})\n"
            f"COMP_CWORD={len(words)}\n"
            "_rstmdb_cli\n"
            'printf "%s\\n" "${COMPREPLY[@]}"\n'
        )
        done = subprocess.run(["bash", "-c", probe], capture_output=True, text=True, check=True)
        return done.stdout.split()

    assert complete("appl") == ["apply-event", "apply"]
    assert "watch-all" in complete("") and "completion" in complete("")
    assert complete("-s", "h:1", "get-i") == ["get-instance"]
    assert complete("apply-event", "--ex") == ["--expected-state", "--expected-wal-offset"]
    assert complete("get-instance", "x", "--js") == ["--json"]
    assert complete("a", "--ex") == ["--expected-state", "--expected-wal-offset"]  # not `?`
    assert complete("batch", "--mode", "") == ["atomic", "best_effort"]
    assert complete("completion", "") == ["bash", "zsh"]
    zsh = run_cli("completion", "zsh")
    assert zsh.returncode == 0 and zsh.stdout.startswith("#compdef rstmdb-cli\n")
    assert "'apply-event:Apply an event to an instance'" in zsh.stdout
    assert '("apply-event"|"apply"|"a") flags=(-i --instance -e --event' in zsh.stdout
    assert '("help"|"?") flags=()' in zsh.stdout
    bad = run_cli("completion", "fish")
    assert bad.returncode == 2 and "invalid choice" in bad.stderr


def test_completion_is_loaded_by_bash(tmp_path: Path, cli_home: Path) -> None:
    """The documented line works in an interactive bash: `complete -p` knows the command."""
    env = cli_env(cli_home)
    done = subprocess.run(
        ["bash", "-c", 'eval "$(rstmdb-cli completion bash)" && complete -p rstmdb-cli'],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "complete -o default -F _rstmdb_cli rstmdb-cli"
    assert CLI.exists()
