"""Human output formats of the reference CLI, and colours only when enabled."""

from __future__ import annotations

import io

from pyrstmdb.cli import render
from pyrstmdb.cli.render import PLAIN, Style
from pyrstmdb.client import Event, UnwatchResult
from pyrstmdb.results import (
    ApplyEventResult,
    CompactResult,
    CreateInstanceResult,
    GetInstanceResult,
    InstanceSummary,
    ListInstancesResult,
    PutMachineResult,
    WalReadResult,
    WalRecord,
)


def test_instance_lines() -> None:
    created = CreateInstanceResult("o-1", "created", 1099511627776)
    assert render.created("order", 1, created, PLAIN).splitlines() == [
        "Created instance o-1",
        "  Machine: order v1",
        "  State: created",
        "  WAL offset: 1099511627776",
    ]
    got = GetInstanceResult("order", 1, "paid", {"a": 1}, None, 9)
    assert render.instance("o-1", got, PLAIN).splitlines() == [
        "Instance o-1",
        "  Machine: order v1",
        "  State: paid",
        "  Context: {",
        '  "a": 1',
        "}",
        "  Last WAL offset: 9",
    ]
    applied = ApplyEventResult("created", "paid", {}, 12, True)
    assert render.applied("o-1", "PAY", applied, PLAIN).splitlines() == [
        "Applied event PAY on o-1",
        "  created → paid",
        "  WAL offset: 12",
    ]


def test_machine_and_listing_lines() -> None:
    put = PutMachineResult("order", 1, "c" * 64, False)
    assert (
        render.put_machine(put, PLAIN) == f"Already exists machine order v1 (checksum: {'c' * 64})"
    )
    line = render.machine_line("order", 2, {"states": [1, 2, 3], "transitions": [1]}, PLAIN)
    assert line == "  order v2 (3 states, 1 transitions)"
    items = [InstanceSummary("o-1", "order", 1, "paid", 0, 0, 5)]
    assert render.instances(ListInstancesResult(items, 3, True), PLAIN).splitlines() == [
        "Instances (3 total, showing first 1)",
        "  o-1 (order v1) state=paid",
    ]
    assert render.instances(ListInstancesResult([], 0, False), PLAIN) == "No instances"


def test_wal_lines() -> None:
    records = [
        WalRecord(1, 1099511627776, {"type": "put_machine"}),
        WalRecord(
            2,
            1099511627900,
            {
                "type": "apply_event",
                "instance_id": "o",
                "event": "PAY",
                "from_state": "a",
                "to_state": "b",
            },
        ),
    ]
    assert render.wal(WalReadResult(records, 1099511627901), PLAIN).splitlines() == [
        "[     1] 1099511627776 | put_machine",
        "[     2] 1099511627900 | apply_event",
        "         Instance: o, Event: PAY, a → b",
        "",
        "Next offset: 1099511627901",
    ]
    assert render.wal(WalReadResult([], None), PLAIN) == "No WAL entries"


def test_compact_and_sizes() -> None:
    text = render.compact(CompactResult(2, 1, 3 * 1024 * 1024, 5, 1), PLAIN)
    assert "  Bytes reclaimed: 3.00 MiB" in text.splitlines()
    assert [render.human_size(n) for n in (5, 2048, 1024**3)] == ["5 B", "2.00 KiB", "1.00 GiB"]


def test_fields_are_aligned() -> None:
    assert render.fields([("A", 1), ("Longer", 2)]) == ["  A:      1", "  Longer: 2"]


def test_unwatch_and_events() -> None:
    assert render.unwatched(UnwatchResult("s", False), PLAIN) == (
        "Warning: subscription s not found"
    )
    event = Event("s", "o", "m", 1, 10, "a", "b", "GO", None, {"k": 1})
    assert render.event_line(event) == (
        '{"type":"event","subscription_id":"s","instance_id":"o","machine":"m","version":1,'
        '"wal_offset":10,"from_state":"a","to_state":"b","event":"GO","ctx":{"k":1}}'
    )


def test_colours_only_on_a_terminal(monkeypatch: object) -> None:
    assert Style(True).green("ok") == "\x1b[32mok\x1b[0m"
    assert render.style_for(io.StringIO()).enabled is False
