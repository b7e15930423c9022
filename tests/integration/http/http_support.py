"""Helpers of the HTTP API tests: a sample machine and an ``httpx`` client for a server."""

from __future__ import annotations

from typing import Any

import httpx
from server_harness import ServerProcess

ORDER = {
    "states": ["created", "paid", "shipped", "cancelled"],
    "initial": "created",
    "transitions": [
        {"from": "created", "event": "PAY", "to": "paid", "guard": "ctx.amount > 0"},
        {"from": "paid", "event": "SHIP", "to": "shipped"},
        {"from": ["created", "paid"], "event": "CANCEL", "to": "cancelled"},
    ],
}


def http_client(server: ServerProcess, **options: Any) -> httpx.Client:
    assert server.http_url is not None, server.stdout_lines
    return httpx.Client(base_url=server.http_url, timeout=30.0, **options)
