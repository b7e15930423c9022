"""The routes of the HTTP API (HTTP §2): path, query and body to RCP params and back.

Each route builds the params of its RCP operation and runs it through the
:class:`~pyrstmdb.server.http.gateway.Gateway`; the JSON answer is the RCP
result object as the handler built it (the response models document it).
Headers: ``Idempotency-Key`` becomes ``idempotency_key``, ``If-Match`` on an
event becomes ``expected_wal_offset``, and instance reads carry
``ETag: "<last_wal_offset>"``. The two SSE routes live in
:mod:`pyrstmdb.server.http.streams`.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

import orjson
from fastapi import APIRouter, Header, Path, Query, Request
from starlette.responses import Response

from pyrstmdb import diagram
from pyrstmdb.engine.commands import MAX_HISTORY_LIMIT
from pyrstmdb.errors import BadRequest
from pyrstmdb.protocol import Operation
from pyrstmdb.server.http import models
from pyrstmdb.server.http.gateway import Gateway

router = APIRouter()

ERRORS: dict[int | str, dict[str, Any]] = {
    status: {"model": models.ErrorBody, "description": description}
    for status, description in (
        (400, "Bad request: malformed JSON, wrong types, unknown fields, invalid values"),
        (401, "Missing or wrong bearer token (UNAUTHORIZED, AUTH_FAILED)"),
        (404, "Unknown route, machine or instance"),
        (409, "Already exists, or a conflicting expectation (CONFLICT)"),
        (422, "Invalid transition, failed guard, version limit"),
        (500, "Internal error"),
        (503, "The write-ahead log failed (WAL_IO_ERROR); retry"),
    )
}

MachineName = Annotated[str, Path(description="Machine name")]
Version = Annotated[int, Path(ge=0, le=models.UINT32_MAX, description="Machine version")]
InstanceId = Annotated[str, Path(description="Instance id")]
DiagramFormat = Literal["mermaid", "dot"]
IdempotencyKey = Annotated[
    str | None, Header(alias="Idempotency-Key", description="The operation's idempotency_key")
]


def gateway(request: Request) -> Gateway:
    found: Gateway = request.app.state.gateway
    return found


def json(result: dict[str, Any], status: int = 200, etag: int | None = None) -> Response:
    headers = None if etag is None else {"ETag": f'"{etag}"'}
    return Response(orjson.dumps(result), status, headers, media_type="application/json")


def _given(**params: Any) -> dict[str, Any]:
    """The parameters that were given: those that are not ``None``."""
    return {key: value for key, value in params.items() if value is not None}


def _with_key(params: dict[str, Any], key: str | None) -> dict[str, Any]:
    if key is not None:
        params["idempotency_key"] = key
    return params


def parse_if_match(value: str | None) -> int | None:
    """``"<wal_offset>"`` (quoted, or weak ``W/"…"``) as an offset; ``*`` means no check."""
    if value is None or value.strip() == "*":
        return None
    text = value.strip()
    if text.startswith("W/"):
        text = text[2:]
    if len(text) >= 2 and text[0] == text[-1] == '"':
        text = text[1:-1]
    if not text.isdigit() or len(text) > 20:
        raise BadRequest(
            f'invalid request: If-Match must be a quoted WAL offset like "42", got {value!r}',
            {"header": "If-Match"},
        )
    return int(text)


# -- machines -----------------------------------------------------------------------------


@router.get("/v1/machines", response_model=models.ListMachines, responses=ERRORS, tags=["machines"])
async def list_machines(request: Request) -> Response:
    """Every machine and its versions (LIST_MACHINES)."""
    return json(await gateway(request).call(Operation.LIST_MACHINES, {}))


@router.put(
    "/v1/machines/{machine}/versions/{version}",
    response_model=models.PutMachine,
    status_code=201,
    responses={200: {"model": models.PutMachine, "description": "Same definition again"}, **ERRORS},
    tags=["machines"],
)
async def put_machine(
    request: Request, machine: MachineName, version: Version, body: models.MachineDefinitionBody
) -> Response:
    """Register a machine version (PUT_MACHINE); the body is the definition."""
    definition = body.model_dump(by_alias=True, exclude_unset=True)
    params = {"machine": machine, "version": version, "definition": definition}
    result = await gateway(request).call(Operation.PUT_MACHINE, params)
    return json(result, 201 if result.get("created") else 200)


@router.get(
    "/v1/machines/{machine}/versions/{version}",
    response_model=models.GetMachine,
    responses=ERRORS,
    tags=["machines"],
)
async def get_machine(request: Request, machine: MachineName, version: Version) -> Response:
    """A machine version's normalized definition and checksum (GET_MACHINE)."""
    params = {"machine": machine, "version": version}
    return json(await gateway(request).call(Operation.GET_MACHINE, params))


