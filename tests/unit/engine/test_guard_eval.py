"""Guard evaluation: every row of the semantics table, run through both evaluators."""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

import pytest

from pyrstmdb.engine.guard import compile_guard, evaluate, parse

Evaluator = Callable[[str, object], bool]


def _reference(text: str, ctx: object) -> bool:
    return evaluate(parse(text), ctx)


def _compiled(text: str, ctx: object) -> bool:
    return compile_guard(text)(ctx)


@pytest.fixture(params=[_reference, _compiled], ids=["evaluate", "compiled"])
def run(request: pytest.FixtureRequest) -> Evaluator:
    evaluator: Evaluator = request.param
    return evaluator


def check(run: Evaluator, text: str, ctx: object, expected: bool) -> None:
    result = run(text, ctx)
    assert type(result) is bool
    assert result is expected, (text, ctx)


HUGE = 10**400

# --- paths ------------------------------------------------------------------------------------

PATH_CASES: list[tuple[str, object, bool]] = [
    ("ctx.a == 1", {"a": 1}, True),
    ("ctx.a.b == 1", {"a": {"b": 1}}, True),
    ("ctx.a.b.c == 1", {"a": {"b": {"c": 1}}}, True),
    ("ctx.a.b.c.d == 1", {"a": {"b": {"c": {"d": 1}}}}, True),
    ("ctx.a.b == null", {"a": {}}, True),
    ("ctx.a.b == null", {}, True),
    ("ctx.a.b.c == null", {"a": 5}, True),
    ("ctx.items.length == null", {"items": [1, 2, 3]}, True),
    ("ctx.items.0 == null", {"items": [1, 2, 3]}, True),
    ("ctx.items.0 == 1", {"items": [1, 2, 3]}, False),
    ("ctx.s.x == null", {"s": "text"}, True),
    ("ctx.a..b == 1", {"a": {"": {"b": 1}}}, True),
    ("ctx.a. == 2", {"a": {"": 2}}, True),
    ("ctx.1 == null", {1: "int key"}, True),
    ("ctx.1 == 1", {"1": 1}, True),
    ('ctx.名前 == "値"', {"名前": "値"}, True),
    ("ctx.größe > 2", {"größe": 3}, True),
    ("ctx.a == 1", OrderedDict(a=1), True),
    ("ctx.a", OrderedDict(a=1), True),
    ("ctx.a.b == 1", OrderedDict(a=OrderedDict(b=1)), True),
    ("ctx.a.b.c == 1", OrderedDict(a={"b": OrderedDict(c=1)}), True),
    ("ctx.a.b == 1", {"a": OrderedDict(b=1)}, True),
]


@pytest.mark.parametrize(("text", "ctx", "expected"), PATH_CASES)
def test_path_walk(run: Evaluator, text: str, ctx: object, expected: bool) -> None:
    check(run, text, ctx, expected)


@pytest.mark.parametrize("ctx", [None, [], [{"a": 1}], "a", 5, 1.5, True, (1,), object()])
@pytest.mark.parametrize("parts", ["a", "a.b", "a.b.c"])
def test_ctx_that_is_not_an_object_makes_every_path_null(
    run: Evaluator, ctx: object, parts: str
) -> None:
    check(run, f"ctx.{parts} == null", ctx, True)
    check(run, f"ctx.{parts}", ctx, False)
    check(run, f"!ctx.{parts}", ctx, True)
    check(run, f"ctx.{parts} > 0", ctx, False)


def test_deeply_nested_ctx(run: Evaluator) -> None:
    ctx: dict[str, Any] = {"leaf": 1}
    for _ in range(10_000):
        ctx = {"a": ctx}
    check(run, "ctx.a.a.a.a.a == null", ctx, False)
    check(run, "ctx.a.a.a", ctx, True)
    check(run, "ctx.a" + ".a" * 9_999 + ".leaf == 1", ctx, True)


# --- bare path truthiness ---------------------------------------------------------------------

