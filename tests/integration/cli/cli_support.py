"""Helpers of the CLI tests: the installed ``rstmdb-cli`` and its environment."""

from __future__ import annotations

import socket
import subprocess
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from server_harness import clean_env

CLI = Path(sys.executable).parent / "rstmdb-cli"
RunCli = Callable[..., subprocess.CompletedProcess[str]]


def cli_env(home: Path, extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """No inherited ``RSTMDB_*``, no colours, a private ``HOME``, plus ``extra``."""
    env = clean_env({"NO_COLOR": "1", "HOME": str(home), "PROMPT_TOOLKIT_NO_CPR": "1"})
    env["PATH"] = f"{CLI.parent}:{env.get('PATH', '')}"
    env.update(extra or {})
    return env


def no_traceback(*outputs: Any) -> bool:
    return not any("Traceback" in str(out) for out in outputs)


def free_port() -> int:
    """A loopback port that was free a moment ago."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
