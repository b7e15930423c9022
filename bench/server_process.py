"""Start the real ``rstmdb`` server for a benchmark (free loopback port, every_write)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path


def start_server(data_dir: str) -> tuple[subprocess.Popen[str], int]:
    """The server process and the port it listens on; the caller kills it."""
    script = Path(sys.executable).parent / "rstmdb"
    command = [str(script)] if script.exists() else [sys.executable, "-m", "pyrstmdb.server.main"]
    env = {k: v for k, v in os.environ.items() if not k.startswith("RSTMDB_")}
    env.update({"RSTMDB_FSYNC_POLICY": "every_write", "RSTMDB_LOG_FORMAT": "text"})
    proc = subprocess.Popen(
        [*command, "--bind", "127.0.0.1:0", "--http-bind", "127.0.0.1:0", "--data-dir", data_dir],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    assert proc.stdout is not None
    for line in proc.stdout:
        found = re.match(r"listening on [^:]+:(\d+)", line)
        if found:
            return proc, int(found.group(1))
    proc.kill()
    raise RuntimeError("rstmdb did not start")
