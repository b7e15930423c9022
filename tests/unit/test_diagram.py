"""Diagram export: Mermaid and Graphviz DOT text of a definition."""

from __future__ import annotations

import re

import pytest

from pyrstmdb import diagram

ORDER = {
    "states": ["created", "paid", "shipped", "cancelled"],
    "initial": "created",
    "transitions": [
        {"from": ["created"], "event": "PAY", "to": "paid", "guard": "ctx.amount > 0"},
        {"from": ["paid"], "event": "SHIP", "to": "shipped"},
        {"from": ["created", "paid"], "event": "CANCEL", "to": "cancelled"},
    ],
}


def test_mermaid_nodes_initial_and_labelled_edges() -> None:
    text = diagram.to_mermaid(ORDER)
    lines = text.splitlines()
    assert lines[0] == "stateDiagram-v2"
    assert [line.strip() for line in lines if line.strip().startswith("state ")] == [
        'state "created" as s0',
        'state "paid" as s1',
        'state "shipped" as s2',
        'state "cancelled" as s3',
    ]
    assert "    [*] --> s0" in lines
    edges = [line.strip() for line in lines if re.match(r"\s+s\d+ --> ", line)]
    assert edges == [
        "s0 --> s1: PAY [ctx.amount #62; 0]",
        "s1 --> s2: SHIP",
        "s0 --> s3: CANCEL",
        "s1 --> s3: CANCEL",
    ]


def test_dot_nodes_initial_and_labelled_edges() -> None:
    text = diagram.to_dot(ORDER, "order v1")
    assert text.startswith('digraph "order v1" {\n') and text.endswith("}\n")
    assert '    s0 [label="created", peripheries=2];' in text
    assert '    s1 [label="paid"];' in text
    assert "    __start -> s0;" in text
    assert '    s0 -> s1 [label="PAY [ctx.amount > 0]"];' in text
    assert text.count(" -> ") == 1 + 4


def test_hostile_names_are_escaped() -> None:
    nasty = 'a"b\\c\nd;e:f#g{h}<i>|j%k'
    definition = {
        "states": [nasty, "x"],
        "initial": nasty,
        "transitions": [{"from": [nasty], "event": 'E"1;', "to": "x", "guard": 'ctx.s == "}"'}],
    }
    mermaid = diagram.to_mermaid(definition)
    body = mermaid.splitlines()[1:]
    assert len(body) == 4  # two states, the initial arrow, one edge: no line was split
    assert (
        body[0]
        == '    state "a#34;b#92;c#10;d#59;e#58;f#35;g#123;h#125;#60;i#62;#124;j#37;k" as s0'
    )
    assert body[3] == "    s0 --> s1: E#34;1#59; [ctx.s == #34;#125;#34;]"
    dot = diagram.to_dot(definition, 'm"1')
    assert 'digraph "m\\"1" {' in dot
    assert 's0 [label="a\\"b\\\\c\\nd;e:f#g{h}<i>|j%k", peripheries=2];' in dot
    assert 's0 -> s1 [label="E\\"1; [ctx.s == \\"}\\"]"];' in dot
    assert len(dot.splitlines()) == 9


def test_render_picks_the_format() -> None:
    assert diagram.render(ORDER, "mermaid") == diagram.to_mermaid(ORDER)
    assert diagram.render(ORDER, "dot", "n") == diagram.to_dot(ORDER, "n")
    with pytest.raises(ValueError, match="png"):
        diagram.render(ORDER, "png")
    assert diagram.FORMATS == {"mermaid": "text/vnd.mermaid", "dot": "text/vnd.graphviz"}
