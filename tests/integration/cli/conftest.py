"""Fixtures of the CLI tests: ``run_cli`` runs the installed ``rstmdb-cli`` as a user would."""

from __future__ import annotations

import subprocess
from collections.abc import Callable, Mapping
from pathlib import Path

import pytest
from cli_support import CLI, RunCli, cli_env
from server_harness import ServerProcess


@pytest.fixture
def cli_home(tmp_path: Path) -> Path:
    home = tmp_path / "home"
    home.mkdir()
    return home


@pytest.fixture
def run_cli(cli_home: Path) -> RunCli:
    """``run_cli(*args, server=None, env=None, input=None)`` → the finished process."""

    def run(
        *args: str,
        server: ServerProcess | None = None,
        env: Mapping[str, str] | None = None,
        input: str | None = None,
    ) -> subprocess.CompletedProcess[str]:
        extra = dict(env or {})
        if server is not None:
            extra.setdefault("RSTMDB_SERVER", server.address)
        return subprocess.run(
            [str(CLI), *args],
            env=cli_env(cli_home, extra),
            capture_output=True,
            text=True,
            timeout=30,
            input=input,
            stdin=None if input is not None else subprocess.DEVNULL,
        )

    return run


@pytest.fixture(scope="module")
def server(rstmdb_module_server: Callable[..., ServerProcess]) -> ServerProcess:
    return rstmdb_module_server(env={"RSTMDB_ALLOW_FLUSH_ALL": "true"})
