"""Protocol messages: the request envelope, responses and pushed events.

This module owns the operation names, the typed views of decoded messages and
the builders of outgoing ones (plain dicts, ready for the codec). Payloads are
JSON objects encoded with orjson.

:func:`parse_request` never raises for bad input: a payload that is not a
valid envelope becomes an :class:`InvalidMessage`, answered with ``BAD_REQUEST``
while the connection stays open. Its ``id`` is ``None`` when the request's own
id cannot be recovered (not UTF-8/JSON/an object; ``id`` missing or not a
string) and the request's id otherwise (``type`` or ``op`` missing or not a
string, unknown ``op``, ``params`` not an object). Absent or ``null`` params
read as ``{}``.

:func:`parse_server_message` is the client's side and raises ``ValueError`` for
anything that is neither a response nor an event.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import orjson

from pyrstmdb.errors import BadRequest


class Operation(StrEnum):
    """Every operation name a request may carry."""

    HELLO = "HELLO"
    AUTH = "AUTH"
    PING = "PING"
    BYE = "BYE"
    INFO = "INFO"
    PUT_MACHINE = "PUT_MACHINE"
    GET_MACHINE = "GET_MACHINE"
    LIST_MACHINES = "LIST_MACHINES"
    CREATE_INSTANCE = "CREATE_INSTANCE"
    GET_INSTANCE = "GET_INSTANCE"
    LIST_INSTANCES = "LIST_INSTANCES"
    DELETE_INSTANCE = "DELETE_INSTANCE"
    GET_HISTORY = "GET_HISTORY"
    APPLY_EVENT = "APPLY_EVENT"
    BATCH = "BATCH"
    SNAPSHOT_INSTANCE = "SNAPSHOT_INSTANCE"
    WAL_READ = "WAL_READ"
    WAL_STATS = "WAL_STATS"
    COMPACT = "COMPACT"
    FLUSH_ALL = "FLUSH_ALL"
    WATCH_INSTANCE = "WATCH_INSTANCE"
    WATCH_ALL = "WATCH_ALL"
    UNWATCH = "UNWATCH"


_OPERATIONS: dict[str, Operation] = {op.value: op for op in Operation}


@dataclass(frozen=True, slots=True)
class Request:
    """A well-formed request envelope (params not yet checked)."""

    id: str
    op: Operation
    params: dict[str, Any]


@dataclass(frozen=True, slots=True)
class InvalidMessage:
    """A payload that is not a valid request; answered with ``BAD_REQUEST``."""

    id: str | None
    reason: str


@dataclass(frozen=True, slots=True)
class Response:
    """A response as received by a client."""

    id: str | None
    ok: bool
    result: dict[str, Any] | None
    error: dict[str, Any] | None


@dataclass(frozen=True, slots=True)
class Event:
    """A pushed subscription event, all fields as received."""

    fields: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Notice:
    """A pushed subscription notice (``{"type": "notice", ...}``), all fields as received.

    The server sends one instead of silently skipping events it cannot deliver
    (history compacted away, an event too large for a frame).
    """

    fields: dict[str, Any]


def _load_object(payload: bytes | str) -> dict[str, Any] | str:
    """The decoded JSON object, or the reason it is not one."""
    try:
        obj = orjson.loads(payload)
    except orjson.JSONDecodeError as exc:
        return f"payload is not valid UTF-8 JSON: {exc}"
    if not isinstance(obj, dict):
        return "payload is not a JSON object"
    return obj


def _check_envelope(obj: dict[str, Any], request_id: str) -> Request | InvalidMessage:
    if not isinstance(obj.get("type"), str):
        return InvalidMessage(request_id, "missing or non-string 'type'")
    op_name = obj.get("op")
    if not isinstance(op_name, str):
        return InvalidMessage(request_id, "missing or non-string 'op'")
    op = _OPERATIONS.get(op_name)
    if op is None:
        return InvalidMessage(request_id, f"unknown op '{op_name}'")
    params = obj.get("params")
    if params is None:
        params = {}
    elif not isinstance(params, dict):
        return InvalidMessage(request_id, "'params' must be an object")
    return Request(request_id, op, params)


def parse_request(payload: bytes | str) -> Request | InvalidMessage:
    """Check the envelope of one request payload; never raises for bad input."""
    obj = _load_object(payload)
    if isinstance(obj, str):
        return InvalidMessage(None, obj)
    request_id = obj.get("id")
    if not isinstance(request_id, str):
        return InvalidMessage(None, "missing or non-string 'id'")
    return _check_envelope(obj, request_id)


def _optional_object(obj: dict[str, Any], key: str) -> dict[str, Any] | None:
    value = obj.get(key)
    if value is not None and not isinstance(value, dict):
        raise ValueError(f"response '{key}' is not an object")
    return value


def _to_response(obj: dict[str, Any]) -> Response:
    response_id = obj.get("id")
    if response_id is not None and not isinstance(response_id, str):
        raise ValueError("response 'id' is neither a string nor null")
    status = obj.get("status")
    if status not in ("ok", "error"):
        raise ValueError(f"response status {status!r} is neither 'ok' nor 'error'")
    return Response(
        id=response_id,
        ok=status == "ok",
        result=_optional_object(obj, "result"),
        error=_optional_object(obj, "error"),
    )


def parse_server_message(payload: bytes | str) -> Response | Event | Notice:
    """Decode a message sent by a server; raises ``ValueError`` for garbage."""
    obj = _load_object(payload)
    if isinstance(obj, str):
        raise ValueError(obj)
    kind = obj.get("type")
    if kind == "response":
        return _to_response(obj)
    if kind == "event":
        return Event(obj)
    if kind == "notice":
        return Notice(obj)
    raise ValueError(f"unknown message type {kind!r}")


def ok_response(request_id: str, result: dict[str, Any]) -> dict[str, Any]:
    """A success response carrying ``result``."""
    return {"type": "response", "id": request_id, "status": "ok", "result": result}


def error_response(request_id: str | None, error: dict[str, Any]) -> dict[str, Any]:
    """An error response; ``error`` has ``code``, ``message``, ``retryable`` [, ``details``]."""
    return {"type": "response", "id": request_id, "status": "error", "error": error}


def invalid_message_response(invalid: InvalidMessage) -> dict[str, Any]:
    """The ``BAD_REQUEST`` response that answers an :class:`InvalidMessage`."""
    error = BadRequest(f"invalid request: {invalid.reason}").to_dict()
    return error_response(invalid.id, error)


def request_message(request_id: str, op: str, params: dict[str, Any]) -> dict[str, Any]:
    """A request envelope, as a client sends it (``params`` always present)."""
    return {"type": "request", "id": request_id, "op": str(op), "params": params}
