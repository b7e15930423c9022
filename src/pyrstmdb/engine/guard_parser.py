"""Guard expression syntax: the frozen AST, the parser and the canonical printer.

This module owns the text form of guard expressions (SEMANTICS §2 with the project's choices:
text after a complete expression is rejected, string literals decode JSON escapes, and ordering
operators need a number literal). :func:`parse` turns text into an AST and raises only
:class:`GuardSyntaxError`; :func:`to_source` prints an AST as canonical text that parses back to
an equal AST. Node constructors raise ``TypeError`` or ``ValueError`` for trees the grammar cannot
produce, so every node is printable. Evaluation lives in :mod:`pyrstmdb.engine.guard`, which
re-exports every public name of this module.

Grammar (``ws`` is any run of characters for which ``str.isspace()`` holds)::

    guard      = ws or-expr ws                           ; nothing may follow
    or-expr    = and-expr *( ws "||" ws and-expr )
    and-expr   = unary *( ws "&&" ws unary )
    unary      = "!" ws unary / primary
    primary    = "(" ws or-expr ws ")" / comparison
    comparison = path [ ws ( "==" / "!=" ) ws value
                      / ws ( ">=" / "<=" / ">" / "<" ) ws number ]
    path       = "ctx." 1*( letter / digit / "_" / "." )  ; Unicode letters and digits
    value      = "true" / "false" / "null" / string / number
    number     = [ "-" ] *DIGIT [ "." *DIGIT ]           ; at least one digit
    string     = DQUOTE *( char / "\\" escape ) DQUOTE    ; char: anything but DQUOTE and "\\"
    escape     = DQUOTE / "\\" / "/" / "b" / "f" / "n" / "r" / "t" / "u" 4HEXDIG

Tightest first: comparison, ``!``, ``&&``, ``||``; ``&&`` and ``||`` are left-associative, so
``!ctx.a == 1`` is ``!(ctx.a == 1)`` and ``a && b || c`` is ``(a && b) || c``. A number without
``.`` is an ``int``, with one a finite ``float``; ``1e5``, ``+1`` and ``1.2.3`` are not numbers.
String escapes decode as in JSON (a ``\\uD83D\\uDE00`` pair is one character, a lone surrogate
is kept). The path after ``ctx.`` is split on ``.`` (``ctx.a..b`` has the parts a, "", b).
Parentheses and ``!`` together nest at most :data:`MAX_NESTING` deep.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal
from math import isfinite
from typing import TypeAlias, TypeGuard, cast

MAX_NESTING = 64
"""Deepest allowed nesting of parentheses and ``!``; keeps parsing and evaluation shallow."""

EQUALITY_OPS = ("==", "!=")
ORDERING_OPS = (">=", "<=", ">", "<")
COMPARISON_OPS = EQUALITY_OPS + ORDERING_OPS
"""Comparison operators, longest first where one is a prefix of another (scan order)."""

Scalar: TypeAlias = bool | int | float | str | None

_WS = re.compile(r"\s*")  # \s is exactly str.isspace()
_PATH_BODY = re.compile(r"[\w.]*")  # \w is exactly str.isalnum() plus "_"
_SEGMENT = re.compile(r"\w*")
_NUMBER_RUN = re.compile(r"-?[0-9.]*")
_NUMBER = re.compile(r"-?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)")
_STRING_RUN = re.compile(r'[^"\\]*')
_HEX4 = re.compile(r"[0-9A-Fa-f]{4}")
_ESCAPES = {'"': '"', "\\": "\\", "/": "/", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t"}
_KEYWORDS: tuple[tuple[str, Scalar], ...] = (("true", True), ("false", False), ("null", None))


class GuardSyntaxError(Exception):
    """A guard text that is not a valid expression: ``message`` at 0-based ``position``."""

    def __init__(self, message: str, position: int) -> None:
        super().__init__(message, position)
        self.message = message
        self.position = position

    def __str__(self) -> str:
        return f"{self.message} at position {self.position}"


# --- AST -------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Path:
    """``ctx.`` followed by ``parts`` joined with ``.``."""

    parts: tuple[str, ...]

    def __post_init__(self) -> None:
        parts = self.parts
        if not isinstance(parts, tuple) or not parts or parts == ("",):
            raise ValueError(f"a path needs at least one non-empty name, got {parts!r}")
        for part in parts:
            if not isinstance(part, str) or _SEGMENT.fullmatch(part) is None:
                raise ValueError(f"invalid path segment {part!r}")


@dataclass(frozen=True, slots=True, eq=False)
class Literal:
    """A constant; equal to another only with the same type (``1``, ``1.0`` and ``true`` differ)."""

    value: Scalar

    def __post_init__(self) -> None:
        value = self.value
        if value is not None and type(value) not in (bool, int, float, str):
            raise TypeError(f"unsupported literal {value!r}")
        if type(value) is float and not isfinite(value):
            raise ValueError(f"literal numbers must be finite, got {value!r}")

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Literal):
            return NotImplemented
        return type(self.value) is type(other.value) and self.value == other.value

    def __hash__(self) -> int:
        return hash((type(self.value), self.value))


@dataclass(frozen=True, slots=True)
class Truthy:
    """A bare path: true when the value there is truthy."""

    path: Path

    def __post_init__(self) -> None:
        _require(self.path, Path)


@dataclass(frozen=True, slots=True)
class Compare:
    """``path op value``; ordering operators take only number literals."""

    path: Path
    op: str
    value: Literal

    def __post_init__(self) -> None:
        _require(self.path, Path)
        _require(self.value, Literal)
        if self.op not in COMPARISON_OPS:
            raise ValueError(f"unknown comparison operator {self.op!r}")
        if self.op in ORDERING_OPS and not is_number(self.value.value):
            raise ValueError(f"{self.op} needs a number literal, got {self.value.value!r}")


@dataclass(frozen=True, slots=True)
class Not:
    """``!operand``."""

    operand: Node

    def __post_init__(self) -> None:
        _require(self.operand, NODE_TYPES)


class _Chain:
    """Equality, hashing, repr and pickling for ``&&`` and ``||`` nodes.

    A long chain such as ``a && b && ... && z`` is a left-deep tree; these walk its left spine
    in a loop, so they cost no recursion however long the chain is.
    """

    __slots__ = ()

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        return left_spine(cast("And | Or", self)) == left_spine(cast("And | Or", other))

    def __hash__(self) -> int:
        return hash((type(self).__name__, *left_spine(cast("And | Or", self))))

    def __repr__(self) -> str:
        operands = left_spine(cast("And | Or", self))
        text = repr(operands[0])
        for operand in operands[1:]:
            text = f"{type(self).__name__}(left={text}, right={operand!r})"
        return text

    def __reduce__(self) -> tuple[object, tuple[type, tuple[Node, ...]]]:
        return (_rebuild_chain, (type(self), tuple(left_spine(cast("And | Or", self)))))


def _rebuild_chain(kind: type[And | Or], operands: tuple[Node, ...]) -> Node:
    node = operands[0]
    for operand in operands[1:]:
        node = kind(node, operand)
    return node


@dataclass(frozen=True, slots=True, eq=False, repr=False)
class And(_Chain):
    """``left && right``."""

    left: Node
    right: Node

    def __post_init__(self) -> None:
        _require(self.left, NODE_TYPES)
        _require(self.right, NODE_TYPES)


@dataclass(frozen=True, slots=True, eq=False, repr=False)
class Or(_Chain):
    """``left || right``."""

    left: Node
    right: Node

    def __post_init__(self) -> None:
        _require(self.left, NODE_TYPES)
        _require(self.right, NODE_TYPES)


Node: TypeAlias = Truthy | Compare | Not | And | Or
NODE_TYPES = (Truthy, Compare, Not, And, Or)


def _require(value: object, kind: type | tuple[type, ...]) -> None:
    if not isinstance(value, kind):
        raise TypeError(f"expected {kind!r}, got {value!r}")


def is_number(value: object) -> TypeGuard[int | float]:
    """True for ``int`` and ``float`` values (subclasses included) but not for ``bool``."""
    return isinstance(value, int | float) and not isinstance(value, bool)


def left_spine(node: And | Or) -> list[Node]:
    """Operands of a left-associated chain of the node's own type, in source order.

    ``(a && b) && c`` gives ``[a, b, c]``; a right operand of the same type (``a && (b && c)``)
    stays one operand. Iterative, so long chains cost no recursion.
    """
    kind = type(node)
    rights: list[Node] = []
    current: Node = node
    while isinstance(current, And | Or) and type(current) is kind:
        rights.append(current.right)
        current = current.left
    rights.append(current)
    rights.reverse()
    return rights


# --- parser ----------------------------------------------------------------------------------


def parse(text: str) -> Node:
    """Parse a guard expression; raises :class:`GuardSyntaxError` for any invalid text."""
    if not isinstance(text, str):
        raise TypeError(f"guard text must be a str, got {type(text).__name__}")
    return _Parser(text).guard()


class _Parser:
    """Recursive descent over the characters of one guard text."""

    __slots__ = ("_depth", "_pos", "_text")

    def __init__(self, text: str) -> None:
        self._text = text
        self._pos = 0
        self._depth = 0

    def guard(self) -> Node:
        self._skip_ws()
        if self._pos == len(self._text):
            raise GuardSyntaxError("empty guard expression", 0)
        node = self._or_expr()
        self._skip_ws()
        if self._pos < len(self._text):
            raise GuardSyntaxError("unexpected text after expression", self._pos)
        return node

    def _or_expr(self) -> Node:
        node = self._and_expr()
        while self._operator(("||",)):
            node = Or(node, self._and_expr())
        return node

    def _and_expr(self) -> Node:
        node = self._unary()
        while self._operator(("&&",)):
            node = And(node, self._unary())
        return node

    def _unary(self) -> Node:
        self._skip_ws()
        bangs = 0
        while self._peek() == "!":
            self._enter()
            bangs += 1
            self._pos += 1
            self._skip_ws()
        node = self._primary()
        for _ in range(bangs):
            node = Not(node)
        self._depth -= bangs
        return node

    def _primary(self) -> Node:
        if self._peek() != "(":
            return self._comparison()
        self._enter()
        self._pos += 1
        node = self._or_expr()
        self._skip_ws()
        if self._peek() != ")":
            raise GuardSyntaxError("expected ')'", self._pos)
        self._pos += 1
        self._depth -= 1
        return node

    def _comparison(self) -> Node:
        path = self._path()
        op = self._operator(COMPARISON_OPS)
        if op is None:
            return Truthy(path)
        self._skip_ws()
        if op in ORDERING_OPS:
            if not self._at_number():
                raise GuardSyntaxError("ordering comparison needs a number", self._pos)
            return Compare(path, op, Literal(self._number()))
        return Compare(path, op, Literal(self._value()))

    def _path(self) -> Path:
        start = self._pos
        if not self._text.startswith("ctx.", start):
            raise GuardSyntaxError("expected 'ctx.' path", start)
        match = _PATH_BODY.match(self._text, start + 4)
        assert match is not None  # the pattern matches the empty string
        if not match.group():
            raise GuardSyntaxError("expected field name after 'ctx.'", start + 4)
        self._pos = match.end()
        return Path(tuple(match.group().split(".")))

    def _value(self) -> Scalar:
        if self._peek() == '"':
            return self._string()
        if self._at_number():
            return self._number()
        for word, value in _KEYWORDS:
            if self._text.startswith(word, self._pos):
                self._pos += len(word)
                return value
        raise GuardSyntaxError("expected value", self._pos)

    def _at_number(self) -> bool:
        char = self._peek()
        return char != "" and char in "-.0123456789"

    def _number(self) -> int | float:
        start = self._pos
        match = _NUMBER_RUN.match(self._text, start)
        assert match is not None  # the pattern matches the empty string
        digits = match.group()
        if _NUMBER.fullmatch(digits) is None:
            raise GuardSyntaxError("invalid number", start)
        self._pos = match.end()
        if "." in digits:
            number = float(digits)
            if not isfinite(number):
                raise GuardSyntaxError("number out of range", start)
            return number
        try:
            return int(digits)
        except ValueError:  # more digits than the interpreter converts
            raise GuardSyntaxError("number out of range", start) from None

    def _string(self) -> str:
        start = self._pos
        text = self._text
        pos = start + 1
        pieces: list[str] = []
        while True:
            run = _STRING_RUN.match(text, pos)
            assert run is not None  # the pattern matches the empty string
            pieces.append(run.group())
            pos = run.end()
            if pos >= len(text) or (text[pos] == "\\" and pos + 1 == len(text)):
                raise GuardSyntaxError("unterminated string", start)
            if text[pos] == '"':
                self._pos = pos + 1
                return "".join(pieces)
            char, pos = self._escape(pos)
            pieces.append(char)

    def _escape(self, pos: int) -> tuple[str, int]:
        """Decode the escape whose backslash is at ``pos``; return it and the position after."""
        code = self._text[pos + 1]
        if code in _ESCAPES:
            return _ESCAPES[code], pos + 2
        if code != "u":
            raise GuardSyntaxError("invalid escape sequence", pos)
        unit = self._hex4(pos + 2)
        if unit is None:
            raise GuardSyntaxError("invalid \\u escape", pos)
        if 0xD800 <= unit <= 0xDBFF and self._text.startswith("\\u", pos + 6):
            low = self._hex4(pos + 8)
            if low is not None and 0xDC00 <= low <= 0xDFFF:
                return chr(0x10000 + ((unit - 0xD800) << 10) + (low - 0xDC00)), pos + 12
        return chr(unit), pos + 6

    def _hex4(self, pos: int) -> int | None:
        match = _HEX4.match(self._text, pos)
        return None if match is None else int(match.group(), 16)

    def _operator(self, ops: tuple[str, ...]) -> str | None:
        """Consume whitespace and the first of ``ops`` found; consume nothing if none is."""
        start = self._pos
        self._skip_ws()
        for op in ops:
            if self._text.startswith(op, self._pos):
                self._pos += len(op)
                return op
        self._pos = start
        return None

    def _enter(self) -> None:
        self._depth += 1
        if self._depth > MAX_NESTING:
            raise GuardSyntaxError("expression nested too deeply", self._pos)

    def _peek(self) -> str:
        return self._text[self._pos : self._pos + 1]

    def _skip_ws(self) -> None:
        match = _WS.match(self._text, self._pos)
        assert match is not None  # the pattern matches the empty string
        self._pos = match.end()


# --- printer ---------------------------------------------------------------------------------

_SOURCE_ESCAPES = {
    '"': '\\"',
    "\\": "\\\\",
    "\b": "\\b",
    "\f": "\\f",
    "\n": "\\n",
    "\r": "\\r",
    "\t": "\\t",
}
_NEEDS_ESCAPE = re.compile('["\\\\\x00-\x1f\ud800-\udfff]')


def to_source(node: Node) -> str:
    """Canonical text of ``node``: single spaces around operators, minimal parentheses.

    ``parse(to_source(node)) == node`` for every node.
    """
    if isinstance(node, Truthy):
        return path_source(node.path)
    if isinstance(node, Compare):
        return f"{path_source(node.path)} {node.op} {literal_source(node.value.value)}"
    if isinstance(node, Not):
        return "!" + _operand_source(node.operand, (And, Or))
    if isinstance(node, And):
        return " && ".join(_operand_source(x, (And, Or)) for x in left_spine(node))
    if isinstance(node, Or):
        return " || ".join(_operand_source(x, (Or,)) for x in left_spine(node))
    raise TypeError(f"not a guard node: {node!r}")


def _operand_source(node: Node, wrap: tuple[type, ...]) -> str:
    text = to_source(node)
    return f"({text})" if isinstance(node, wrap) else text


def path_source(path: Path) -> str:
    """``ctx.`` followed by the path's parts joined with ``.``."""
    return "ctx." + ".".join(path.parts)


def literal_source(value: Scalar) -> str:
    """Source text of a literal value, e.g. ``null``, ``-0.5``, ``"a\\"b"``."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return '"' + _NEEDS_ESCAPE.sub(_escape_char, value) + '"'
    if isinstance(value, int):
        return str(value)
    text = format(Decimal(repr(value)), "f")  # shortest round-trip digits, no exponent
    return text if "." in text else text + ".0"


def _escape_char(match: re.Match[str]) -> str:
    char = match.group()
    return _SOURCE_ESCAPES.get(char) or f"\\u{ord(char):04x}"
