"""The state diagram layout: one box per state, one connector per transition,
boxes that do not overlap, polylines that join the right boxes."""

from __future__ import annotations

import json
import math
from typing import Any

from pyrstmdb.diagram_layout import layout, transition_label

ORDER: dict[str, Any] = {
    "states": ["created", "paid", "shipped", "delivered", "cancelled"],
    "initial": "created",
    "transitions": [
        {"from": ["created"], "event": "PAY", "to": "paid", "guard": "ctx.amount > 0"},
        {"from": ["paid"], "event": "SHIP", "to": "shipped"},
        {"from": ["shipped"], "event": "DELIVER", "to": "delivered"},
        {"from": ["created", "paid"], "event": "CANCEL", "to": "cancelled"},
        {"from": ["shipped"], "event": "PING", "to": "shipped"},
        {"from": ["cancelled"], "event": "REOPEN", "to": "created"},
    ],
}


def _box(item: dict[str, Any]) -> tuple[float, float, float, float]:
    return (
        item["x"] - item["w"] / 2,
        item["y"] - item["h"] / 2,
        item["x"] + item["w"] / 2,
        item["y"] + item["h"] / 2,
    )


def _overlap(a: tuple[float, ...], b: tuple[float, ...]) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


def _near_border(point: list[float], item: dict[str, Any], slack: float = 12.0) -> bool:
    left, top, right, bottom = _box(item)
    x, y = point
    inside = left - slack <= x <= right + slack and top - slack <= y <= bottom + slack
    return inside and math.dist((x, y), (item["x"], item["y"])) > 2.0


def test_one_node_per_state_and_one_edge_per_transition() -> None:
    drawing = layout(ORDER)
    assert [n["id"] for n in drawing["nodes"]] == ORDER["states"]
    assert [n["id"] for n in drawing["nodes"] if n["initial"]] == ["created"]
    assert [e["index"] for e in drawing["edges"]] == list(range(len(ORDER["transitions"])))
    assert [e["label"] for e in drawing["edges"]][:2] == ["PAY [ctx.amount > 0]", "SHIP"]
    cancel = drawing["edges"][3]
    assert cancel["from"] == ["created", "paid"] and len(cancel["inbound"]) == 2


def test_boxes_do_not_overlap_and_fit_the_drawing() -> None:
    drawing = layout(ORDER)
    boxes = [_box(n) for n in drawing["nodes"]] + [_box(e["label_box"]) for e in drawing["edges"]]
    for i, a in enumerate(boxes):
        assert all(not _overlap(a, b) for b in boxes[i + 1 :]), a
        assert a[0] >= 0 and a[1] >= 0
        assert a[2] <= drawing["width"] and a[3] <= drawing["height"]


def test_polylines_join_sources_labels_and_targets() -> None:
    drawing = layout(ORDER)
    nodes = {n["id"]: n for n in drawing["nodes"]}
    for edge in drawing["edges"]:
        label = edge["label_box"]
        for source, line in zip(edge["from"], edge["inbound"], strict=True):
            assert _near_border(line[0], nodes[source]), (edge["label"], source, line)
            assert _near_border(line[-1], label), (edge["label"], line)
        assert _near_border(edge["outbound"][0], label)
        assert _near_border(edge["outbound"][-1], nodes[edge["to"]]), edge


def test_self_transition_legs_are_apart() -> None:
    ping = layout(ORDER)["edges"][4]
    (a0, a1), (b0, b1) = ping["inbound"][0][:2], ping["outbound"][-2:]
    assert min(math.dist(a0, b1), math.dist(a1, b0)) > 5


def test_the_initial_state_is_on_top() -> None:
    drawing = layout(ORDER)
    ys = {n["id"]: n["y"] for n in drawing["nodes"]}
    assert ys["created"] < min(y for name, y in ys.items() if name != "created")


def test_disconnected_states_and_edge_cases() -> None:
    drawing = layout(
        {
            "states": ["a", "b", "c", "c"],
            "initial": "a",
            "transitions": [{"from": [], "event": "NEVER", "to": "b"}],
        }
    )
    assert [n["id"] for n in drawing["nodes"]] == ["a", "b", "c"]
    assert drawing["edges"][0]["inbound"] == []
    boxes = [_box(n) for n in drawing["nodes"]]
    assert not any(_overlap(a, b) for i, a in enumerate(boxes) for b in boxes[i + 1 :])
    single = layout({"states": ["only"], "initial": "only", "transitions": []})
    assert single["edges"] == [] and single["nodes"][0]["initial"]


def test_deterministic_and_json_ready() -> None:
    assert json.dumps(layout(ORDER)) == json.dumps(layout(ORDER))
    assert transition_label("GO", None) == "GO"
    assert transition_label("GO", "ctx.n > 1") == "GO [ctx.n > 1]"
