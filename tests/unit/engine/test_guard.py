"""Guard syntax: parsing, precedence, literals, escapes, definition errors and canonical text."""

from __future__ import annotations

import copy
import pickle

import pytest

from pyrstmdb.engine.guard import (
    MAX_NESTING,
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
    parse,
    to_source,
)


def t(*parts: str) -> Truthy:
    return Truthy(Path(parts))


def cmp(name: str, op: str, value: bool | int | float | str | None) -> Compare:
    return Compare(Path((name,)), op, Literal(value))


A, B, C, D = t("a"), t("b"), t("c"), t("d")


# --- paths ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "parts"),
    [
        ("ctx.a", ("a",)),
        ("ctx.amount", ("amount",)),
        ("ctx.a.b.c", ("a", "b", "c")),
        ("ctx.user_id", ("user_id",)),
        ("ctx._", ("_",)),
        ("ctx.0", ("0",)),
        ("ctx.a1.2b", ("a1", "2b")),
        ("ctx.a..b", ("a", "", "b")),
        ("ctx.a.", ("a", "")),
        ("ctx..", ("", "")),
        ("ctx..a", ("", "a")),
        ("ctx.true", ("true",)),
        ("ctx.ctx", ("ctx",)),
        ("ctx.größe", ("größe",)),
        ("ctx.名前.値", ("名前", "値")),
        ("ctx.Ωmega", ("Ωmega",)),
        ("ctx.x²", ("x²",)),
        ("ctx.٣", ("٣",)),
    ],
)
def test_bare_path(text: str, parts: tuple[str, ...]) -> None:
    assert parse(text) == Truthy(Path(parts))


@pytest.mark.parametrize(
    "ws", [" ", "\t", "\n", "\r", "\x0b", "\x0c", "\u00a0", "\u2003", "\u3000"]
)
def test_any_unicode_whitespace_separates_tokens(ws: str) -> None:
    text = f"{ws}!{ws}({ws}ctx.a{ws}=={ws}1{ws}&&{ws}ctx.b{ws}){ws}||{ws}ctx.c{ws}"
    assert parse(text) == Or(Not(And(cmp("a", "==", 1), B)), C)


def test_no_whitespace_needed() -> None:
    assert parse('!(ctx.a>=1&&ctx.b!="x")||ctx.c') == Or(
        Not(And(cmp("a", ">=", 1), cmp("b", "!=", "x"))), C
    )


# --- comparisons and literals -----------------------------------------------------------------


@pytest.mark.parametrize("op", ["==", "!=", ">", ">=", "<", "<="])
def test_every_operator(op: str) -> None:
    assert parse(f"ctx.n {op} 5") == cmp("n", op, 5)


@pytest.mark.parametrize(
    ("literal", "value"),
    [
        ("true", True),
        ("false", False),
        ("null", None),
        ("0", 0),
        ("-0", 0),
        ("42", 42),
        ("007", 7),
        ("-17", -17),
        ("1.5", 1.5),
        ("5.", 5.0),
        (".5", 0.5),
        ("-.5", -0.5),
        ("-2.25", -2.25),
        ("0.0", 0.0),
        ("123456789012345678901234567890", 123456789012345678901234567890),
        ("-1" + "0" * 400, -(10**400)),
        ('""', ""),
        ('"approved"', "approved"),
        ('"a b  c"', "a b  c"),
        ('"ctx.a == 1 && x"', "ctx.a == 1 && x"),
        ('"é 名前 😀"', "é 名前 😀"),
        ('"line\nbreak"', "line\nbreak"),
    ],
)
def test_equality_literals(literal: str, value: bool | int | float | str | None) -> None:
    node = parse(f"ctx.v == {literal}")
    assert node == cmp("v", "==", value)
    assert isinstance(node, Compare)
    assert type(node.value.value) is type(value)


def test_integer_literals_stay_int_and_decimals_become_float() -> None:
    for text, kind in [("1", int), ("1.0", float), ("1.", float), ("-0", int), ("-0.0", float)]:
        node = parse(f"ctx.v > {text}")
        assert isinstance(node, Compare)
        assert type(node.value.value) is kind, text


def test_literal_equality_distinguishes_types() -> None:
    assert Literal(1) != Literal(1.0)
    assert Literal(1) != Literal(True)
    assert Literal(0) != Literal(False)
    assert Literal(None) != Literal(0)
    assert Literal(1) == Literal(1)
    assert hash(Literal(1)) == hash(Literal(1))
    assert parse("ctx.a == 1") != parse("ctx.a == 1.0")
    assert parse("ctx.a == 1") != parse("ctx.a == true")


