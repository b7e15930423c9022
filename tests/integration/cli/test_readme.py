"""The README's code blocks, run exactly as printed against a real server.

Convention: every ``python``, ``sh`` and ``bash`` block runs. An HTML comment on
the line before a block changes how:

* ``<!-- readme-test: skip (reason) -->`` — not run (the project's own set-up, a
  server that runs until stopped); the reason is required and few blocks may use it;
* ``<!-- readme-test: server stopped -->`` — runs after the server has stopped;
* ``<!-- readme-test: tls auth -->`` — the server requires TLS and the token
  ``my-secret-token``; the block's directory holds the CA as ``ca.pem``.

Each block gets a fresh server whose data directory is ``./data`` of the block's
working directory, ``RSTMDB_SERVER`` naming it. Shell blocks run in ``bash -e``
after the README's own PATH step (``. .venv/bin/activate``, with ``.venv`` the
virtualenv running these tests) and without the virtualenv on ``PATH`` before it,
as in a new terminal. Python blocks run with this virtualenv's interpreter.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import trustme
from cli_support import cli_env, no_traceback
from server_harness import ServerProcess
from test_cli_commands import QUICK_EXAMPLE

from pyrstmdb.config import load_from_environment

README = Path(__file__).resolve().parents[3] / "README.md"
LAUNCHER = README.parent / "rstmdb"  # ./rstmdb, as the rstmdb introduction starts the server
RUNNABLE = ("python", "sh", "bash")
MARKER = re.compile(r"^<!-- readme-test: (.+) -->$")
MARKERS = ("server stopped", "tls auth")
MAX_SKIPPED = 3
TOKEN = "my-secret-token"
VENV_BIN = Path(sys.executable).parent


@dataclass(frozen=True)
class Block:
    line: int
    lang: str
    code: str
    marker: str | None

    @property
    def skipped(self) -> bool:
        return self.marker is not None and self.marker.startswith("skip")


def readme_blocks() -> list[Block]:
    lines = README.read_text(encoding="utf-8").splitlines()
    blocks: list[Block] = []
    index = 0
    while index < len(lines):
        fence = re.match(r"^```(\w*)\s*$", lines[index])
        if fence is None:
            index += 1
            continue
        end = lines.index("```", index + 1)
        before = [line for line in lines[:index] if line.strip()][-1:]
        marker = MARKER.match(before[0]) if before else None
        blocks.append(
            Block(
                index + 1,
                fence.group(1),
                "\n".join(lines[index + 1 : end]) + "\n",
                marker.group(1) if marker else None,
            )
        )
        index = end + 1
    return blocks


def runnable() -> list[Block]:
    return [block for block in readme_blocks() if block.lang in RUNNABLE]


def path_step() -> str:
    """The README's block that puts the programs on the PATH."""
    (block,) = [b for b in runnable() if b.code.startswith(". .venv/bin/activate")]
    return block.code


def fresh_terminal_env(server: ServerProcess | None, home: Path) -> dict[str, str]:
    """As a new shell: the virtualenv is not on PATH (and not active)."""
    addresses = {"RSTMDB_SERVER": server.address} if server else {}
    if server is not None and server.http_url:
        addresses["RSTMDB_HTTP_URL"] = server.http_url.rstrip("/")
    env = cli_env(home, addresses)
    kept = [p for p in env["PATH"].split(os.pathsep) if p and Path(p) != VENV_BIN]
    env["PATH"] = os.pathsep.join(kept)
    env.pop("VIRTUAL_ENV", None)
    return env


