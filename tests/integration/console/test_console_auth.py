"""With auth required, the console asks for the token once, keeps it for the tab,
and its live streams (fetch-based SSE with the Authorization header) work too."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from console_harness import Shots, start_console_server
from playwright.sync_api import Browser, Page, expect

from pyrstmdb.client.sync import Client

pytestmark = pytest.mark.slow  # a browser flow of several seconds

TOKEN = "console-secret-token"
MACHINE = {
    "states": ["open", "closed"],
    "initial": "open",
    "transitions": [
        {"from": "open", "event": "CLOSE", "to": "closed"},
        {"from": "closed", "event": "OPEN", "to": "open"},
    ],
}


def _sign_in(page: Page, token: str) -> None:
    expect(page.locator("#token-dialog")).to_be_visible()
    page.fill("#token-input", token)
    page.click("#token-submit")


def test_token_prompt_and_live_updates_with_auth(
    page: Page, browser: Browser, tmp_path: Path, shots: Shots
) -> None:
    env = {
        "RSTMDB_AUTH_REQUIRED": "true",
        "RSTMDB_AUTH_TOKEN_HASH": hashlib.sha256(TOKEN.encode()).hexdigest(),
    }
    server = start_console_server(tmp_path, env=env)
    try:
        with Client(server.rcp_address, token=TOKEN) as client:
            client.put_machine("door", 1, MACHINE)
            client.create_instance("door", 1, instance_id="door-1")
            page.goto(server.url + "/#/instances/door-1")
            expect(page.locator("#token-dialog")).to_be_visible()
            expect(page.locator("#token-error")).to_be_hidden()
            shots("token-prompt")
            _sign_in(page, "wrong-token")
            expect(page.locator("#token-error")).to_contain_text("rejected")
            shots("token-rejected")
            _sign_in(page, TOKEN)
            expect(page.locator("#token-dialog")).to_be_hidden()
            expect(page.locator("#instance-diagram g.node.current")).to_have_attribute(
                "data-state", "open"
            )
            expect(page.locator(".live[data-status=open]")).to_be_visible()
            client.apply_event("door-1", "CLOSE")
            expect(page.locator("#instance-diagram g.node.current")).to_have_attribute(
                "data-state", "closed"
            )
            shots("signed-in-live")
            page.locator("#event-buttons button[data-event=OPEN]").click()
            expect(page.locator("#instance-diagram g.node.current")).to_have_attribute(
                "data-state", "open"
            )
            assert client.get_instance("door-1").state == "open"

        # Kept for the tab: other pages and a reload need no new prompt.
        page.goto(server.url + "/#/machines")
        page.reload()
        expect(page.locator("#machines-table")).to_contain_text("door")
        expect(page.locator("#token-dialog")).to_be_hidden()
        assert page.evaluate("() => sessionStorage.length") == 1

        # A new tab (another browser context) asks again.
        other = browser.new_context()
        try:
            fresh = other.new_page()
            fresh.goto(server.url + "/#/machines")
            expect(fresh.locator("#token-dialog")).to_be_visible()
        finally:
            other.close()
    finally:
        server.process.kill()
