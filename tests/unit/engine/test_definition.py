"""Definition validation, normalization and checksum (SEMANTICS §1)."""

from __future__ import annotations

from typing import Any

import pytest

from pyrstmdb.engine.definition import canonical_json, compile_definition
from pyrstmdb.errors import BadRequest, ErrorCode


def test_spec_checksum_vector_two_states() -> None:
    definition = {
        "states": ["a", "b"],
        "initial": "a",
        "transitions": [{"from": "a", "event": "GO", "to": "b"}],
    }
    compiled = compile_definition("m", 1, definition)
    assert canonical_json(compiled.normalized) == (
        '{"states":["a","b"],"initial":"a","transitions":[{"from":["a"],"event":"GO","to":"b"}]}'
    )
    assert compiled.checksum == "9e3329effd3389276d23cf3dd6610ee186587669ef6fd2aef9e0b92d4ff25905"


def test_spec_checksum_vector_order_machine(order_machine: dict[str, Any]) -> None:
    compiled = compile_definition("order", 1, order_machine)
    assert compiled.checksum == "8b8e30dfff53671ff7da3e076a0d17909284bcb1d4dc027caf7f29cac56b4e53"


def test_key_order_does_not_change_checksum(order_machine: dict[str, Any]) -> None:
    shuffled = {
        "transitions": [dict(reversed(list(t.items()))) for t in order_machine["transitions"]],
        "initial": "created",
        "states": order_machine["states"],
    }
    a = compile_definition("order", 1, order_machine)
    b = compile_definition("order", 1, shuffled)
    assert a.checksum == b.checksum


def test_normalized_form_orders_keys_and_drops_unknown() -> None:
    definition = {
        "meta": {"z": 1, "a": {"y": 2, "b": 3}},
        "extra": True,
        "transitions": [{"guard": "ctx.x", "to": "b", "event": "E", "from": "a", "note": "n"}],
        "initial": "a",
        "states": ["a", "b", "a"],
    }
    compiled = compile_definition("m", 0, definition)
    assert list(compiled.normalized) == ["states", "initial", "transitions", "meta"]
    assert compiled.normalized["states"] == ["a", "b", "a"]  # order and duplicates kept
    assert list(compiled.normalized["transitions"][0]) == ["from", "event", "to", "guard"]
    assert compiled.normalized["transitions"][0]["from"] == ["a"]
    assert canonical_json(compiled.normalized).endswith('"meta":{"a":{"b":3,"y":2},"z":1}}')
    assert compiled.definition is definition  # stored as received


def test_null_meta_and_null_guard_are_absent() -> None:
    definition = {
        "states": ["a"],
        "initial": "a",
        "transitions": [{"from": "a", "event": "E", "to": "a", "guard": None}],
        "meta": None,
    }
    normalized = compile_definition("m", 1, definition).normalized
    assert "meta" not in normalized
    assert "guard" not in normalized["transitions"][0]


def test_unicode_is_raw_and_controls_escaped() -> None:
    definition = {"states": ["é", "b\n"], "initial": "é", "transitions": []}
    text = canonical_json(compile_definition("m", 1, definition).normalized)
    assert '"é"' in text
    assert '"b\\n"' in text


def test_float_in_meta_keeps_shortest_form() -> None:
    definition = {"states": ["a"], "initial": "a", "transitions": [], "meta": {"x": 1.0}}
    assert canonical_json(compile_definition("m", 1, definition).normalized).endswith(
        '"meta":{"x":1.0}}'
    )


def test_empty_from_list_never_fires() -> None:
    definition = {
        "states": ["a", "b"],
        "initial": "a",
        "transitions": [{"from": [], "event": "E", "to": "b"}],
    }
    compiled = compile_definition("m", 1, definition)
    assert compiled.table == {}


def test_duplicate_pairs_are_kept_in_definition_order() -> None:
    definition = {
        "states": ["p", "small", "big"],
        "initial": "p",
        "transitions": [
            {"from": "p", "event": "GO", "to": "small", "guard": "ctx.n < 10"},
            {"from": "p", "event": "GO", "to": "big"},
        ],
    }
    compiled = compile_definition("m", 1, definition)
    assert [t.target for t in compiled.table[("p", "GO")]] == ["small", "big"]


