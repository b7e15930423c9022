"""Duplicate keys and inexact integers in request text, found cheaply (protocol/strict.py)."""

from __future__ import annotations

import json
from typing import Any

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from pyrstmdb.protocol import InvalidMessage, Operation, Request, parse_request
from pyrstmdb.protocol.strict import INT_MAX, INT_MIN, find_problem


def check(text: bytes) -> str | None:
    return find_problem(text, orjson.loads(text))


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        (b'{"op":"PING","op":"INFO"}', "duplicate key 'op'"),
        (b'{"a": {"b": 1, "b": 2}}', "duplicate key 'b'"),
        (b'{"a":[{"t":"12:00","t":"13:00"}]}', "duplicate key 't'"),
        (b'{"x":1,"x":"\\u003a"}', "duplicate key 'x'"),  # an escaped colon makes up the count
        (b'{"a":"x:y","a":"z"}', "duplicate key 'a'"),
        (b'{"n":99999999999999999999999}', "integer at 'n'"),
        (b'{"p":{"q":[1,18446744073709551616]}}', "integer at 'p.q[1]'"),
        (b'{"m":-9223372036854775809}', "integer at 'm'"),
    ],
)
def test_problems_are_found_and_named(text: bytes, problem: str) -> None:
    found = check(text)
    assert found is not None and found.startswith(problem)


@pytest.mark.parametrize(
    "text",
    [
        b'{"type":"request","id":"1","op":"PING"}',
        b'{"type": "request", "id": "1", "op": "PING", "params": {"at": "12:00:01"}}',
        b'{"n":18446744073709551615,"m":-9223372036854775808,"f":1e23,"s":"99999999999999999999"}',
        b'{"u":"caf\\u00e9","k":{"a:b":1}}',
        b'{"f": 1.0000000000000000000001, "big": 123456789012345678.5}',
    ],
)
def test_exact_requests_pass(text: bytes) -> None:
    assert check(text) is None


def test_parse_request_refuses_with_the_request_id() -> None:
    dup = parse_request(b'{"type":"request","id":"9","op":"PING","op":"INFO"}')
    assert dup == InvalidMessage("9", "duplicate key 'op'")
    big = parse_request(
        b'{"type":"request","id":"8","op":"CREATE_INSTANCE","params":{"initial_ctx":{"n":1e400}}}'
    )
    assert isinstance(big, InvalidMessage)  # not JSON orjson accepts: refused as before
    exact = parse_request(b'{"type":"request","id":"7","op":"PING","params":{"n":%d}}' % INT_MAX)
    assert exact == Request("7", Operation.PING, {"n": INT_MAX})


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=INT_MIN * 4, max_value=INT_MAX * 4)
    | st.text(alphabet=st.sampled_from('ab:"\\ 1')),
    lambda children: (
        st.lists(children, max_size=3)
        | st.lists(st.tuples(st.sampled_from(["a", "b", "c:"]), children), max_size=4)
    ),
    max_leaves=12,
)


def _text(value: Any, pretty: bool) -> str:
    """JSON text of ``value``; lists of pairs become objects, duplicates included."""
    if isinstance(value, list) and value and all(isinstance(v, tuple) for v in value):
        sep = ": " if pretty else ":"
        return "{" + ",".join(f"{json.dumps(k)}{sep}{_text(v, pretty)}" for k, v in value) + "}"
    if isinstance(value, list):
        return "[" + ",".join(_text(v, pretty) for v in value) + "]"
    return json.dumps(value)


def _expected(value: Any) -> bool:
    """True when the text of ``value`` has a duplicate key or an inexact integer."""
    if isinstance(value, list) and value and all(isinstance(v, tuple) for v in value):
        keys = [k for k, _ in value]
        return len(keys) != len(set(keys)) or any(_expected(v) for _, v in value)
    if isinstance(value, list):
        return any(_expected(v) for v in value)
    return type(value) is int and not INT_MIN <= value <= INT_MAX


@given(json_values, st.booleans())
def test_found_exactly_when_present(value: Any, pretty: bool) -> None:
    text = ("{" + f'"v":{_text(value, pretty)}' + "}").encode()
    assert (check(text) is not None) == _expected(value)