TRUTHY_CASES: list[tuple[object, bool]] = [
    (None, False),
    (True, True),
    (False, False),
    (0, False),
    (1, True),
    (-1, True),
    (0.0, False),
    (-0.0, False),
    (0.5, True),
    (1e-300, True),
    (math.nan, True),
    (math.inf, True),
    (HUGE, True),
    (-HUGE, True),
    ("", False),
    ("x", True),
    ("false", True),
    ("0", True),
    ([], False),
    ([0], True),
    ([None], True),
    ((), False),
    ((0,), True),
    ({}, False),
    ({"a": None}, True),
    (OrderedDict(), False),
    (object(), False),
    ({1, 2}, False),
    (b"bytes", False),
]


@pytest.mark.parametrize(("value", "expected"), TRUTHY_CASES)
def test_bare_path_truthiness(run: Evaluator, value: object, expected: bool) -> None:
    check(run, "ctx.v", {"v": value}, expected)
    check(run, "!ctx.v", {"v": value}, not expected)
    check(run, "ctx.w.v", {"w": {"v": value}}, expected)


def test_missing_field(run: Evaluator) -> None:
    check(run, "ctx.m", {}, False)
    check(run, "!ctx.m", {}, True)
    check(run, "ctx.m == null", {}, True)
    check(run, "ctx.m != null", {}, False)
    check(run, "ctx.m > 0", {}, False)
    check(run, "ctx.m <= 0", {}, False)
    check(run, "ctx.m != 1", {}, True)
    check(run, "ctx.m == false", {}, False)


# --- equality ---------------------------------------------------------------------------------

EQUALITY_CASES: list[tuple[object, str, bool]] = [
    # null
    (None, "null", True),
    (None, "false", False),
    (None, "0", False),
    (None, '""', False),
    # bool
    (True, "true", True),
    (False, "false", True),
    (True, "false", False),
    (False, "true", False),
    # bool is never a number, in either direction
    (True, "1", False),
    (False, "0", False),
    (True, "1.0", False),
    (1, "true", False),
    (0, "false", False),
    (0.0, "false", False),
    # numbers
    (1, "1", True),
    (1, "1.0", True),
    (1.0, "1", True),
    (1.0, "1.0", True),
    (-3, "-3", True),
    (-0.0, "0", True),
    (0, "-0.0", True),
    (1, "2", False),
    (0.1 + 0.2, "0.3", True),
    (1e-17, "0", True),
    (1e-15, "0", False),
    (1.0000000000000002, "1", False),
    (2**53 + 1, str(2**53), False),
    (HUGE, "1" + "0" * 400, True),
    (HUGE, "1" + "0" * 399, False),
    (HUGE + 1, "1" + "0" * 400, False),
    (HUGE, "1.5", False),
    (-HUGE, "-1.5", False),
    (1e308, "1" + "0" * 400, False),
    (math.inf, "1" + "0" * 400, False),
    (math.inf, "1.5", False),
    (-math.inf, "-1", False),
    (math.nan, "0", False),
    (math.nan, "0.0", False),
    # strings: exact
    ("a", '"a"', True),
    ("a", '"A"', False),
    ("a ", '"a"', False),
    ("", '""', True),
    ("1", "1", False),
    ("true", "true", False),
    ("null", "null", False),
    ('a"b', '"a\\"b"', True),
    ("a\\b", '"a\\\\b"', True),
    ("é", '"\\u00e9"', True),
    ("😀", '"\\ud83d\\ude00"', True),
    ("e\u0301", '"é"', False),
    # containers never equal a literal
    ([], "null", False),
    ([1], "1", False),
    ({}, "null", False),
    ({"a": 1}, '"a"', False),
    ((), "null", False),
    (object(), "null", False),
]


