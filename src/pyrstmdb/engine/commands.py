"""Typed commands and strict parsing of request parameters.

The server parses wire ``params`` with the ``parse_*`` functions; the embedded
``Database`` builds the same commands through the same field checks. Every
problem is a ``BadRequest`` naming the field: a wrong JSON type, a negative or
fractional integer, an integer out of range, a missing required field. Absent
and ``null`` optional fields mean "not given"; unknown keys are ignored.

Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

from pyrstmdb.errors import BadRequest

UINT32_MAX = 2**32 - 1
UINT64_MAX = 2**64 - 1
MAX_ID_BYTES = 256
MAX_BATCH_OPS = 100

Params = dict[str, Any]


class PutMachine(NamedTuple):
    machine: str
    version: int
    definition: dict[str, Any]
    checksum: str | None = None


class CreateInstance(NamedTuple):
    machine: str
    version: int
    instance_id: str | None = None
    initial_ctx: dict[str, Any] | None = None
    idempotency_key: str | None = None


class ApplyEvent(NamedTuple):
    instance_id: str
    event: str
    payload: dict[str, Any] | None = None
    expected_state: str | None = None
    expected_wal_offset: int | None = None
    event_id: str | None = None
    idempotency_key: str | None = None


class DeleteInstance(NamedTuple):
    instance_id: str
    idempotency_key: str | None = None


class ListInstances(NamedTuple):
    machine: str | None = None
    state: str | None = None
    limit: int = 100
    offset: int = 0


WriteCommand = CreateInstance | ApplyEvent | DeleteInstance


# -- field readers -----------------------------------------------------------


def _missing(key: str) -> BadRequest:
    return BadRequest(f"invalid request: missing {key}", {"field": key})


def _wrong(key: str, expected: str) -> BadRequest:
    return BadRequest(f"invalid request: {key} must be {expected}", {"field": key})


def check_str(key: str, value: Any, optional: bool = False) -> Any:
    """``value`` if it is a string (or ``None`` when optional); else ``BadRequest``."""
    if isinstance(value, str) or (value is None and optional):
        return value
    raise _missing(key) if value is None else _wrong(key, "a string")


def check_uint(key: str, value: Any, limit: int = UINT64_MAX, optional: bool = False) -> Any:
    """``value`` if it is an integer in ``0..limit`` (or ``None`` when optional)."""
    if value is None:
        if optional:
            return None
        raise _missing(key)
    # JSON numbers written with a fraction or exponent (1.0, 1e3) are not integers.
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= limit:
        raise _wrong(key, f"an unsigned integer (0..{limit})")
    return value


def req_str(params: Params, key: str) -> str:
    value: str = check_str(key, params.get(key))
    return value


def opt_str(params: Params, key: str) -> str | None:
    value: str | None = check_str(key, params.get(key), optional=True)
    return value


def req_uint(params: Params, key: str, limit: int = UINT64_MAX) -> int:
    value: int = check_uint(key, params.get(key), limit)
    return value


def opt_uint(params: Params, key: str, limit: int = UINT64_MAX) -> int | None:
    value: int | None = check_uint(key, params.get(key), limit, optional=True)
    return value


def opt_bool(params: Params, key: str, default: bool) -> bool:
    value = params.get(key)
    if value is None:
        return default
    if not isinstance(value, bool):
        raise _wrong(key, "a boolean")
    return value


def opt_object(params: Params, key: str) -> dict[str, Any] | None:
    value = params.get(key)
    if value is None or isinstance(value, dict):
        return value
    raise _wrong(key, "a JSON object")


def opt_str_list(params: Params, key: str) -> list[str]:
    value = params.get(key)
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise _wrong(key, "an array of strings")
    return value


def check_id(key: str, value: str) -> str:
    size = len(value.encode("utf-8"))
    if size == 0 or size > MAX_ID_BYTES:
        raise _wrong(key, f"1 to {MAX_ID_BYTES} bytes long")
    return value


# -- commands ----------------------------------------------------------------


def parse_put_machine(params: Params) -> PutMachine:
    machine = check_id("machine", req_str(params, "machine"))
    version = req_uint(params, "version", UINT32_MAX)
    definition = params.get("definition")
    if definition is None:
        raise _missing("definition")
    if not isinstance(definition, dict):
        raise _wrong("definition", "a JSON object")
    return PutMachine(machine, version, definition, opt_str(params, "checksum"))


def parse_machine_ref(params: Params) -> tuple[str, int]:
    return req_str(params, "machine"), req_uint(params, "version", UINT32_MAX)


def parse_create_instance(params: Params) -> CreateInstance:
    machine = req_str(params, "machine")
    version = req_uint(params, "version", UINT32_MAX)
    instance_id = opt_str(params, "instance_id")
    if instance_id is not None:
        check_id("instance_id", instance_id)
    return CreateInstance(
        machine,
        version,
        instance_id,
        opt_object(params, "initial_ctx"),
        opt_str(params, "idempotency_key"),
    )


def parse_apply_event(params: Params) -> ApplyEvent:
    return ApplyEvent(
        req_str(params, "instance_id"),
        req_str(params, "event"),
        opt_object(params, "payload"),
        opt_str(params, "expected_state"),
        opt_uint(params, "expected_wal_offset"),
        opt_str(params, "event_id"),
        opt_str(params, "idempotency_key"),
    )


def parse_delete_instance(params: Params) -> DeleteInstance:
    return DeleteInstance(req_str(params, "instance_id"), opt_str(params, "idempotency_key"))


def parse_instance_id(params: Params) -> str:
    return req_str(params, "instance_id")


MAX_HISTORY_LIMIT = 1000
DEFAULT_HISTORY_LIMIT = 100


def parse_get_history(params: Params) -> tuple[str, int, int | None]:
    """GET_HISTORY: ``(instance_id, limit, before_offset)``; ``limit`` is 0..1000."""
    limit = opt_uint(params, "limit", MAX_HISTORY_LIMIT)
    return (
        req_str(params, "instance_id"),
        DEFAULT_HISTORY_LIMIT if limit is None else limit,
        opt_uint(params, "before_offset"),
    )


def parse_list_instances(params: Params) -> ListInstances:
    limit = opt_uint(params, "limit", UINT32_MAX)
    offset = opt_uint(params, "offset", UINT32_MAX)
    return ListInstances(
        opt_str(params, "machine"),
        opt_str(params, "state"),
        100 if limit is None else limit,
        0 if offset is None else offset,
    )


def parse_write(op: str, params: Params) -> WriteCommand:
    """The write command of a BATCH sub-op; other ops are refused (⚑S14)."""
    parser = _WRITE_PARSERS.get(op)
    if parser is None:
        allowed = ", ".join(_WRITE_PARSERS)
        raise BadRequest(
            f"invalid request: operation {op} is not allowed in a batch (allowed: {allowed})",
            {"op": op},
        )
    return parser(params)


_WRITE_PARSERS: dict[str, Callable[[Params], WriteCommand]] = {
    "CREATE_INSTANCE": parse_create_instance,
    "APPLY_EVENT": parse_apply_event,
    "DELETE_INSTANCE": parse_delete_instance,
}


class BatchOp(NamedTuple):
    op: str
    params: Params
    problem: str | None = None  # why the sub-op is malformed, reported per op


def parse_batch(params: Params) -> tuple[list[BatchOp], str]:
    """``(ops, mode)``; malformed sub-ops are kept and fail individually later."""
    ops = params.get("ops")
    if ops is None:
        raise _missing("ops")
    if not isinstance(ops, list):
        raise _wrong("ops", "an array")
    if len(ops) > MAX_BATCH_OPS:
        raise BadRequest(
            f"invalid request: batch size {len(ops)} exceeds limit {MAX_BATCH_OPS}",
            {"size": len(ops), "limit": MAX_BATCH_OPS},
        )
    mode = opt_str(params, "mode") or "best_effort"
    return [_batch_op(item) for item in ops], mode


def _batch_op(item: Any) -> BatchOp:
    if not isinstance(item, dict):
        return BatchOp("", {}, "batch op must be an object")
    op = item.get("op")
    sub = item.get("params")
    if not isinstance(op, str):
        return BatchOp("", {}, "batch op is missing 'op'")
    if sub is None:
        sub = {}
    if not isinstance(sub, dict):
        return BatchOp(op, {}, "batch op 'params' must be an object")
    return BatchOp(op, sub)


def parse_batch_op(item: BatchOp) -> WriteCommand:
    if item.problem is not None:
        raise BadRequest(f"invalid request: {item.problem}")
    return parse_write(item.op, item.params)
