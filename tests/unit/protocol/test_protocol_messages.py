"""Message envelopes: request validation, server messages, builders."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from rstmdb.models import Operation as ClientOperation
from rstmdb.models import Request as ClientRequest
from rstmdb.models import Response as ClientResponse

from pyrstmdb.protocol import (
    Event,
    InvalidMessage,
    Operation,
    Request,
    Response,
    error_response,
    invalid_message_response,
    ok_response,
    parse_request,
    parse_server_message,
    request_message,
)


def dumps(obj: Any) -> bytes:
    return orjson.dumps(obj)


def test_operations_match_the_official_client() -> None:
    # GET_HISTORY is this server's addition (HTTP §3); official clients never send it.
    official = {op.value for op in Operation} - {"GET_HISTORY"}
    assert official == {op.value for op in ClientOperation}
    assert len(Operation) == 23
    assert Operation.APPLY_EVENT == "APPLY_EVENT"


def test_valid_request() -> None:
    payload = b'{"type":"request","id":"7","op":"GET_INSTANCE","params":{"instance_id":"o-1"}}'
    assert parse_request(payload) == Request("7", Operation.GET_INSTANCE, {"instance_id": "o-1"})
    assert parse_request(payload.decode()) == parse_request(payload)


def test_official_client_request_parses() -> None:
    wire = ClientRequest(id="3", op=ClientOperation.PING, params={}).model_dump_json()
    assert parse_request(wire.encode()) == Request("3", Operation.PING, {})


@pytest.mark.parametrize(
    "payload",
    [
        b"",
        b"not json",
        b'{"type":"request","id":"1"',
        b"\xff\xfe{}",
        b'{"type":"request","id":"\xc3","op":"PING"}',
        b"[]",
        b'"text"',
        b"null",
        b"42",
        b"NaN",
    ],
)
def test_unreadable_payload_is_invalid_with_null_id(payload: bytes) -> None:
    result = parse_request(payload)
    assert isinstance(result, InvalidMessage)
    assert result.id is None
    assert result.reason


@pytest.mark.parametrize("request_id", [None, 7, 7.5, True, ["1"], {"a": "1"}, "absent"])
def test_missing_or_non_string_id_gives_null_id(request_id: Any) -> None:
    obj: dict[str, Any] = {"type": "request", "op": "PING", "params": {}}
    if request_id != "absent":
        obj["id"] = request_id
    result = parse_request(dumps(obj))
    assert result == InvalidMessage(None, "missing or non-string 'id'")


@pytest.mark.parametrize("op", [None, 1, ["PING"], "absent", "ping", "FROB", ""])
def test_bad_op_keeps_the_request_id(op: Any) -> None:
    obj: dict[str, Any] = {"type": "request", "id": "9", "params": {}}
    if op != "absent":
        obj["op"] = op
    result = parse_request(dumps(obj))
    assert isinstance(result, InvalidMessage)
    assert result.id == "9"
    assert "op" in result.reason


def test_unknown_op_names_it() -> None:
    result = parse_request(b'{"type":"request","id":"4","op":"FROB"}')
    assert result == InvalidMessage("4", "unknown op 'FROB'")


@pytest.mark.parametrize("kind", [None, 1, "absent"])
def test_type_must_be_a_string(kind: Any) -> None:
    obj: dict[str, Any] = {"id": "5", "op": "PING"}
    if kind != "absent":
        obj["type"] = kind
    result = parse_request(dumps(obj))
    assert isinstance(result, InvalidMessage)
    assert result.id == "5"
    assert "type" in result.reason


def test_type_value_is_not_checked() -> None:
    assert parse_request(b'{"type":"whatever","id":"5","op":"PING"}') == Request(
        "5", Operation.PING, {}
    )


@pytest.mark.parametrize("params", ["absent", None])
def test_absent_or_null_params_read_as_empty(params: Any) -> None:
    obj: dict[str, Any] = {"type": "request", "id": "6", "op": "HELLO"}
    if params != "absent":
        obj["params"] = params
    assert parse_request(dumps(obj)) == Request("6", Operation.HELLO, {})


@pytest.mark.parametrize("params", [[], "x", 0, False, [{"a": 1}]])
def test_non_object_params_keep_the_request_id(params: Any) -> None:
    obj = {"type": "request", "id": "8", "op": "PING", "params": params}
    assert parse_request(dumps(obj)) == InvalidMessage("8", "'params' must be an object")


def test_unknown_top_level_keys_are_ignored() -> None:
    obj = {"type": "request", "id": "1", "op": "PING", "params": {"x": 1}, "meta": {"a": 1}}
    assert parse_request(dumps(obj)) == Request("1", Operation.PING, {"x": 1})


def test_id_is_echoed_verbatim() -> None:
    odd = " x\u00e9\u2603\n" + "z" * 1000
    result = parse_request(dumps({"type": "request", "id": odd, "op": "PING"}))
    assert isinstance(result, Request)
    assert result.id == odd


def test_ok_and_error_response_shapes() -> None:
    assert ok_response("7", {"pong": True}) == {
        "type": "response",
        "id": "7",
        "status": "ok",
        "result": {"pong": True},
    }
    error = {"code": "INSTANCE_NOT_FOUND", "message": "m", "retryable": False}
    assert error_response(None, error) == {
        "type": "response",
        "id": None,
        "status": "error",
        "error": error,
    }


def test_official_client_accepts_our_responses() -> None:
    ok = ClientResponse.model_validate_json(dumps(ok_response("7", {"pong": True})))
    assert ok.status == "ok"
    assert ok.result == {"pong": True}
    error = {"code": "CONFLICT", "message": "state conflict", "retryable": False}
    bad = ClientResponse.model_validate_json(dumps(error_response("8", error)))
    assert bad.error is not None
    assert bad.error.code.value == "CONFLICT"


def test_invalid_message_response_is_bad_request() -> None:
    response = invalid_message_response(InvalidMessage("3", "unknown op 'FROB'"))
    assert response["id"] == "3"
    assert response["status"] == "error"
    assert response["error"]["code"] == "BAD_REQUEST"
    assert response["error"]["retryable"] is False
    assert response["error"]["message"] == "invalid request: unknown op 'FROB'"
    assert invalid_message_response(InvalidMessage(None, "x"))["id"] is None


def test_request_message_always_carries_params() -> None:
    message = request_message("1", Operation.PING, {})
    assert message == {"type": "request", "id": "1", "op": "PING", "params": {}}
    assert type(message["op"]) is str
    assert parse_request(dumps(message)) == Request("1", Operation.PING, {})


def test_parse_server_response() -> None:
    parsed = parse_server_message(dumps(ok_response("2", {"a": 1})))
    assert parsed == Response("2", True, {"a": 1}, None)
    error = {"code": "BAD_REQUEST", "message": "m", "retryable": False}
    assert parse_server_message(dumps(error_response(None, error))) == Response(
        None, False, None, error
    )


def test_parse_server_event_keeps_all_fields() -> None:
    event = {
        "type": "event",
        "subscription_id": "sub-1",
        "instance_id": "o-1",
        "machine": "order",
        "version": 1,
        "wal_offset": 1099511627890,
        "from_state": "created",
        "to_state": "paid",
        "event": "PAY",
        "payload": None,
    }
    assert parse_server_message(dumps(event)) == Event(event)


@pytest.mark.parametrize(
    "payload",
    [
        b"garbage",
        b"[1]",
        b'{"type":"request","id":"1","op":"PING"}',
        b'{"id":"1","status":"ok","result":{}}',
        b'{"type":"response","id":1,"status":"ok","result":{}}',
        b'{"type":"response","id":"1","status":"fine","result":{}}',
        b'{"type":"response","id":"1","status":"ok","result":[]}',
        b'{"type":"response","id":"1","status":"error","error":"boom"}',
    ],
)
def test_parse_server_message_rejects_garbage(payload: bytes) -> None:
    with pytest.raises(ValueError):
        parse_server_message(payload)


def test_notices_from_the_server_are_their_own_message_kind() -> None:
    from pyrstmdb.protocol import Notice, parse_server_message

    message = parse_server_message(
        b'{"type":"notice","subscription_id":"sub-1","code":"HISTORY_LOST",'
        b'"lost_from":5,"resumed_at":9}'
    )
    assert isinstance(message, Notice)
    assert message.fields["code"] == "HISTORY_LOST"