def run_block(block: Block, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    if block.lang == "python":
        script = cwd / f"block_{block.line}.py"
        script.write_text(block.code)
        command = [sys.executable, script.name]
    else:
        command = ["bash", "-e", "-c", path_step() + block.code]
    return subprocess.run(
        command, cwd=cwd, env=env, capture_output=True, text=True, timeout=60, check=False
    )


def expected_prints(block: Block) -> list[str]:
    """``print(...)  # shown`` lines: what the README says they print."""
    if block.lang != "python":
        return []
    return [m.group(1).strip() for m in re.finditer(r"print\(.*\)\s+# (.+)$", block.code, re.M)]


def workdir(tmp_path: Path) -> Path:
    cwd = tmp_path / "work"
    cwd.mkdir()
    # The set-up's virtualenv, where the README's `. .venv/bin/activate` finds it.
    (cwd / ".venv").symlink_to(Path(sys.prefix), target_is_directory=True)
    return cwd


def tls_auth_env(cwd: Path) -> dict[str, str]:
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1", "localhost")
    ca.cert_pem.write_to_path(str(cwd / "ca.pem"))
    (cwd / "server.pem").write_bytes(b"".join(b.bytes() for b in cert.cert_chain_pems))
    cert.private_key_pem.write_to_path(str(cwd / "server.key"))
    return {
        "RSTMDB_TLS_ENABLED": "true",
        "RSTMDB_TLS_CERT": str(cwd / "server.pem"),
        "RSTMDB_TLS_KEY": str(cwd / "server.key"),
        "RSTMDB_AUTH_REQUIRED": "true",
        "RSTMDB_AUTH_TOKEN_HASH": hashlib.sha256(TOKEN.encode()).hexdigest(),
    }


def test_blocks_not_run_are_few_and_say_why() -> None:
    blocks = runnable()
    skipped = [block for block in blocks if block.skipped]
    assert len(skipped) <= MAX_SKIPPED
    assert all(re.fullmatch(r"skip \(.+\)", b.marker or "") for b in skipped)
    assert all(b.marker in MARKERS for b in blocks if b.marker and not b.skipped)
    assert len(blocks) - len(skipped) >= 6


@pytest.mark.parametrize(
    "block", [b for b in runnable() if not b.skipped], ids=lambda b: f"line{b.line}-{b.lang}"
)
@pytest.mark.slow
def test_readme_block_runs_as_printed(
    block: Block, rstmdb_server: Any, tmp_path: Path, cli_home: Path
) -> None:
    cwd = workdir(tmp_path)
    server_env = tls_auth_env(cwd) if block.marker == "tls auth" else {}
    server: ServerProcess = rstmdb_server(env=server_env, data_dir=cwd / "data")
    if block.marker == "server stopped":
        with server.raw() as client:
            assert client.call(
                "PUT_MACHINE",
                {
                    "machine": "m",
                    "version": 1,
                    "definition": {"states": ["a"], "initial": "a", "transitions": []},
                },
            ).ok
        assert server.stop() == 0
    done = run_block(block, cwd, fresh_terminal_env(server, cli_home))
    assert done.returncode == 0, (block.line, done.stdout, done.stderr)
    assert no_traceback(done.stdout, done.stderr)
    assert "Error" not in done.stderr and "Task was destroyed" not in done.stderr
    for shown in expected_prints(block):
        assert shown in done.stdout.splitlines(), (block.line, shown, done.stdout)
    if block.lang == "python":
        assert done.stdout.strip(), block.line
    if block.marker == "server stopped":
        assert "result: OK" in done.stdout


def test_readme_yaml_example_is_a_valid_configuration(tmp_path: Path) -> None:
    (yaml_block,) = [b for b in readme_blocks() if b.lang == "yaml"]
    config_file = tmp_path / "rstmdb.yaml"
    config_file.write_text(yaml_block.code)
    config = load_from_environment({}, str(config_file), {})
    assert not config.warnings
    assert config.network.bind_addr == "0.0.0.0:7401" and config.auth.required


@pytest.mark.slow
def test_introduction_runs_after_the_readme_path_step(tmp_path: Path, cli_home: Path) -> None:
    """``./rstmdb`` starts the server; in a new shell the PATH step makes ``rstmdb-cli`` work."""
    cwd = workdir(tmp_path)
    shutil.copy2(LAUNCHER, cwd / "rstmdb")
    env = fresh_terminal_env(None, cli_home)
    # The introduction's `./rstmdb`, on a free port instead of 7401 (tests bind no fixed port).
    server = subprocess.Popen(
        ["./rstmdb", "--bind", "127.0.0.1:0", "--data-dir", "data"],
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        stdin=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert server.stdout is not None
        listening = server.stdout.readline()
        assert listening.startswith("listening on 127.0.0.1:"), listening
        env["RSTMDB_SERVER"] = listening.split()[-1]
        without = subprocess.run(
            ["bash", "-e", "-c", QUICK_EXAMPLE], cwd=cwd, env=env, capture_output=True, text=True
        )
        assert without.returncode == 127 and "rstmdb-cli: command not found" in without.stderr
        done = subprocess.run(
            ["bash", "-e", "-c", path_step() + QUICK_EXAMPLE],
            cwd=cwd,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
    finally:
        server.terminate()
        assert server.wait(30) == 0
    assert done.returncode == 0, done.stderr
    assert re.match(r"rstmdb \S+\nrstmdb-cli \S+\nCreated machine order v1 ", done.stdout)
    assert "  State: shipped" in done.stdout


def test_the_launcher_says_what_to_do_without_a_virtualenv(tmp_path: Path) -> None:
    shutil.copy2(LAUNCHER, tmp_path / "rstmdb")
    done = subprocess.run(["./rstmdb"], cwd=tmp_path, capture_output=True, text=True, check=False)
    assert done.returncode == 1 and done.stdout == ""
    assert done.stderr == (
        "rstmdb: ./.venv/bin/rstmdb is not installed yet; run 'make venv' first\n"
    )
