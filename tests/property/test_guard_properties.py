"""Guard properties: the parser is total, printing round-trips, compiled equals reference."""

from __future__ import annotations

import json
import math
import re
from collections import OrderedDict
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pyrstmdb.engine.guard import (
    COMPARISON_OPS,
    ORDERING_OPS,
    And,
    Compare,
    CompiledGuard,
    GuardSyntaxError,
    Literal,
    Node,
    Not,
    Or,
    Path,
    Truthy,
    compile_guard,
    evaluate,
    parse,
    to_source,
)
from pyrstmdb.engine.guard_parser import NODE_TYPES

MESSAGES = {
    "empty guard expression",
    "expected 'ctx.' path",
    "expected field name after 'ctx.'",
    "expected ')'",
    "expected value",
    "invalid number",
    "number out of range",
    "ordering comparison needs a number",
    "unterminated string",
    "invalid escape sequence",
    "invalid \\u escape",
    "unexpected text after expression",
    "expression nested too deeply",
}

TOKENS = [
    "ctx.", "ctx.a", "ctx.b.c", "ctx", "ctx..", "a", "é", "_", ".", "(", ")", "!", "&&", "||",
    "&", "|", "==", "!=", ">", ">=", "<", "<=", "=", " ", "  ", "\t", "\n", "\u00a0", '"', '"x"',
    "\\", '\\"', "\\n", "\\u", "\\u00e9", "\\ud83d", "\\ude00", "\\q", "true", "false", "null",
    "True", "0", "1", "42", "-", "-1", ".", ".5", "5.", "1.2.3", "e5", "+", "x", "😀",
]  # fmt: skip


def check_parse(text: str) -> Node | None:
    """Parse ``text``; assert it either yields a valid node or a well-formed GuardSyntaxError."""
    try:
        node = parse(text)
    except GuardSyntaxError as err:
        assert err.message in MESSAGES
        assert 0 <= err.position <= len(text)
        assert str(err) == f"{err.message} at position {err.position}"
        return None
    assert isinstance(node, NODE_TYPES)
    assert parse(to_source(node)) == node
    assert compile_guard(text).ast == node
    return node


@pytest.mark.slow
@given(st.text())
def test_parse_is_total_on_arbitrary_text(text: str) -> None:
    check_parse(text)


@given(st.lists(st.sampled_from(TOKENS), max_size=14).map("".join))
def test_parse_is_total_on_token_soup(text: str) -> None:
    check_parse(text)


@given(st.lists(st.sampled_from(TOKENS), max_size=8).map("".join), st.text(max_size=3))
def test_parse_is_total_after_a_valid_prefix(tail: str, junk: str) -> None:
    check_parse("ctx.a == 1 && " + tail + junk)
    check_parse("(ctx.a || " + tail + junk)


# --- random trees ------------------------------------------------------------------------------

KEYS = ["a", "b", "c", "", "é", "0", "名"]
segments = st.one_of(st.sampled_from(KEYS), st.text("abcxyz_0123éßΩ名٣²", max_size=6))
paths = st.lists(segments, min_size=1, max_size=4).filter(lambda p: p != [""]).map(tuple).map(Path)
numbers = st.one_of(
    st.integers(),
    st.integers(min_value=-(10**400), max_value=10**400),
    st.floats(allow_nan=False, allow_infinity=False),
)
_PAIR = re.compile("[\ud800-\udbff][\udc00-\udfff]")


def _no_surrogate_pair(text: str) -> bool:
    """A high surrogate right before a low one reads back as one character (as in JSON)."""
    return _PAIR.search(text) is None


scalars = st.one_of(
    st.none(),
    st.booleans(),
    numbers,
    st.text(st.characters(exclude_categories=()), max_size=8).filter(_no_surrogate_pair),
    st.text(st.sampled_from('"\\/\b\f\n\r\t\x00\x1f\x7f é😀\ud800\udc00'), max_size=8).filter(
        _no_surrogate_pair
    ),
)


@st.composite
def comparisons(draw: st.DrawFn, path_strategy: st.SearchStrategy[Path]) -> Compare:
    op = draw(st.sampled_from(COMPARISON_OPS))
    value = draw(numbers if op in ORDERING_OPS else scalars)
    return Compare(draw(path_strategy), op, Literal(value))


def trees(path_strategy: st.SearchStrategy[Path]) -> st.SearchStrategy[Node]:
    leaves: st.SearchStrategy[Node] = st.one_of(
        st.builds(Truthy, path_strategy), comparisons(path_strategy)
    )
    return st.recursive(
        leaves,
        lambda children: st.one_of(
            st.builds(Not, children),
            st.builds(And, children, children),
            st.builds(Or, children, children),
        ),
        max_leaves=12,
    )


@given(trees(paths))
def test_to_source_round_trips(tree: Node) -> None:
    source = to_source(tree)
    assert parse(source) == tree
    assert to_source(parse(source)) == source
    source.encode("utf-8")  # canonical text is always encodable (surrogates are escaped)


# --- compiled versus reference ----------------------------------------------------------------