@pytest.mark.parametrize(
    ("definition", "fragment"),
    [
        ([], "definition must be a JSON object"),
        ({"initial": "a", "transitions": []}, "missing field 'states'"),
        ({"states": ["a"], "transitions": []}, "missing field 'initial'"),
        ({"states": ["a"], "initial": "a"}, "missing field 'transitions'"),
        ({"states": "a", "initial": "a", "transitions": []}, "'states' must be an array"),
        ({"states": [1], "initial": "a", "transitions": []}, "'states' must be an array"),
        ({"states": ["a"], "initial": 1, "transitions": []}, "'initial' must be a string"),
        ({"states": ["a"], "initial": "a", "transitions": {}}, "'transitions' must be an array"),
        ({"states": [], "initial": "a", "transitions": []}, "initial state 'a' not in states"),
        ({"states": ["a"], "initial": "x", "transitions": []}, "initial state 'x' not in states"),
        ({"states": ["a"], "initial": "a", "transitions": [3]}, "transition 0 must be an object"),
        (
            {"states": ["a"], "initial": "a", "transitions": [{"from": "a", "to": "a"}]},
            "transition 0 is missing field 'event'",
        ),
        (
            {
                "states": ["a"],
                "initial": "a",
                "transitions": [{"from": 5, "event": "E", "to": "a"}],
            },
            "transition 0 'from' must be an array of strings",
        ),
        (
            {
                "states": ["a"],
                "initial": "a",
                "transitions": [{"from": "a", "event": 5, "to": "a"}],
            },
            "transition 0 'event' must be a string",
        ),
        (
            {
                "states": ["a"],
                "initial": "a",
                "transitions": [{"from": "a", "event": "E", "to": "a", "guard": 1}],
            },
            "transition 0 'guard' must be a string",
        ),
        (
            {
                "states": ["a"],
                "initial": "a",
                "transitions": [{"from": "a", "event": "E", "to": "zz"}],
            },
            "transition target 'zz' not in states list",
        ),
        (
            {
                "states": ["a"],
                "initial": "a",
                "transitions": [{"from": "zz", "event": "E", "to": "a"}],
            },
            "transition source 'zz' not in states list",
        ),
    ],
)
def test_validation_errors(definition: Any, fragment: str) -> None:
    with pytest.raises(BadRequest) as info:
        compile_definition("m", 1, definition)
    assert info.value.code is ErrorCode.BAD_REQUEST
    assert fragment in info.value.message
    assert info.value.message.startswith("invalid machine definition: ")


def test_first_failure_wins_target_before_guard_before_source() -> None:
    definition = {
        "states": ["a"],
        "initial": "a",
        "transitions": [{"from": "zz", "event": "E", "to": "yy", "guard": "bad"}],
    }
    with pytest.raises(BadRequest, match="target 'yy'"):
        compile_definition("m", 1, definition)
    definition["transitions"][0]["to"] = "a"
    with pytest.raises(BadRequest, match="invalid guard expression"):
        compile_definition("m", 1, definition)
    definition["transitions"][0]["guard"] = "ctx.ok"
    with pytest.raises(BadRequest, match="source 'zz'"):
        compile_definition("m", 1, definition)


def test_guard_error_names_transition_and_position() -> None:
    definition = {
        "states": ["a", "b"],
        "initial": "a",
        "transitions": [
            {"from": "a", "event": "OK", "to": "b"},
            {"from": "a", "event": "GO", "to": "b", "guard": "ctx.a & ctx.b"},
        ],
    }
    with pytest.raises(BadRequest) as info:
        compile_definition("m", 1, definition)
    err = info.value
    assert "transition 1 (a -GO-> b)" in err.message
    assert "position 6" in err.message
    assert err.details["transition"] == 1
    assert err.details["position"] == 6


def test_ordering_against_string_is_a_definition_error() -> None:
    definition = {
        "states": ["a"],
        "initial": "a",
        "transitions": [{"from": "a", "event": "E", "to": "a", "guard": 'ctx.a > "x"'}],
    }
    with pytest.raises(BadRequest, match="invalid guard expression"):
        compile_definition("m", 1, definition)