# --- string escapes ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("escaped", "decoded"),
    [
        (r"a\"b", 'a"b'),
        (r"a\\b", "a\\b"),
        (r"a\/b", "a/b"),
        (r"\b\f\n\r\t", "\b\f\n\r\t"),
        (r"\u0041", "A"),
        (r"\u00e9\u00E9", "éé"),
        (r"\u540d", "名"),
        (r"\ud83d\ude00", "😀"),
        (r"\uD83D\uDE00x", "😀x"),
        (r"\ud800", "\ud800"),
        (r"\ud800\u0041", "\ud800A"),
        (r"\udc00\ud800", "\udc00\ud800"),
        (r"\\\"", '\\"'),
        (r"\\n", "\\n"),
        (r"\u0000", "\x00"),
    ],
)
def test_string_escapes_decode_like_json(escaped: str, decoded: str) -> None:
    assert parse(f'ctx.s == "{escaped}"') == cmp("s", "==", decoded)


# --- precedence and associativity -------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "tree"),
    [
        ("ctx.a && ctx.b || ctx.c", Or(And(A, B), C)),
        ("ctx.a || ctx.b && ctx.c", Or(A, And(B, C))),
        ("ctx.a || ctx.b && ctx.c || ctx.d", Or(Or(A, And(B, C)), D)),
        ("ctx.a && ctx.b && ctx.c", And(And(A, B), C)),
        ("ctx.a || ctx.b || ctx.c", Or(Or(A, B), C)),
        ("ctx.a && (ctx.b || ctx.c)", And(A, Or(B, C))),
        ("(ctx.a || ctx.b) && ctx.c", And(Or(A, B), C)),
        ("ctx.a && (ctx.b && ctx.c)", And(A, And(B, C))),
        ("!ctx.a", Not(A)),
        ("!!ctx.a", Not(Not(A))),
        ("! ! ctx.a", Not(Not(A))),
        ("!ctx.a == 1", Not(cmp("a", "==", 1))),
        ("!ctx.a > 1", Not(cmp("a", ">", 1))),
        ("!ctx.a && ctx.b", And(Not(A), B)),
        ("!ctx.a || ctx.b", Or(Not(A), B)),
        ("!(ctx.a || ctx.b)", Not(Or(A, B))),
        ("ctx.a && !ctx.b", And(A, Not(B))),
        ("((ctx.a))", A),
        ("(ctx.a == 1)", cmp("a", "==", 1)),
        ("ctx.a == 1 && ctx.b != null", And(cmp("a", "==", 1), cmp("b", "!=", None))),
    ],
)
def test_precedence(text: str, tree: Node) -> None:
    assert parse(text) == tree


def test_long_chain_is_left_associative() -> None:
    names = [f"f{i}" for i in range(500)]
    tree = parse(" || ".join(f"ctx.{n}" for n in names))
    for name in reversed(names[1:]):
        assert isinstance(tree, Or)
        assert tree.right == t(name)
        tree = tree.left
    assert tree == t("f0")


def test_nesting_up_to_the_limit_parses() -> None:
    depth = MAX_NESTING
    assert parse("(" * depth + "ctx.a" + ")" * depth) == A
    bangs = parse("!" * depth + "ctx.a")
    for _ in range(depth):
        assert isinstance(bangs, Not)
        bangs = bangs.operand
    assert bangs == A
    half = depth // 2
    assert parse("!(" * half + "ctx.a" + ")" * half) is not None


