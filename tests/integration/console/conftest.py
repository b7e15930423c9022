"""Fixtures for the web console tests: a real ``rstmdb`` server with its HTTP API,
Debian's ``chromium`` driven by Playwright, and a directory for screenshots.

Chromium must be installed (``apt-get install -y chromium``; ``make test``
does it when it can). Screenshots go to ``$PYRSTMDB_CONSOLE_ARTIFACTS`` (default
``<tmp>/pyrstmdb-console-artifacts``), one folder per test; the path is printed
at the end of the run.
"""

from __future__ import annotations

import os
import re
import tempfile
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, ConsoleMessage, Page, Playwright, sync_playwright
from server_harness import ServerProcess

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
_HTTP_LINE = re.compile(r"^http on (https?://\S+?)/?$")
ARTIFACTS = Path(
    os.environ.get("PYRSTMDB_CONSOLE_ARTIFACTS")
    or Path(tempfile.gettempdir()) / "pyrstmdb-console-artifacts"
)


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if ARTIFACTS.exists():
        terminalreporter.write_line(f"console screenshots: {ARTIFACTS}")


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


@pytest.fixture
def console_server(tmp_path: Path) -> Iterator[ConsoleServer]:
    server = start_console_server(tmp_path)
    yield server
    server.process.kill()


@pytest.fixture(scope="session")
def playwright_session() -> Iterator[Playwright]:
    if not os.path.exists(CHROMIUM):
        pytest.fail(
            f"{CHROMIUM} is missing: install Debian's chromium (apt-get install -y chromium)",
            pytrace=False,
        )
    with sync_playwright() as p:
        yield p


@pytest.fixture(scope="session")
def browser(playwright_session: Playwright) -> Iterator[Browser]:
    b = playwright_session.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
    yield b
    b.close()


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


@pytest.fixture
def page(browser: Browser, request: pytest.FixtureRequest) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1280, "height": 860})
    pg = context.new_page()
    pg.set_default_timeout(10_000)
    errors: list[str] = []

    def on_console(msg: ConsoleMessage) -> None:
        # 401/4xx answers are expected in some flows; script errors never are.
        if msg.type == "error" and "Failed to load resource" not in msg.text:
            errors.append(msg.text)

    pg.on("console", on_console)
    pg.on("pageerror", lambda exc: errors.append(str(exc)))
    yield pg
    context.close()
    assert not errors, f"errors in the page: {errors}"


@pytest.fixture
def shots(page: Page, request: pytest.FixtureRequest) -> Shots:
    folder = ARTIFACTS / re.sub(r"[^\w.-]+", "_", request.node.name)
    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.glob("*.png"):
        old.unlink()
    return Shots(page, folder)
