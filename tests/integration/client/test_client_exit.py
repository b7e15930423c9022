"""A blocking client left open when the interpreter exits closes quietly."""

from __future__ import annotations

import subprocess
import sys

import pytest
from server_harness import ServerProcess, clean_env

SCRIPT = """
import sys
from pyrstmdb.client import Client

client = Client(sys.argv[1])
client.ping()
sub = client.watch_all()
print("done")
"""


@pytest.mark.slow
def test_an_unclosed_client_exits_without_warnings(rstmdb_server: object) -> None:
    server: ServerProcess = rstmdb_server()  # type: ignore[operator]
    for _ in range(3):
        done = subprocess.run(
            [sys.executable, "-c", SCRIPT, server.address],
            env=clean_env(),
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert done.returncode == 0 and done.stdout == "done\n"
        assert done.stderr == ""
