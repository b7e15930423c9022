"""The connection-level limits: pending message sizes, the shared budget, refusal logging."""

from __future__ import annotations

import logging

import pytest

from pyrstmdb.config import load
from pyrstmdb.protocol import ServerCodec
from pyrstmdb.protocol.frame import HEADER, HEADER_SIZE, MAGIC, encode_frame
from pyrstmdb.server.limits import BufferBudget, RefusalLog


def test_pending_size_is_announced_by_the_frame_header() -> None:
    codec = ServerCodec()
    assert codec.pending_size == 0
    codec.feed(HEADER.pack(MAGIC, 1, 0, 0, 1000, 0)[:10])
    assert codec.pending_size == 10  # size unknown yet: what is held
    codec.feed(HEADER.pack(MAGIC, 1, 0, 0, 1000, 0)[10:] + b"x" * 10)
    assert codec.pending_size == HEADER_SIZE + 1000
    codec.feed(b"x" * 990 + encode_frame(b'{"id":"1"}')[:5])
    assert codec.pending_size == 5
    codec = ServerCodec()
    codec.feed(b'{"type":"request",')
    assert codec.pending_size == 18


def test_budget_refuses_growth_beyond_the_limit() -> None:
    budget = BufferBudget(100)
    assert budget.change(0, 60)
    assert not budget.change(0, 50)
    assert budget.held == 60
    assert budget.change(60, 100)
    assert budget.change(100, 0)
    assert budget.change(0, 40) and budget.change(0, 60) and budget.held == 100


def test_refusals_are_logged_once_per_interval_with_a_count(
    caplog: pytest.LogCaptureFixture,
) -> None:
    now = [0.0]
    log = logging.getLogger("test.refusals")
    refusals = RefusalLog(log, interval=10.0, clock=lambda: now[0])
    with caplog.at_level(logging.WARNING, logger="test.refusals"):
        for n in range(100):
            now[0] = n * 0.05
            refusals.refused(f"peer{n}", 3)
            refusals.flush(3)
        assert [r.getMessage() for r in caplog.records] == [
            "connection from peer0 refused: limit of 3 connections reached"
        ]
        now[0] = 10.0
        refusals.flush(3)
        now[0] = 30.0
        refusals.flush(3)
        refusals.refused("late", 3)
    assert [r.getMessage() for r in caplog.records[1:]] == [
        "99 more connections refused in the last 10 s: limit of 3 connections reached",
        "connection from late refused: limit of 3 connections reached",
    ]


def test_frame_buffer_setting() -> None:
    assert load("", {}).network.frame_buffer_mb == 256
    assert load("network:\n  frame_buffer_mb: 32\n", {}).network.frame_buffer_mb == 32
    assert load("", {"RSTMDB_FRAME_BUFFER_MB": "8"}).network.frame_buffer_mb == 8
