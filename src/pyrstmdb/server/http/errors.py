"""Every failure of the HTTP API as ``{"error": {code, message, retryable, details}}``.

:data:`STATUS` maps each protocol error code to its HTTP status (HTTP §2).
The exception handlers registered by :func:`install` turn protocol errors,
request validation failures (malformed JSON, wrong types, unknown fields),
unknown routes (404 ``NOT_FOUND``), wrong methods (405 ``BAD_REQUEST`` with
``Allow``) and anything unexpected (500 ``INTERNAL_ERROR``, traceback to the
log only) into that JSON object; nothing becomes an HTML page.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from typing import Any

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException
from starlette.responses import Response

from pyrstmdb.errors import RETRYABLE_CODES, ErrorCode, RstmdbError

log = logging.getLogger("pyrstmdb.server.http")

STATUS: dict[ErrorCode, int] = {
    ErrorCode.UNSUPPORTED_PROTOCOL: 400,
    ErrorCode.BAD_REQUEST: 400,
    ErrorCode.UNAUTHORIZED: 401,
    ErrorCode.AUTH_FAILED: 401,
    ErrorCode.NOT_FOUND: 404,
    ErrorCode.MACHINE_NOT_FOUND: 404,
    ErrorCode.INSTANCE_NOT_FOUND: 404,
    ErrorCode.MACHINE_VERSION_EXISTS: 409,
    ErrorCode.INSTANCE_EXISTS: 409,
    ErrorCode.CONFLICT: 409,
    ErrorCode.INVALID_TRANSITION: 422,
    ErrorCode.GUARD_FAILED: 422,
    ErrorCode.MACHINE_VERSION_LIMIT_EXCEEDED: 422,
    ErrorCode.RATE_LIMITED: 429,
    ErrorCode.INTERNAL_ERROR: 500,
    ErrorCode.WAL_IO_ERROR: 503,
}
assert set(STATUS) == set(ErrorCode), "every error code needs a status"

AUTH_CHALLENGE = {"WWW-Authenticate": "Bearer"}


def error_response(
    status: int,
    code: ErrorCode,
    message: str,
    details: Mapping[str, Any] | None = None,
    headers: Mapping[str, str] | None = None,
) -> Response:
    """The JSON error object with ``status``."""
    error: dict[str, Any] = {
        "code": code.value,
        "message": message,
        "retryable": code in RETRYABLE_CODES,
    }
    if details:
        error["details"] = dict(details)
    body = orjson.dumps({"error": error}, default=str)
    return Response(body, status, headers=dict(headers or {}), media_type="application/json")


def from_error(err: RstmdbError) -> Response:
    """A protocol error as its HTTP answer (401s carry the Bearer challenge)."""
    status = STATUS[err.code]
    headers = AUTH_CHALLENGE if status == 401 else None
    body = orjson.dumps({"error": err.to_dict()}, default=str)
    return Response(body, status, headers=headers, media_type="application/json")


_EXPECTED = {
    "dict_type": "a JSON object",
    "model_type": "a JSON object",
    "model_attributes_type": "a JSON object",
    "int_type": "an unsigned integer",
    "int_parsing": "an unsigned integer",
    "int_from_float": "an unsigned integer",
    "greater_than_equal": "an unsigned integer",
    "less_than_equal": "an integer in range",
    "string_type": "a string",
    "bool_type": "a boolean",
    "bool_parsing": "a boolean",
    "list_type": "an array",
}
_LOCATIONS = frozenset({"body", "query", "path", "header"})


def _field(location: tuple[Any, ...]) -> str:
    """The offending field as RCP names it (``initial_ctx``, ``ops[2].op``), or ``""``."""
    parts = [part for part in location if part not in _LOCATIONS or location.index(part) > 0]
    text = ""
    for part in parts:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def _problem(item: Mapping[str, Any]) -> str:
    """One validation failure in the words RCP uses for the same mistake."""
    kind = str(item.get("type", ""))
    field = _field(tuple(item.get("loc", ())))
    if kind == "json_invalid":
        return f"invalid request: malformed JSON ({item.get('msg', 'invalid')})"
    if kind == "missing":
        return f"invalid request: missing {field or 'body'}"
    if kind == "extra_forbidden":
        return f"invalid request: unknown field {field}"
    expected = _EXPECTED.get(kind)
    if expected is not None:
        return f"invalid request: {field or 'body'} must be {expected}"
    return f"invalid request: {field or 'body'}: {item.get('msg', 'invalid')}"


def _validation_details(exc: RequestValidationError) -> dict[str, Any]:
    problems = []
    for item in exc.errors():
        location = ".".join(str(part) for part in item.get("loc", ()))
        problems.append({"location": location, "problem": str(item.get("msg", "invalid"))})
    details: dict[str, Any] = {"errors": problems}
    if exc.errors():
        field = _field(tuple(exc.errors()[0].get("loc", ())))
        if field:
            details["field"] = field
    return details


def _validation_message(exc: RequestValidationError) -> str:
    errors = exc.errors()
    return _problem(errors[0]) if errors else "invalid request"


async def _on_rstmdb_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RstmdbError)
    return from_error(exc)


async def _on_validation(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    details = _validation_details(exc)
    message = _validation_message(exc)
    content_type = request.headers.get("content-type", "")
    on_body = any(item["location"].startswith("body") for item in details["errors"])
    if on_body and "json" not in content_type.lower():
        message = "invalid request: the body must be JSON sent as Content-Type: application/json"
    return error_response(400, ErrorCode.BAD_REQUEST, message, details)


async def _on_http(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    headers = dict(exc.headers or {})
    if exc.status_code == 404:
        message = f"not found: no route {request.method} {request.url.path}"
        return error_response(404, ErrorCode.NOT_FOUND, message, headers=headers)
    if exc.status_code == 405:
        allowed = _allowed(request) or headers.get("Allow", headers.get("allow", ""))
        headers["Allow"] = allowed
        message = f"method {request.method} not allowed on {request.url.path} (allowed: {allowed})"
        return error_response(405, ErrorCode.BAD_REQUEST, message, {"allow": allowed}, headers)
    if exc.status_code == 413:
        return error_response(413, ErrorCode.BAD_REQUEST, str(exc.detail), headers=headers)
    code = ErrorCode.INTERNAL_ERROR if exc.status_code >= 500 else ErrorCode.BAD_REQUEST
    return error_response(exc.status_code, code, str(exc.detail), headers=headers)


def _allowed(request: Request) -> str:
    """Every method some route of this path accepts (Starlette names only the first route's)."""
    table: list[tuple[re.Pattern[str], set[str]]] = getattr(request.app.state, "route_methods", [])
    methods: set[str] = set()
    for pattern, route_methods in table:
        if pattern.match(request.url.path):
            methods.update(route_methods)
    return ", ".join(sorted(methods))


async def _on_unexpected(request: Request, exc: Exception) -> Response:
    log.error("HTTP %s %s failed unexpectedly", request.method, request.url.path, exc_info=exc)
    message = f"internal error while handling {request.method} {request.url.path}"
    return error_response(500, ErrorCode.INTERNAL_ERROR, message)


def install(app: FastAPI) -> None:
    """Register the handlers that turn every failure into the JSON error object."""
    app.add_exception_handler(RstmdbError, _on_rstmdb_error)
    app.add_exception_handler(RequestValidationError, _on_validation)
    app.add_exception_handler(HTTPException, _on_http)
    app.add_exception_handler(Exception, _on_unexpected)
