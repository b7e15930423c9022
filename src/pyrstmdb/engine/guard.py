"""Guard expressions: what they mean against an instance ctx, and their compiled form.

This module owns guard evaluation (SEMANTICS §2). The syntax (grammar, AST nodes, :func:`parse`,
:func:`to_source`, :class:`GuardSyntaxError`) lives in :mod:`pyrstmdb.engine.guard_parser` and is
re-exported here, so callers import everything from this module. :func:`compile_guard` parses
once and builds a :class:`CompiledGuard` whose closures are specialised per node; it raises only
:class:`GuardSyntaxError`. :func:`evaluate` is the plain reference interpreter. Neither a compiled
guard nor :func:`evaluate` raises at evaluation time, whatever ``ctx`` is. Nothing here uses
``eval``.

Grammar (see :mod:`pyrstmdb.engine.guard_parser` for the details)::

    or-expr = and-expr *( "||" and-expr );  and-expr = unary *( "&&" unary )
    unary   = "!" unary / "(" or-expr ")" / path [ op literal ]
    path    = "ctx." name *( "." name );     op = "==" / "!=" / ">" / ">=" / "<" / "<="

Values are JSON-like: ``None``, ``bool``, ``int``, ``float``, ``str``, arrays (``list`` or
``tuple``) and objects (``dict``); subclasses count as their base type. ``bool`` is never a
number. Any other Python object is opaque: falsy and equal to nothing.

==================  ==========================================================================
construct           result
==================  ==========================================================================
``ctx.a.b``         walk objects key by key; a missing key or a non-object step (an array too)
                    gives null
bare path           null false; bool itself; number != 0; string, array, object non-empty
``==``              null/null; bool/bool; string/string exactly; number/number when
                    ``abs(a - b) < 2.220446049250313e-16`` (two ints: exactly); else false
``!=``              ``not ==``
``> >= < <=``       false unless the value is a number, else the exact numeric comparison
==================  ==========================================================================

A missing field therefore makes ``ctx.m`` false, ``!ctx.m`` true, ``ctx.m == null`` true and
``ctx.m > 0`` false. Numbers never overflow: huge ints and inf/nan compare without converting.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeAlias

from pyrstmdb.engine.guard_parser import (
    COMPARISON_OPS,
    EQUALITY_OPS,
    MAX_NESTING,
    NODE_TYPES,
    ORDERING_OPS,
    And,
    Compare,
    GuardSyntaxError,
    Literal,
    Node,
    Not,
    Or,
    Path,
    Scalar,
    Truthy,
    is_number,
    left_spine,
    parse,
    to_source,
)

__all__ = [
    "COMPARISON_OPS",
    "EPSILON",
    "EQUALITY_OPS",
    "MAX_NESTING",
    "ORDERING_OPS",
    "And",
    "Compare",
    "CompiledGuard",
    "GuardSyntaxError",
    "Literal",
    "Node",
    "Not",
    "Or",
    "Path",
    "Scalar",
    "Truthy",
    "compile_guard",
    "evaluate",
    "parse",
    "to_source",
]

EPSILON = 2.220446049250313e-16
"""Two numbers closer than this are equal (``1 == 1.0``)."""

Predicate: TypeAlias = Callable[[Any], bool]
Getter: TypeAlias = Callable[[Any], object]

_ORDERING: dict[str, Callable[[Any, Any], bool]] = {
    ">": operator.gt,
    ">=": operator.ge,
    "<": operator.lt,
    "<=": operator.le,
}


# --- reference interpreter -------------------------------------------------------------------


def evaluate(node: Node, ctx: object) -> bool:
    """Evaluate ``node`` against ``ctx`` by walking the tree; never raises for any ``ctx``."""
    if not isinstance(node, NODE_TYPES):
        raise TypeError(f"not a guard node: {node!r}")
    try:
        return _evaluate(node, ctx)
    except Exception:  # only non-JSON objects whose own methods raise get here
        return False


def _evaluate(node: Node, ctx: object) -> bool:
    if isinstance(node, Truthy):
        return truthy(lookup(ctx, node.path.parts))
    if isinstance(node, Compare):
        return compare(lookup(ctx, node.path.parts), node.op, node.value.value)
    if isinstance(node, Not):
        return not _evaluate(node.operand, ctx)
    if isinstance(node, And):
        return all(_evaluate(operand, ctx) for operand in left_spine(node))
    return any(_evaluate(operand, ctx) for operand in left_spine(node))


def lookup(ctx: object, parts: Sequence[str]) -> object:
    """The value at ``parts`` in ``ctx``; ``None`` when a step is missing or not an object."""
    current = ctx
    for part in parts:
        if not isinstance(current, dict):
            return None
        current = dict.get(current, part)
    return current


def truthy(value: object) -> bool:
    """Truthiness of a JSON-like value."""
    if value is None:
        return False
    if isinstance(value, bool):
        return value
    if is_number(value):
        return bool(value != 0)
    if isinstance(value, str | list | tuple | dict):
        return len(value) > 0
    return False


def equals(value: object, literal: Scalar) -> bool:
    """``value == literal`` in guard terms: same JSON type and equal."""
    if literal is None:
        return value is None
    if isinstance(literal, bool):
        return value is literal
    if isinstance(literal, str):  # by content: a str subclass's own __eq__ is never asked
        return isinstance(value, str) and str.__eq__(value, literal)
    return is_number(value) and numbers_equal(value, literal)


def numbers_equal(a: int | float, b: int | float) -> bool:
    """Numeric equality within :data:`EPSILON`; exact for two ints; never overflows."""
    if isinstance(a, int) and isinstance(b, int):
        return a == b
    try:
        return abs(a - b) < EPSILON
    except OverflowError:  # an int beyond float range is never that close to a float
        return False


def compare(value: object, op: str, literal: Scalar) -> bool:
    """``value op literal`` for any comparison operator."""
    if op == "==":
        return equals(value, literal)
    if op == "!=":
        return not equals(value, literal)
    return is_number(value) and is_number(literal) and _ORDERING[op](value, literal)


# --- compiled form ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CompiledGuard:
    """A guard ready to run: ``guard(ctx) -> bool``; never raises for any ``ctx``.

    ``source`` is the text as written (kept verbatim for the normalized definition); ``ast`` is
    what it parsed to. The closures are built once, when the object is created.
    """

    source: str
    ast: Node = field(repr=False)
    _test: Predicate = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not isinstance(self.ast, NODE_TYPES):
            raise TypeError(f"not a guard node: {self.ast!r}")
        object.__setattr__(self, "_test", _compile(self.ast))

    def __call__(self, ctx: object) -> bool:
        try:
            return self._test(ctx)
        except Exception:  # only non-JSON objects whose own methods raise get here
            return False

    def __reduce__(self) -> tuple[type[CompiledGuard], tuple[str, Node]]:
        return (CompiledGuard, (self.source, self.ast))


def compile_guard(text: str) -> CompiledGuard:
    """Parse and compile ``text``; raises :class:`GuardSyntaxError` if it is not a guard."""
    return CompiledGuard(text, parse(text))


def _compile(node: Node) -> Predicate:
    if isinstance(node, Truthy):
        return _truthy_test(_getter(node.path))
    if isinstance(node, Compare):
        return _compare_test(_getter(node.path), node.op, node.value.value)
    if isinstance(node, Not):
        return _negated(_compile(node.operand))
    tests = [_compile(operand) for operand in _flatten(node)]
    return _all_of(tests) if isinstance(node, And) else _any_of(tests)


def _flatten(node: And | Or) -> list[Node]:
    """Operands of the maximal same-type subtree under ``node``, left to right (iteratively)."""
    kind = type(node)
    operands: list[Node] = []
    stack: list[Node] = [node]
    while stack:
        current = stack.pop()
        if type(current) is kind:
            assert isinstance(current, And | Or)
            stack.append(current.right)
            stack.append(current.left)
        else:
            operands.append(current)
    return operands


def _negated(test: Predicate) -> Predicate:
    def negated(ctx: Any) -> bool:
        return not test(ctx)

    return negated


def _all_of(tests: list[Predicate]) -> Predicate:
    if len(tests) == 2:
        first, second = tests

        def both(ctx: Any) -> bool:
            return first(ctx) and second(ctx)

        return both
    chain = tuple(tests)

    def every(ctx: Any) -> bool:
        return all(test(ctx) for test in chain)

    return every


def _any_of(tests: list[Predicate]) -> Predicate:
    if len(tests) == 2:
        first, second = tests

        def either(ctx: Any) -> bool:
            return first(ctx) or second(ctx)

        return either
    chain = tuple(tests)

    def some(ctx: Any) -> bool:
        return any(test(ctx) for test in chain)

    return some


def _getter(path: Path) -> Getter:
    """A function returning the value at ``path``; plain dicts take a fast path."""
    parts = path.parts
    if len(parts) == 1:
        (key,) = parts

        def get_one(ctx: Any) -> object:
            return ctx.get(key) if type(ctx) is dict else lookup(ctx, parts)

        return get_one
    if len(parts) == 2:
        first, second = parts

        def get_two(ctx: Any) -> object:
            if type(ctx) is dict:
                inner = ctx.get(first)
                if type(inner) is dict:
                    return inner.get(second)
            return lookup(ctx, parts)

        return get_two

    def get_many(ctx: Any) -> object:
        return lookup(ctx, parts)

    return get_many


def _truthy_test(get: Getter) -> Predicate:
    def test(ctx: Any) -> bool:
        value = get(ctx)
        if value is True or value is False:
            return value is True
        return truthy(value)

    return test


def _compare_test(get: Getter, op: str, literal: Scalar) -> Predicate:
    if op in ORDERING_OPS:
        return _ordering_test(get, _ORDERING[op], literal)
    test = _equality_test(get, literal)
    return test if op == "==" else _negated(test)


def _ordering_test(get: Getter, cmp: Callable[[Any, Any], bool], bound: Scalar) -> Predicate:
    def test(ctx: Any) -> bool:
        value = get(ctx)
        kind = type(value)
        if kind is int or kind is float:
            return cmp(value, bound)
        return is_number(value) and cmp(value, bound)

    return test


def _equality_test(get: Getter, literal: Scalar) -> Predicate:
    if literal is None or isinstance(literal, bool):
        return _identity_test(get, literal)
    if isinstance(literal, str):
        return _string_test(get, literal)
    if isinstance(literal, int):
        return _int_test(get, literal)
    return _float_test(get, literal)


def _identity_test(get: Getter, literal: bool | None) -> Predicate:
    def test(ctx: Any) -> bool:
        return get(ctx) is literal

    return test


def _string_test(get: Getter, literal: str) -> Predicate:
    def test(ctx: Any) -> bool:
        value = get(ctx)
        return isinstance(value, str) and str.__eq__(value, literal)

    return test


def _int_test(get: Getter, literal: int) -> Predicate:
    def test(ctx: Any) -> bool:
        value = get(ctx)
        if type(value) is int:
            return bool(value == literal)
        return is_number(value) and numbers_equal(value, literal)

    return test


def _float_test(get: Getter, literal: float) -> Predicate:
    def test(ctx: Any) -> bool:
        value = get(ctx)
        if type(value) is float:
            return abs(value - literal) < EPSILON
        return is_number(value) and numbers_equal(value, literal)

    return test
