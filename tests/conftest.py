"""Shared fixtures: a controllable clock and the introduction's machines."""

from __future__ import annotations

from typing import Any

import pytest

from pyrstmdb import _native


def pytest_sessionstart(session: pytest.Session) -> None:
    """Refuse to test compiled modules older than their source (an editable install that
    was not rebuilt): the tests would silently run yesterday's code."""
    stale = _native.stale_modules()
    if stale:
        pytest.exit(
            "compiled modules are older than their source: "
            + ", ".join(stale)
            + "; rebuild with `make venv` (or `pip install -e .`)",
            returncode=2,
        )


ORDER_MACHINE: dict[str, Any] = {
    "states": ["created", "paid", "shipped", "delivered"],
    "initial": "created",
    "transitions": [
        {"from": "created", "event": "PAY", "to": "paid"},
        {"from": "paid", "event": "SHIP", "to": "shipped"},
        {"from": "shipped", "event": "DELIVER", "to": "delivered"},
    ],
}

APPROVAL_MACHINE: dict[str, Any] = {
    "states": ["pending", "approved", "rejected"],
    "initial": "pending",
    "transitions": [
        {"from": "pending", "event": "APPROVE", "to": "approved", "guard": "ctx.amount <= 1000"},
        {"from": "pending", "event": "REJECT", "to": "rejected"},
    ],
}


class FakeClock:
    """Milliseconds that only move when told to."""

    def __init__(self, start: int = 1_700_000_000_000) -> None:
        self.now = start

    def __call__(self) -> int:
        return self.now

    def advance(self, ms: int) -> None:
        self.now += ms


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def order_machine() -> dict[str, Any]:
    return {**ORDER_MACHINE, "transitions": [dict(t) for t in ORDER_MACHINE["transitions"]]}


@pytest.fixture
def approval_machine() -> dict[str, Any]:
    return {**APPROVAL_MACHINE, "transitions": [dict(t) for t in APPROVAL_MACHINE["transitions"]]}
