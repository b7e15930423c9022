"""Render the README's screenshot of the web console.

    python scripts/screenshot_console.py docs/console.png [--pages DIR]

Starts ``rstmdb`` on free loopback ports with a throw-away data directory,
fills it with demo machines and instances over RCP, opens the console in
headless Chromium (Debian's ``chromium``, driven by Playwright) and saves the
machine page as a PNG. ``--pages DIR`` also saves every other page there.
"""

from __future__ import annotations

import argparse
import random
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from playwright.sync_api import Page, sync_playwright

from pyrstmdb.client.sync import Client

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
ORDER = {
    "states": ["created", "paid", "shipped", "delivered", "cancelled", "refunded"],
    "initial": "created",
    "transitions": [
        {"from": "created", "event": "PAY", "to": "paid", "guard": "ctx.amount > 0"},
        {"from": "paid", "event": "SHIP", "to": "shipped"},
        {"from": "shipped", "event": "DELIVER", "to": "delivered"},
        {"from": ["created", "paid"], "event": "CANCEL", "to": "cancelled"},
        {"from": ["paid", "shipped"], "event": "REFUND", "to": "refunded"},
    ],
}
TICKET = {
    "states": ["open", "triaged", "in_progress", "resolved", "closed"],
    "initial": "open",
    "transitions": [
        {"from": "open", "event": "TRIAGE", "to": "triaged"},
        {"from": "triaged", "event": "START", "to": "in_progress"},
        {"from": "in_progress", "event": "RESOLVE", "to": "resolved"},
        {"from": "resolved", "event": "REOPEN", "to": "open"},
        {"from": "resolved", "event": "CLOSE", "to": "closed", "guard": "ctx.confirmed"},
    ],
}
ORDER_PATHS = [
    ["PAY", "SHIP", "DELIVER"],
    ["PAY", "SHIP"],
    ["PAY"],
    [],
    ["CANCEL"],
    ["PAY", "REFUND"],
]


def start_server(data: Path) -> tuple[subprocess.Popen[str], str, str]:
    rstmdb = Path(sys.executable).parent / "rstmdb"
    proc = subprocess.Popen(
        [
            str(rstmdb),
            "--bind",
            "127.0.0.1:0",
            "--http-bind",
            "127.0.0.1:0",
            "--data-dir",
            str(data),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    assert proc.stdout is not None
    rcp = http = ""
    deadline = time.monotonic() + 20
    while not (rcp and http) and time.monotonic() < deadline:
        line = proc.stdout.readline().strip()
        if m := re.match(r"listening on (\S+)$", line):
            rcp = m.group(1)
        if m := re.match(r"http on (\S+?)/?$", line):
            http = m.group(1)
        if not line and proc.poll() is not None:
            break
    if not (rcp and http):
        proc.kill()
        raise SystemExit("rstmdb did not start (is the HTTP API enabled?)")
    return proc, rcp, http


def fill(address: str) -> None:
    rng = random.Random(7)
    with Client(address) as client:
        client.put_machine("order", 1, ORDER)
        client.put_machine("ticket", 1, TICKET)
        for n in range(48):
            iid = f"order-{1000 + n}"
            client.create_instance("order", 1, instance_id=iid, initial_ctx={"amount": 20 + n})
            for event in rng.choice(ORDER_PATHS):
                client.apply_event(iid, event, payload={"by": rng.choice(["web", "api", "ops"])})
        for n in range(12):
            iid = f"ticket-{n + 1}"
            client.create_instance("ticket", 1, instance_id=iid, initial_ctx={"priority": n % 3})
            for event in ["TRIAGE", "START", "RESOLVE"][: n % 4]:
                client.apply_event(iid, event)


def shoot(page: Page, url: str, path: Path, wait_for: str) -> None:
    page.goto(url)
    page.wait_for_selector(wait_for)
    page.wait_for_timeout(600)
    page.screenshot(path=str(path))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("output", type=Path)
    parser.add_argument("--pages", type=Path, help="also save every page into this folder")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        proc, rcp, http = start_server(Path(tmp) / "data")
        try:
            fill(rcp)
            with sync_playwright() as p:
                browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
                page = browser.new_page(viewport={"width": 1360, "height": 860})
                shoot(page, f"{http}/#/machines/order/1", args.output, ".live[data-status=open]")
                if args.pages:
                    args.pages.mkdir(parents=True, exist_ok=True)
                    for name, route, ready in [
                        ("machines", "#/machines", "#machines-table"),
                        ("instances", "#/instances?machine=order", "#instances-table"),
                        ("instance", "#/instances/order-1002", "#instance-diagram g.node.current"),
                        ("events", "#/events", ".live[data-status=open]"),
                        ("storage", "#/storage", "#wal-stats .stat"),
                        ("editor", "#/machines/new?machine=ticket", "#definition-editor"),
                    ]:
                        shoot(page, f"{http}/{route}", args.pages / f"{name}.png", ready)
                browser.close()
        finally:
            proc.kill()
            proc.wait()
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