# --- definition errors ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "message", "position"),
    [
        ("", "empty guard expression", 0),
        ("   ", "empty guard expression", 0),
        ("\n\t", "empty guard expression", 0),
        ("a", "expected 'ctx.' path", 0),
        ("amount > 1", "expected 'ctx.' path", 0),
        ("  foo", "expected 'ctx.' path", 2),
        ("ctx", "expected 'ctx.' path", 0),
        ("ctx a", "expected 'ctx.' path", 0),
        ("CTX.a", "expected 'ctx.' path", 0),
        ("ctxa.b", "expected 'ctx.' path", 0),
        ("true", "expected 'ctx.' path", 0),
        ("1 == ctx.a", "expected 'ctx.' path", 0),
        ('"x" == ctx.a', "expected 'ctx.' path", 0),
        ("ctx.", "expected field name after 'ctx.'", 4),
        ("ctx. a", "expected field name after 'ctx.'", 4),
        ("ctx.-a", "expected field name after 'ctx.'", 4),
        ("ctx.a && ctx.", "expected field name after 'ctx.'", 13),
        ("ctx.a &&", "expected 'ctx.' path", 8),
        ("ctx.a && ", "expected 'ctx.' path", 9),
        ("ctx.a ||", "expected 'ctx.' path", 8),
        ("ctx.a && || ctx.b", "expected 'ctx.' path", 9),
        ("ctx.a &&& ctx.b", "expected 'ctx.' path", 8),
        ("!", "expected 'ctx.' path", 1),
        ("!=ctx.a", "expected 'ctx.' path", 1),
        ("()", "expected 'ctx.' path", 1),
        ("(ctx.a", "expected ')'", 6),
        ("((ctx.a)", "expected ')'", 8),
        ("(ctx.a ctx.b)", "expected ')'", 7),
        ("(ctx.a == 1", "expected ')'", 11),
        ("ctx.a)", "unexpected text after expression", 5),
        ("ctx.a & ctx.b", "unexpected text after expression", 6),
        ("ctx.a | ctx.b", "unexpected text after expression", 6),
        ("ctx.a and ctx.b", "unexpected text after expression", 6),
        ("ctx.a ctx.b", "unexpected text after expression", 6),
        ("ctx.a = 1", "unexpected text after expression", 6),
        ("ctx.a === 1", "expected value", 8),
        ("ctx.a => 1", "unexpected text after expression", 6),
        ("ctx.a-b", "unexpected text after expression", 5),
        ("ctx.a !ctx.b", "unexpected text after expression", 6),
        ("ctx.n == 1e5", "unexpected text after expression", 10),
        ("ctx.n == 1E5", "unexpected text after expression", 10),
        ("ctx.a == trueish", "unexpected text after expression", 13),
        ("ctx.a == nullx", "unexpected text after expression", 13),
        ("ctx.a == 1 2", "unexpected text after expression", 11),
        ('ctx.a == "x" "y"', "unexpected text after expression", 13),
        ("ctx.a == 1)", "unexpected text after expression", 10),
        ("ctx.a == ", "expected value", 9),
        ("ctx.a ==", "expected value", 8),
        ("ctx.a != ctx.b", "expected value", 9),
        ("ctx.a == True", "expected value", 9),
        ("ctx.a == NULL", "expected value", 9),
        ("ctx.a == 'x'", "expected value", 9),
        ("ctx.a == +1", "expected value", 9),
        ("ctx.a == ١", "expected value", 9),
        ("ctx.a == -", "invalid number", 9),
        ("ctx.a == .", "invalid number", 9),
        ("ctx.a == -.", "invalid number", 9),
        ("ctx.a == --1", "invalid number", 9),
        ("ctx.a == 1.2.3", "invalid number", 9),
        ("ctx.a == 1..", "invalid number", 9),
        ("ctx.a >= - 1", "invalid number", 9),
        ("ctx.a == 1" + "0" * 400 + ".5", "number out of range", 9),
        ("ctx.a == 1" + "0" * 5000, "number out of range", 9),
        ('ctx.a > "x"', "ordering comparison needs a number", 8),
        ("ctx.a >= true", "ordering comparison needs a number", 9),
        ("ctx.a < null", "ordering comparison needs a number", 8),
        ("ctx.a <= false", "ordering comparison needs a number", 9),
        ("ctx.a > ctx.b", "ordering comparison needs a number", 8),
        ("ctx.a >", "ordering comparison needs a number", 7),
        ('ctx.a == "abc', "unterminated string", 9),
        ('ctx.a == "', "unterminated string", 9),
        ('ctx.a == "abc\\"', "unterminated string", 9),
        ('ctx.a == "abc\\', "unterminated string", 9),
        ('ctx.a == "a\\qb"', "invalid escape sequence", 11),
        ('ctx.a == "\\x41"', "invalid escape sequence", 10),
        ('ctx.a == "\\U0041"', "invalid escape sequence", 10),
        ('ctx.a == "\\\'"', "invalid escape sequence", 10),
        ('ctx.a == "\\u12"', "invalid \\u escape", 10),
        ('ctx.a == "\\u12g4"', "invalid \\u escape", 10),
        ('ctx.a == "\\u"', "invalid \\u escape", 10),
        ('ctx.a == "\\u1_23"', "invalid \\u escape", 10),
        ('ctx.a == "\\ud83d\\u12"', "invalid \\u escape", 16),
        (
            "(" * (MAX_NESTING + 1) + "ctx.a" + ")" * (MAX_NESTING + 1),
            "expression nested too deeply",
            MAX_NESTING,
        ),
        ("!" * (MAX_NESTING + 1) + "ctx.a", "expression nested too deeply", MAX_NESTING),
        ("(" * 100_000, "expression nested too deeply", MAX_NESTING),
    ],
)
def test_definition_errors(text: str, message: str, position: int) -> None:
    with pytest.raises(GuardSyntaxError) as info:
        parse(text)
    assert info.value.message == message
    assert info.value.position == position
    assert str(info.value) == f"{message} at position {position}"


