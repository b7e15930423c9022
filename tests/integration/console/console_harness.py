"""Helpers of the web console tests: a real ``rstmdb`` with its HTTP API, the
screenshot folder and numbered screenshots (Chromium's launch settings are the
screenshot script's)."""

from __future__ import annotations

import os
import re
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path

from playwright.sync_api import Page
from server_harness import ServerProcess

_HTTP_LINE = re.compile(r"^http on (https?://\S+?)/?$")
ARTIFACTS = Path(
    os.environ.get("PYRSTMDB_CONSOLE_ARTIFACTS")
    or Path(tempfile.gettempdir()) / "pyrstmdb-console-artifacts"
)


class ConsoleServer:
    """A running ``rstmdb`` with the HTTP API on a free port."""

    def __init__(self, process: ServerProcess, url: str) -> None:
        self.process = process
        self.url = url

    @property
    def rcp_address(self) -> str:
        return self.process.address


def start_console_server(
    tmp: Path, env: Mapping[str, str] | None = None, name: str = "server"
) -> ConsoleServer:
    process = ServerProcess(
        tmp / f"{name}-data",
        tmp / f"{name}.log",
        env=env,
        args=["--http-bind", "127.0.0.1:0"],
    )
    process.start(wait_ping=not (env or {}).get("RSTMDB_AUTH_REQUIRED"))
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        for line in list(process.stdout_lines):
            found = _HTTP_LINE.match(line)
            if found:
                return ConsoleServer(process, found.group(1))
        time.sleep(0.02)
    process.kill()
    raise RuntimeError(f"no 'http on' line from rstmdb: {process.stdout_lines} {process.log()}")


class Shots:
    """Numbered screenshots of one test."""

    def __init__(self, page: Page, folder: Path) -> None:
        self.page = page
        self.folder = folder
        self.count = 0

    def __call__(self, name: str, full_page: bool = True) -> Path:
        self.count += 1
        path = self.folder / f"{self.count:02d}-{name}.png"
        self.page.screenshot(path=str(path), full_page=full_page)
        return path