@pytest.mark.parametrize(("value", "literal", "expected"), EQUALITY_CASES)
def test_equality(run: Evaluator, value: object, literal: str, expected: bool) -> None:
    check(run, f"ctx.v == {literal}", {"v": value}, expected)
    check(run, f"ctx.v != {literal}", {"v": value}, not expected)
    check(run, f"ctx.w.v == {literal}", {"w": {"v": value}}, expected)
    check(run, f"ctx.w.x.v == {literal}", {"w": {"x": {"v": value}}}, expected)


def test_missing_equals_only_null(run: Evaluator) -> None:
    for literal in ["false", "0", "0.0", '""', "true", "1"]:
        check(run, f"ctx.m == {literal}", {}, False)
        check(run, f"ctx.m != {literal}", {}, True)


# --- ordering ---------------------------------------------------------------------------------

ORDERING_CASES: list[tuple[object, str, str, bool]] = [
    (150, ">", "100", True),
    (100, ">", "100", False),
    (100, ">=", "100", True),
    (99, "<", "100", True),
    (100, "<=", "100", True),
    (101, "<=", "100", False),
    (100.5, ">", "100", True),
    (100, ">", "99.5", True),
    (100, "<", "100.5", True),
    (-1, "<", "-0.5", True),
    (0.5, ">", ".4", True),
    (5, ">=", "5.", True),
    (2**53 + 1, ">", str(2**53), True),
    (HUGE, ">", "1" + "0" * 399, True),
    (HUGE, ">", "1.5", True),
    (HUGE, "<", "1.5", False),
    (-HUGE, "<", "-1.5", True),
    (HUGE, ">=", "1" + "0" * 400, True),
    (1e308, "<", "1" + "0" * 400, True),
    (math.inf, ">", "1" + "0" * 400, True),
    (-math.inf, "<", "-" + "1" + "0" * 400, True),
    (math.inf, "<", "0", False),
    # never true for anything but a number
    (math.nan, ">", "0", False),
    (math.nan, "<", "0", False),
    (math.nan, ">=", "0", False),
    (math.nan, "<=", "0", False),
    (True, ">", "0", False),
    (True, ">=", "1", False),
    (False, "<", "1", False),
    (False, "<=", "0", False),
    ("5", ">", "1", False),
    ("5", "<", "10", False),
    ("", "<", "1", False),
    (None, "<", "1", False),
    (None, ">=", "0", False),
    ([5], ">", "1", False),
    ({"x": 5}, ">", "1", False),
    ((5,), ">", "1", False),
    (object(), ">", "1", False),
]


@pytest.mark.parametrize(("value", "op", "literal", "expected"), ORDERING_CASES)
def test_ordering(run: Evaluator, value: object, op: str, literal: str, expected: bool) -> None:
    check(run, f"ctx.v {op} {literal}", {"v": value}, expected)
    check(run, f"ctx.w.v {op} {literal}", {"w": {"v": value}}, expected)
    check(run, f"ctx.w.x.v {op} {literal}", {"w": {"x": {"v": value}}}, expected)


def test_subclasses_count_as_their_base_type(run: Evaluator) -> None:
    class Count(int):
        pass

    class Amount(float):
        pass

    class Name(str):
        pass

    class Items(list[int]):
        pass

    check(run, "ctx.v == 3", {"v": Count(3)}, True)
    check(run, "ctx.v > 2", {"v": Count(3)}, True)
    check(run, "ctx.v == 3", {"v": Amount(3.0)}, True)
    check(run, "ctx.v < 2.5", {"v": Amount(2.0)}, True)
    check(run, 'ctx.v == "n"', {"v": Name("n")}, True)
    check(run, "ctx.v", {"v": Items([1])}, True)
    check(run, "ctx.v", {"v": Items()}, False)