ctx_keys = st.lists(st.sampled_from(KEYS), min_size=1, max_size=3).filter(lambda p: p != [""])
ctx_paths = ctx_keys.map(tuple).map(Path)
ctx_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.sampled_from([0, 1, -1, 2, 0.0, -0.0, 1.0, 0.5, 10**400, -(10**400), 2**53 + 1]),
    st.integers(),
    st.floats(),
    st.sampled_from(["", "a", "b", "true", "1", "null"]),
    st.text(max_size=4),
)
json_values = st.recursive(
    ctx_scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=3),
        st.dictionaries(st.sampled_from(KEYS), children, max_size=4),
        st.dictionaries(st.sampled_from(KEYS), children, max_size=4).map(OrderedDict),
    ),
    max_leaves=16,
)
contexts = st.one_of(
    st.dictionaries(st.sampled_from(KEYS), json_values, max_size=6),
    st.dictionaries(st.sampled_from(KEYS), json_values, max_size=6).map(OrderedDict),
    json_values,
)
# literals drawn from the same small pool as ctx values, so comparisons often hit
hitting_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.sampled_from([0, 1, -1, 2, 0.0, -0.0, 1.0, 0.5, 10**400, -(10**400), 2**53, 1e308]),
    st.sampled_from(["", "a", "b", "true", "1", "null"]),
)


@st.composite
def hitting_comparisons(draw: st.DrawFn) -> Compare:
    op = draw(st.sampled_from(COMPARISON_OPS))
    value = draw(hitting_scalars)
    if op in ORDERING_OPS and (value is None or isinstance(value, bool | str)):
        op = "=="
    return Compare(draw(ctx_paths), op, Literal(value))


hitting_trees = st.recursive(
    st.one_of(st.builds(Truthy, ctx_paths), hitting_comparisons(), comparisons(ctx_paths)),
    lambda children: st.one_of(
        st.builds(Not, children),
        st.builds(And, children, children),
        st.builds(Or, children, children),
    ),
    max_leaves=10,
)


@pytest.mark.slow
@settings(max_examples=400)
@given(hitting_trees, contexts)
def test_compiled_guard_agrees_with_reference(tree: Node, ctx: Any) -> None:
    expected = evaluate(tree, ctx)
    guard = CompiledGuard(to_source(tree), tree)
    assert type(expected) is bool
    assert guard(ctx) is expected
    # the closures themselves must not rely on the safety net for JSON-like values
    assert guard._test(ctx) is expected


@pytest.mark.slow
@given(hitting_trees, contexts)
def test_negation_and_connectives_follow_their_operands(tree: Node, ctx: Any) -> None:
    value = evaluate(tree, ctx)
    assert evaluate(Not(tree), ctx) is (not value)
    other = Truthy(Path(("a",)))
    assert evaluate(And(tree, other), ctx) is (value and evaluate(other, ctx))
    assert evaluate(Or(tree, other), ctx) is (value or evaluate(other, ctx))


@given(hitting_comparisons(), contexts)
def test_not_equal_is_the_negation_of_equal(node: Compare, ctx: Any) -> None:
    if node.op in ("==", "!="):
        eq = evaluate(Compare(node.path, "==", node.value), ctx)
        ne = evaluate(Compare(node.path, "!=", node.value), ctx)
        assert eq is not ne


# --- literals ---------------------------------------------------------------------------------


@given(st.text(st.characters(exclude_categories=())), st.booleans())
def test_string_literals_decode_like_json(value: str, ascii_only: bool) -> None:
    literal = json.dumps(value, ensure_ascii=ascii_only)
    assert parse(f"ctx.s == {literal}") == Compare(Path(("s",)), "==", Literal(value))
    assert json.loads(literal) == value


@given(st.from_regex(r"-?[0-9]{0,6}(\.[0-9]{0,6})?", fullmatch=True))
def test_number_grammar(text: str) -> None:
    has_digit = any(c.isdigit() for c in text)
    try:
        node = parse(f"ctx.n >= {text}")
    except GuardSyntaxError as err:
        assert not has_digit
        reason = "invalid number" if text else "ordering comparison needs a number"
        assert (err.message, err.position) == (reason, 9)
        return
    assert has_digit
    assert isinstance(node, Compare)
    expected = float(text) if "." in text else int(text)
    assert type(node.value.value) is type(expected)
    assert node.value.value == expected


@given(st.floats(allow_nan=False, allow_infinity=False))
def test_every_finite_float_prints_without_exponent(value: float) -> None:
    node = Compare(Path(("x",)), "<", Literal(value))
    source = to_source(node)
    assert "e" not in source and "E" not in source
    parsed = parse(source)
    assert isinstance(parsed, Compare)
    literal = parsed.value.value
    assert isinstance(literal, float)
    assert literal == value and math.copysign(1, literal) == math.copysign(1, value)


@given(st.characters(exclude_categories=()))
def test_path_characters_are_letters_digits_and_underscore(char: str) -> None:
    try:
        node: Node | None = parse(f"ctx.a{char}")
    except GuardSyntaxError:
        node = None
    if char.isalnum() or char == "_":
        assert node == Truthy(Path(("a" + char,)))
    elif char == ".":
        assert node == Truthy(Path(("a", "")))
    else:
        assert node in (None, Truthy(Path(("a",))))
        assert (node is not None) == char.isspace()