def test_compile_guard_raises_the_same_error() -> None:
    with pytest.raises(GuardSyntaxError) as info:
        compile_guard("ctx.a == 1 junk")
    assert (info.value.message, info.value.position) == ("unexpected text after expression", 11)


def test_guard_syntax_error_is_picklable() -> None:
    err = pickle.loads(pickle.dumps(GuardSyntaxError("expected ')'", 6)))
    assert (err.message, err.position, str(err)) == (
        "expected ')'",
        6,
        "expected ')' at position 6",
    )


def test_parse_rejects_non_text() -> None:
    with pytest.raises(TypeError):
        parse(b"ctx.a")  # type: ignore[arg-type]


# --- node validation --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "build",
    [
        lambda: Path(()),
        lambda: Path(("",)),
        lambda: Path(("a.b",)),
        lambda: Path(("a b",)),
        lambda: Path(["a"]),  # type: ignore[arg-type]
        lambda: Literal(float("inf")),
        lambda: Literal(float("nan")),
        lambda: Literal([1]),  # type: ignore[arg-type]
        lambda: Compare(Path(("a",)), "=", Literal(1)),
        lambda: Compare(Path(("a",)), ">", Literal("x")),
        lambda: Compare(Path(("a",)), "<", Literal(True)),
        lambda: Compare(Path(("a",)), ">=", Literal(None)),
        lambda: Not(Path(("a",))),  # type: ignore[arg-type]
        lambda: And(A, "ctx.b"),  # type: ignore[arg-type]
        lambda: Or(None, A),  # type: ignore[arg-type]
        lambda: Truthy(("a",)),  # type: ignore[arg-type]
    ],
)
def test_nodes_the_grammar_cannot_produce_are_refused(build: object) -> None:
    with pytest.raises((TypeError, ValueError)):
        build()  # type: ignore[operator]


# --- canonical text ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "canonical"),
    [
        ("ctx.a", "ctx.a"),
        ("  ctx.a.b  ", "ctx.a.b"),
        ("ctx.a..b", "ctx.a..b"),
        ("ctx.a==1", "ctx.a == 1"),
        ("ctx.a==007", "ctx.a == 7"),
        ("ctx.a == -0", "ctx.a == 0"),
        ("ctx.a == -0.0", "ctx.a == -0.0"),
        ("ctx.a>5.", "ctx.a > 5.0"),
        ("ctx.a>.5", "ctx.a > 0.5"),
        ("ctx.a < 0.00001", "ctx.a < 0.00001"),
        ("ctx.a < 10000000000000000.0", "ctx.a < 10000000000000000.0"),
        ("ctx.a!=null", "ctx.a != null"),
        ("ctx.a == true", "ctx.a == true"),
        ('ctx.a == "\\u0041\\/"', 'ctx.a == "A/"'),
        ('ctx.a == "q\\"b\\\\s"', 'ctx.a == "q\\"b\\\\s"'),
        ('ctx.a == "\\b\\f\\n\\r\\t\\u0001\\u007f"', 'ctx.a == "\\b\\f\\n\\r\\t\\u0001\x7f"'),
        ('ctx.a == "\x08\x0c\x1f"', 'ctx.a == "\\b\\f\\u001f"'),
        ('ctx.a == "\\ud800"', 'ctx.a == "\\ud800"'),
        ('ctx.a == "😀"', 'ctx.a == "😀"'),
        ("((ctx.a))&&(ctx.b)", "ctx.a && ctx.b"),
        ("(ctx.a && ctx.b) || ctx.c", "ctx.a && ctx.b || ctx.c"),
        ("ctx.a || (ctx.b && ctx.c)", "ctx.a || ctx.b && ctx.c"),
        ("ctx.a && (ctx.b || ctx.c)", "ctx.a && (ctx.b || ctx.c)"),
        ("(ctx.a || ctx.b) && ctx.c", "(ctx.a || ctx.b) && ctx.c"),
        ("ctx.a && (ctx.b && ctx.c)", "ctx.a && (ctx.b && ctx.c)"),
        ("ctx.a || (ctx.b || ctx.c)", "ctx.a || (ctx.b || ctx.c)"),
        ("(ctx.a || ctx.b) || ctx.c", "ctx.a || ctx.b || ctx.c"),
        ("!(ctx.a == 1)", "!ctx.a == 1"),
        ("! ( ! ctx.a )", "!!ctx.a"),
        ("!(ctx.a && ctx.b)", "!(ctx.a && ctx.b)"),
        ("!(ctx.a || ctx.b)", "!(ctx.a || ctx.b)"),
    ],
)
def test_to_source_is_canonical_and_round_trips(text: str, canonical: str) -> None:
    tree = parse(text)
    assert to_source(tree) == canonical
    assert parse(canonical) == tree


