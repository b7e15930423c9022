"""The start-up replay report: quiet for a second, then about one line a second."""

from __future__ import annotations

import logging

import pytest

from pyrstmdb.server.starting import ReplayReport


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_progress_lines_after_a_second_at_most_one_a_second(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock = Clock()
    report = ReplayReport(clock)
    with caplog.at_level(logging.INFO, logger="pyrstmdb.server"):
        for step in range(1, 33):  # 32 chunks over 4 s
            clock.now += 0.125
            report(step * 62_500, step * 100, 3200)
        report(2_000_000, 3200, 3200)
        report.finished()
    messages = [record.getMessage() for record in caplog.records]
    assert messages == [
        "replaying the log: 500,000 records (25%)",
        "replaying the log: 1,000,000 records (50%)",
        "replaying the log: 1,500,000 records (75%)",
        "data loaded in 4.0 s (2,000,000 log records replayed)",
    ]
    assert (report.records, report.percent) == (2_000_000, 100)


def test_a_short_replay_says_only_when_it_is_done(caplog: pytest.LogCaptureFixture) -> None:
    clock = Clock()
    report = ReplayReport(clock)
    with caplog.at_level(logging.INFO, logger="pyrstmdb.server"):
        clock.now += 0.4
        report(1000, 10, 20)
        clock.now += 0.4
        report(2000, 20, 20)
        report.finished()
    assert [r.getMessage() for r in caplog.records] == [
        "data loaded in 0.8 s (2,000 log records replayed)"
    ]


def test_a_long_replay_logs_at_most_ten_lines(caplog: pytest.LogCaptureFixture) -> None:
    clock = Clock()
    report = ReplayReport(clock)
    with caplog.at_level(logging.INFO, logger="pyrstmdb.server"):
        for step in range(1, 601):  # 600 chunks over 60 s
            clock.now += 0.1
            report(step * 1000, step, 600)
        report.finished()
    messages = [record.getMessage() for record in caplog.records]
    percents = [int(m.split("(")[1].rstrip("%)")) for m in messages[:-1]]
    assert 5 <= len(percents) <= 10
    assert percents == sorted(percents) and len({p // 10 for p in percents}) == len(percents)
    assert messages[-1] == "data loaded in 60.0 s (600,000 log records replayed)"
