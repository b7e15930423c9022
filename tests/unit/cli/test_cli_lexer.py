"""Splitting REPL entries: shell words, bare JSON kept whole, completeness."""

from __future__ import annotations

import pytest

from pyrstmdb.cli.lexer import is_complete, split_line


@pytest.mark.parametrize(
    ("line", "words"),
    [
        ("get order-1", ["get", "order-1"]),
        ("  apply o-1   PAY  ", ["apply", "o-1", "PAY"]),
        (
            'apply o-1 PAY {"amount": 10, "note": "two words"}',
            ["apply", "o-1", "PAY", '{"amount": 10, "note": "two words"}'],
        ),
        ("apply o-1 PAY '{\"a\": 1}'", ["apply", "o-1", "PAY", '{"a": 1}']),
        ('create m 1 "id with space"', ["create", "m", "1", "id with space"]),
        (
            'pm m 1 {"states": ["a", "b}"], "x": "\\"}"}',
            ["pm", "m", "1", '{"states": ["a", "b}"], "x": "\\"}"}'],
        ),
        ('batch [{"op": "X"}] tail', ["batch", '[{"op": "X"}]', "tail"]),
        ('pm m 1 {\n  "states": []\n}', ["pm", "m", "1", '{\n  "states": []\n}']),
        ("", []),
    ],
)
def test_split_line(line: str, words: list[str]) -> None:
    assert split_line(line) == words
    assert is_complete(line)


@pytest.mark.parametrize(
    "line",
    ['pm m 1 {"states": [', 'apply o PAY {"a": "}', "create m 1 'open", 'get "x'],
)
def test_unfinished_entries(line: str) -> None:
    assert not is_complete(line)


def test_unbalanced_json_cannot_be_split() -> None:
    with pytest.raises(ValueError, match="unbalanced"):
        split_line('apply o PAY {"a": 1')