def test_to_source_of_long_chain_needs_no_recursion() -> None:
    text = " && ".join(f"ctx.f{i} == {i}" for i in range(3000))
    assert to_source(parse(text)) == text


def test_to_source_of_extreme_floats() -> None:
    for value in [5e-324, 1.7976931348623157e308, -2.5e-10, 0.1, 1e22]:
        node = Compare(Path(("x",)), "<", Literal(value))
        source = to_source(node)
        assert "e" not in source.lower()
        assert parse(source) == node


def test_to_source_rejects_non_nodes() -> None:
    with pytest.raises(TypeError):
        to_source("ctx.a")  # type: ignore[arg-type]


# --- compiled guards as values ----------------------------------------------------------------


def test_compile_guard_keeps_the_source_verbatim() -> None:
    text = "  ctx.amount>100&&ctx.approved "
    guard = compile_guard(text)
    assert guard.source == text
    assert guard.ast == And(cmp("amount", ">", 100), t("approved"))


def test_compiled_guard_equality_pickle_and_hash() -> None:
    guard = compile_guard("ctx.a == 1 || !ctx.b")
    same = compile_guard("ctx.a == 1 || !ctx.b")
    assert guard == same
    assert hash(guard) == hash(same)
    assert guard != compile_guard("ctx.a == 1 || ctx.b")
    copy = pickle.loads(pickle.dumps(guard))
    assert copy == guard
    assert copy({"a": 1}) is True
    assert copy({"a": 2, "b": True}) is False


def test_compiled_guard_is_frozen() -> None:
    guard = compile_guard("ctx.a")
    with pytest.raises(AttributeError):
        guard.source = "ctx.b"  # type: ignore[misc]


def test_compiled_guard_refuses_non_nodes() -> None:
    with pytest.raises(TypeError):
        CompiledGuard("ctx.a", "ctx.a")  # type: ignore[arg-type]


def test_compiled_guard_repr_shows_the_source() -> None:
    assert repr(compile_guard("ctx.a > 1")) == "CompiledGuard(source='ctx.a > 1')"


# --- chains as values -------------------------------------------------------------------------


def test_chain_equality_is_structural() -> None:
    assert And(A, B) == And(A, B)
    assert And(A, B) != Or(A, B)
    assert And(A, B) != And(B, A)
    assert And(And(A, B), C) != And(A, And(B, C))
    assert Or(Or(A, B), C) != Or(A, Or(B, C))
    assert And(Or(A, B), C) != Or(A, And(B, C))
    assert hash(And(And(A, B), C)) == hash(parse("ctx.a && ctx.b && ctx.c"))
    assert repr(And(A, Or(B, C))) == (
        "And(left=Truthy(path=Path(parts=('a',))), right=Or(left=Truthy(path=Path(parts=('b',))), "
        "right=Truthy(path=Path(parts=('c',)))))"
    )


def test_long_chains_compare_hash_print_and_pickle_without_recursion() -> None:
    text = " && ".join(f"ctx.f{i}" for i in range(5000)) + " || ctx.z && (ctx.x || ctx.y)"
    first, second = parse(text), parse(text)
    assert first == second
    assert hash(first) == hash(second)
    assert first != parse(text.replace("ctx.f4999", "ctx.g"))
    assert repr(first).startswith("Or(left=And(left=And(left=")
    assert pickle.loads(pickle.dumps(first)) == first
    assert copy.deepcopy(first) == first
    guard = compile_guard(text)
    assert pickle.loads(pickle.dumps(guard)) == guard
