"""Session rules: HELLO negotiation, AUTH, the auth-exempt table."""

from __future__ import annotations

import hashlib

import pytest

from pyrstmdb.errors import AuthFailed, BadRequest, Unauthorized, UnsupportedProtocol
from pyrstmdb.protocol import Operation
from pyrstmdb.server.session import AUTH_EXEMPT, Session, choose_wire_mode, token_hash

SECRET = "my-secret-token"
SECRET_HASH = "ea5add57437cbf20af59034d7ed17968dcc56767b41965fcc5b376d45db8b4a3"


def test_token_hash_matches_documented_value() -> None:
    assert token_hash(SECRET) == SECRET_HASH == hashlib.sha256(SECRET.encode()).hexdigest()


@pytest.mark.parametrize(
    "offered,chosen",
    [
        ([], "binary_json"),
        (["binary_json"], "binary_json"),
        (["jsonl"], "jsonl"),
        (["jsonl", "binary_json"], "jsonl"),
        (["binary_json", "jsonl"], "binary_json"),
        (["cbor", "jsonl"], "jsonl"),
        (["cbor"], "binary_json"),
    ],
)
def test_first_supported_wire_mode_wins(offered: list[str], chosen: str) -> None:
    assert choose_wire_mode(offered) == chosen


def test_hello_result_and_mode() -> None:
    session = Session(False, frozenset())
    result = session.hello(
        {"protocol_version": 1, "wire_modes": ["jsonl"], "features": ["batch", "x", "idempotency"]},
        "9.9.9",
    )
    assert result == {
        "protocol_version": 1,
        "wire_mode": "jsonl",
        "server_name": "rstmdb",
        "server_version": "9.9.9",
        "features": ["idempotency", "batch"],
    }
    assert session.wire_mode == "jsonl"
    session.hello({"protocol_version": 1, "client_name": None}, "9.9.9")
    assert session.wire_mode == "binary_json"


@pytest.mark.parametrize(
    "params,error",
    [
        ({"protocol_version": 2}, UnsupportedProtocol),
        ({}, BadRequest),
        ({"protocol_version": "1"}, BadRequest),
        ({"protocol_version": 1, "features": "batch"}, BadRequest),
        ({"protocol_version": 1, "client_name": 5}, BadRequest),
    ],
)
def test_hello_errors(params: dict[str, object], error: type[Exception]) -> None:
    session = Session(False, frozenset())
    with pytest.raises(error):
        session.hello(params, "1")
    assert session.wire_mode == "binary_json"


def test_auth_required_flow() -> None:
    session = Session(True, frozenset({SECRET_HASH}))
    for op in Operation:
        if op in AUTH_EXEMPT:
            session.authorize(op)
        else:
            with pytest.raises(Unauthorized, match="authentication required"):
                session.authorize(op)
    with pytest.raises(AuthFailed):
        session.auth({"method": "bearer", "token": "wrong"})
    with pytest.raises(AuthFailed):
        session.auth({"method": "basic", "token": SECRET})
    with pytest.raises(BadRequest):
        session.auth({"method": "bearer"})
    assert not session.authenticated
    assert session.auth({"method": "bearer", "token": SECRET}) == {"authenticated": True}
    with pytest.raises(AuthFailed):
        session.auth({"method": "bearer", "token": "wrong"})
    assert session.authenticated
    session.authorize(Operation.FLUSH_ALL)


def test_exempt_table_is_exactly_four_ops() -> None:
    assert {op.value for op in AUTH_EXEMPT} == {"HELLO", "AUTH", "PING", "BYE"}


def test_auth_not_required_accepts_any_nonempty_token() -> None:
    session = Session(False, frozenset())
    session.authorize(Operation.APPLY_EVENT)
    assert session.auth({"method": "bearer", "token": "whatever"}) == {"authenticated": True}
    with pytest.raises(AuthFailed):
        session.auth({"method": "bearer", "token": ""})
