"""Handler details that need no connection: WAL_READ fitting, INFO, the handler table."""

from __future__ import annotations

import orjson

from pyrstmdb.protocol import Operation
from pyrstmdb.results import WalReadResult, WalRecord
from pyrstmdb.server.dispatch import HANDLERS
from pyrstmdb.server.handlers.storage import _FittedRead


def records(count: int, size: int) -> WalReadResult:
    items = [WalRecord(n + 1, 1000 + n * 10, {"blob": "x" * size}) for n in range(count)]
    return WalReadResult(items, items[-1].offset + 1 if items else None)


def test_fitted_read_stops_before_the_budget() -> None:
    result = _FittedRead(records(10, 100), budget=600).to_dict()
    assert 1 <= len(result["records"]) < 10
    assert len(orjson.dumps(result["records"])) <= 600
    assert result["next_offset"] == result["records"][-1]["offset"] + 1


def test_fitted_read_keeps_at_least_one_record_and_handles_empty() -> None:
    one = _FittedRead(records(3, 1000), budget=10).to_dict()
    assert len(one["records"]) == 1 and one["next_offset"] == 1001
    assert _FittedRead(records(0, 1)).to_dict() == {"records": [], "next_offset": None}
    everything = _FittedRead(records(5, 10)).to_dict()
    assert len(everything["records"]) == 5 and everything["next_offset"] == 1041


def test_every_operation_has_a_handler() -> None:
    assert set(HANDLERS) == set(Operation)