@router.get(
    "/v1/machines/{machine}/versions/{version}/diagram",
    response_class=Response,
    responses={
        200: {
            "description": "The state diagram as Mermaid or Graphviz DOT text",
            "content": {
                media: {"schema": {"type": "string"}} for media in diagram.FORMATS.values()
            },
        },
        **ERRORS,
    },
    tags=["machines"],
)
async def machine_diagram(
    request: Request,
    machine: MachineName,
    version: Version,
    fmt: Annotated[DiagramFormat, Query(alias="format", description="mermaid or dot")] = "mermaid",
) -> Response:
    """A machine version's state diagram as text (states, initial marked, labelled edges)."""
    params = {"machine": machine, "version": version}
    result = await gateway(request).call(Operation.GET_MACHINE, params)
    text = diagram.render(result["definition"], fmt, f"{machine} v{version}")
    return Response(text, 200, media_type=diagram.FORMATS[fmt])


# -- instances ----------------------------------------------------------------------------


@router.post(
    "/v1/instances",
    response_model=models.CreateInstance,
    status_code=201,
    responses=ERRORS,
    tags=["instances"],
)
async def create_instance(
    request: Request, body: models.CreateInstanceBody, idempotency_key: IdempotencyKey = None
) -> Response:
    """Create an instance in its machine's initial state (CREATE_INSTANCE)."""
    params = _with_key(body.model_dump(exclude_none=True), idempotency_key)
    return json(await gateway(request).call(Operation.CREATE_INSTANCE, params), 201)


@router.get(
    "/v1/instances", response_model=models.ListInstances, responses=ERRORS, tags=["instances"]
)
async def list_instances(
    request: Request,
    machine: str | None = None,
    state: str | None = None,
    limit: Annotated[int | None, Query(ge=0, le=models.UINT32_MAX)] = None,
    offset: Annotated[int | None, Query(ge=0, le=models.UINT32_MAX)] = None,
) -> Response:
    """Live instances in creation order, filtered and paged (LIST_INSTANCES)."""
    params = _given(machine=machine, state=state, limit=limit, offset=offset)
    return json(await gateway(request).call(Operation.LIST_INSTANCES, params))


@router.get(
    "/v1/instances/{instance_id}",
    response_model=models.GetInstance,
    responses=ERRORS,
    tags=["instances"],
)
async def get_instance(request: Request, instance_id: InstanceId) -> Response:
    """An instance's state and context (GET_INSTANCE); ``ETag`` is its last WAL offset."""
    result = await gateway(request).call(Operation.GET_INSTANCE, {"instance_id": instance_id})
    return json(result, etag=int(result["last_wal_offset"]))


@router.delete(
    "/v1/instances/{instance_id}",
    response_model=models.DeleteInstance,
    responses=ERRORS,
    tags=["instances"],
)
async def delete_instance(
    request: Request, instance_id: InstanceId, idempotency_key: IdempotencyKey = None
) -> Response:
    """Delete an instance (DELETE_INSTANCE); its history stays readable."""
    params = _with_key({"instance_id": instance_id}, idempotency_key)
    return json(await gateway(request).call(Operation.DELETE_INSTANCE, params))


