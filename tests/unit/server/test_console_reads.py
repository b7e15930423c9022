"""The console's counting and filtering of instances (pure helpers of console_api)."""

from __future__ import annotations

from pyrstmdb.engine.state import Instance
from pyrstmdb.server.http.console_api import count_states, select


def _inst(
    iid: str, machine: str, version: int, state: str, updated: int, deleted: bool = False
) -> Instance:
    return Instance(iid, machine, version, state, {}, None, updated, 0, updated, deleted)


ITEMS = [
    _inst("a", "order", 1, "created", 10),
    _inst("b", "order", 1, "paid", 30),
    _inst("c", "order", 2, "paid", 20),
    _inst("d", "order", 1, "paid", 40, deleted=True),
    _inst("e", "other", 1, "paid", 50),
    _inst("f", "order", 1, "legacy", 5),
]


def test_count_states_lists_every_state_and_skips_deleted_and_other_versions() -> None:
    counts = count_states(ITEMS, "order", 1, ["created", "paid", "shipped"])
    assert counts == {"created": 1, "paid": 1, "shipped": 0, "legacy": 1}
    assert list(counts)[:3] == ["created", "paid", "shipped"]
    assert count_states(ITEMS, "nope", 1, ["x"]) == {"x": 0}


def test_select_filters_and_orders_by_last_change() -> None:
    assert [i.id for i in select(ITEMS, None, None, None)] == ["e", "b", "c", "a", "f"]
    assert [i.id for i in select(ITEMS, "order", None, "paid")] == ["b", "c"]
    assert [i.id for i in select(ITEMS, "order", 2, None)] == ["c"]
    assert [i.id for i in select(ITEMS, None, 1, "paid")] == ["e", "b"]
    assert select(ITEMS, "order", 3, None) == []