# --- connectives ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "ctx", "expected"),
    [
        ("ctx.amount > 100 && ctx.approved", {"amount": 150, "approved": True}, True),
        ("ctx.amount > 100 && ctx.approved", {"amount": 150, "approved": False}, False),
        ("ctx.amount > 100 && ctx.approved", {"amount": 50, "approved": True}, False),
        ("ctx.a || ctx.b", {"a": False, "b": True}, True),
        ("ctx.a || ctx.b", {"a": False, "b": False}, False),
        ("ctx.a && ctx.b || ctx.c", {"c": True}, True),
        ("ctx.a && (ctx.b || ctx.c)", {"c": True}, False),
        ("ctx.a || ctx.b && ctx.c", {"a": True}, True),
        ("(ctx.a || ctx.b) && ctx.c", {"a": True}, False),
        ("!ctx.a == 1", {"a": 1}, False),
        ("!ctx.a == 1", {"a": 2}, True),
        ("!ctx.a && ctx.b", {"b": 1}, True),
        ("!(ctx.a && ctx.b)", {"a": 1, "b": 1}, False),
        ("!!ctx.a", {"a": "x"}, True),
        ("ctx.a && ctx.b && ctx.c", {"a": 1, "b": 1, "c": 1}, True),
        ("ctx.a && ctx.b && ctx.c", {"a": 1, "b": 1, "c": 0}, False),
        ("ctx.a || ctx.b || ctx.c", {"c": 1}, True),
        ("ctx.a || ctx.b || ctx.c", {}, False),
        ("ctx.a && (ctx.b && ctx.c)", {"a": 1, "b": 1, "c": 1}, True),
        ("ctx.a || (ctx.b || ctx.c)", {"b": 1}, True),
        ("ctx.a && ctx.b && ctx.c && ctx.d", {"a": 1, "b": 1, "c": 1, "d": 1}, True),
        ("ctx.a || ctx.b || ctx.c || ctx.d", {"d": 1}, True),
        ('ctx.status == "open" && ctx.n >= 2 || ctx.vip', {"status": "open", "n": 2}, True),
        ('ctx.status == "open" && ctx.n >= 2 || ctx.vip', {"status": "shut", "vip": 1}, True),
        ('ctx.status == "open" && ctx.n >= 2 || ctx.vip', {"status": "shut", "n": 5}, False),
    ],
)
def test_connectives(run: Evaluator, text: str, ctx: object, expected: bool) -> None:
    check(run, text, ctx, expected)


def test_long_chains(run: Evaluator) -> None:
    ands = " && ".join(f"ctx.f{i} == {i}" for i in range(3000))
    full = {f"f{i}": i for i in range(3000)}
    check(run, ands, full, True)
    check(run, ands, {**full, "f2999": 0}, False)
    ors = " || ".join(f"ctx.f{i}" for i in range(3000))
    check(run, ors, {"f2999": True}, True)
    check(run, ors, {}, False)


# --- evaluation never raises ------------------------------------------------------------------


class _Hostile(str):
    def __eq__(self, other: object) -> bool:
        raise RuntimeError("no comparing")

    __hash__ = str.__hash__


class _BadList(list[int]):
    def __len__(self) -> int:
        raise RuntimeError("no length")


class _BadInt(int):
    def __gt__(self, other: object) -> bool:
        raise RuntimeError("no ordering")


@pytest.mark.parametrize(
    ("text", "ctx"),
    [
        ("ctx.v", {"v": _BadList([1])}),
        ("ctx.v > 1", {"v": _BadInt(5)}),
    ],
)
def test_values_whose_methods_raise_make_the_guard_false(
    run: Evaluator, text: str, ctx: object
) -> None:
    check(run, text, ctx, False)


def test_strings_compare_by_content_whatever_their_class(run: Evaluator) -> None:
    # Compiled or not, a str subclass is compared as the string it holds; its own
    # (here raising) __eq__ is never consulted.
    check(run, 'ctx.v == "x"', {"v": _Hostile("x")}, True)
    check(run, 'ctx.v != "x"', {"v": _Hostile("x")}, False)
    check(run, 'ctx.v == "y"', {"v": _Hostile("x")}, False)


def test_evaluate_refuses_non_nodes() -> None:
    with pytest.raises(TypeError):
        evaluate("ctx.a", {})  # type: ignore[arg-type]