@router.post(
    "/v1/instances/{instance_id}/events",
    response_model=models.ApplyEvent,
    responses=ERRORS,
    tags=["instances"],
)
async def apply_event(
    request: Request,
    instance_id: InstanceId,
    body: models.ApplyEventBody,
    idempotency_key: IdempotencyKey = None,
    if_match: Annotated[
        str | None, Header(alias="If-Match", description='"<wal_offset>": expected_wal_offset')
    ] = None,
) -> Response:
    """Apply an event (APPLY_EVENT); ``ETag`` of the answer is the new WAL offset."""
    params = _with_key(body.model_dump(exclude_none=True), idempotency_key)
    params["instance_id"] = instance_id
    expected = parse_if_match(if_match)
    if expected is not None:
        given = params.get("expected_wal_offset")
        if given is not None and given != expected:
            raise BadRequest(
                "invalid request: If-Match and expected_wal_offset disagree",
                {"if_match": expected, "expected_wal_offset": given},
            )
        params["expected_wal_offset"] = expected
    result = await gateway(request).call(Operation.APPLY_EVENT, params)
    return json(result, etag=int(result["wal_offset"]))


@router.get(
    "/v1/instances/{instance_id}/history",
    response_model=models.History,
    responses=ERRORS,
    tags=["instances"],
)
async def get_history(
    request: Request,
    instance_id: InstanceId,
    limit: Annotated[int, Query(ge=0, le=MAX_HISTORY_LIMIT)] = 100,
    before_offset: Annotated[int | None, Query(ge=0, le=models.UINT64_MAX)] = None,
) -> Response:
    """The instance's newest history entries, oldest first (GET_HISTORY); also after delete."""
    params = _given(instance_id=instance_id, limit=limit, before_offset=before_offset)
    return json(await gateway(request).call(Operation.GET_HISTORY, params))


@router.post(
    "/v1/instances/{instance_id}/snapshot",
    response_model=models.Snapshot,
    responses=ERRORS,
    tags=["instances"],
)
async def snapshot_instance(request: Request, instance_id: InstanceId) -> Response:
    """Write a snapshot of one instance (SNAPSHOT_INSTANCE)."""
    params = {"instance_id": instance_id}
    return json(await gateway(request).call(Operation.SNAPSHOT_INSTANCE, params))


@router.post("/v1/batch", response_model=models.Batch, responses=ERRORS, tags=["instances"])
async def batch(request: Request, body: models.BatchBody) -> Response:
    """Several writes, atomically or best effort (BATCH)."""
    params = body.model_dump()
    return json(await gateway(request).call(Operation.BATCH, params))


# -- storage ------------------------------------------------------------------------------


@router.get("/v1/wal", response_model=models.WalRead, responses=ERRORS, tags=["storage"])
async def wal_read(
    request: Request,
    from_offset: Annotated[int, Query(ge=0, le=models.UINT64_MAX)] = 0,
    limit: Annotated[int | None, Query(ge=0, le=models.UINT64_MAX)] = None,
) -> Response:
    """Raw log records from an offset (WAL_READ)."""
    params = _given(from_offset=from_offset, limit=limit)
    return json(await gateway(request).call(Operation.WAL_READ, params))


@router.get("/v1/wal/stats", response_model=models.WalStats, responses=ERRORS, tags=["storage"])
async def wal_stats(request: Request) -> Response:
    """Log size, segments and I/O counters (WAL_STATS)."""
    return json(await gateway(request).call(Operation.WAL_STATS, {}))


@router.post("/v1/admin/compact", response_model=models.Compact, responses=ERRORS, tags=["storage"])
async def compact(request: Request, body: models.CompactBody | None = None) -> Response:
    """Checkpoint the state and delete the log segments it covers (COMPACT)."""
    force = False if body is None else body.force_snapshot
    return json(await gateway(request).call(Operation.COMPACT, {"force_snapshot": force}))
