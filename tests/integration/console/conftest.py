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
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from console_harness import (
    ARTIFACTS,
    ConsoleServer,
    Shots,
    start_console_server,
)
from playwright.sync_api import Browser, ConsoleMessage, Page, Playwright, sync_playwright
from scripts.screenshot_console import CHROMIUM, CHROMIUM_ARGS


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if ARTIFACTS.exists():
        terminalreporter.write_line(f"console screenshots: {ARTIFACTS}")


@pytest.fixture
def console_server(tmp_path: Path) -> Iterator[ConsoleServer]:
    server = start_console_server(tmp_path)
    yield server
    server.process.kill()


# Module scope, not session: while Playwright's sync API is started it keeps an event loop
# running in the main thread, which would break every later test (of another module, on the
# same worker) that calls asyncio.run().
@pytest.fixture(scope="module")
def playwright_session() -> Iterator[Playwright]:
    if not os.path.exists(CHROMIUM):
        pytest.fail(
            f"{CHROMIUM} is missing: install Debian's chromium (apt-get install -y chromium)",
            pytrace=False,
        )
    with sync_playwright() as p:
        yield p


@pytest.fixture(scope="module")
def browser(playwright_session: Playwright) -> Iterator[Browser]:
    b = playwright_session.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
    yield b
    b.close()


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
