"""The two SSE routes: ``GET /v1/events`` (WATCH_ALL) and
``GET /v1/instances/{id}/events/stream`` (WATCH_INSTANCE).

``Last-Event-ID`` (the offset of the last event the client received) resumes
after that offset and wins over ``from_offset`` (a browser's reconnect repeats
the URL). A ``from_offset`` in compacted history starts with a
``HISTORY_LOST`` notice naming the lost range. List filters are
comma-separated; ``instances`` narrows WATCH_ALL to those instance ids.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Header, Query, Request
from starlette.responses import StreamingResponse

from pyrstmdb.errors import BadRequest
from pyrstmdb.server.http import models
from pyrstmdb.server.http.routes import ERRORS, InstanceId, gateway
from pyrstmdb.server.http.sse import EventStream, frame, opening
from pyrstmdb.subscriptions import Hub
from pyrstmdb.subscriptions.filters import HISTORY_LOST

router = APIRouter()

SSE_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
SSE_RESPONSE: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "Server-Sent Events: `transition` events (id = WAL offset), notices",
        "content": {"text/event-stream": {"schema": {"type": "string"}}},
    },
    **ERRORS,
}
Offset = Annotated[int | None, Query(ge=0, le=models.UINT64_MAX)]
LastEventId = Annotated[
    str | None, Header(alias="Last-Event-ID", description="Resume after this WAL offset")
]
AccessToken = Annotated[
    str | None, Query(description="Bearer token, for clients that cannot send headers")
]


class FilteredStream(EventStream):
    """An event stream that passes only the events of some instances."""

    def __init__(self, hub: Hub, keepalive_secs: float, instances: frozenset[str]) -> None:
        super().__init__(hub, keepalive_secs)
        self._instances = instances

    def send_event(self, message: dict[str, Any]) -> None:
        if message.get("type") == "event" and message["instance_id"] not in self._instances:
            return
        super().send_event(message)


def _split(value: str | None) -> list[str]:
    return [] if value is None else [part for part in value.split(",") if part]


def resume_offset(last_event_id: str | None, from_offset: int | None) -> int | None:
    """Where the stream starts: after ``Last-Event-ID`` if given, else ``from_offset``."""
    if last_event_id is None or not last_event_id.strip():
        return from_offset
    text = last_event_id.strip()
    if not text.isdigit() or len(text) > 20:
        raise BadRequest(
            f"invalid request: Last-Event-ID must be a WAL offset, got {last_event_id!r}",
            {"header": "Last-Event-ID"},
        )
    return int(text) + 1


def _lost(result: dict[str, Any], from_offset: int | None) -> list[bytes]:
    if from_offset is None or not result.get("history_truncated"):
        return []
    notice = {
        "type": "notice",
        "subscription_id": result["subscription_id"],
        "code": HISTORY_LOST,
        "lost_from": from_offset,
        "resumed_at": result["history_start"],
    }
    return [frame(notice)]


def _hub(request: Request) -> Hub:
    hub: Hub = request.app.state.hub
    return hub


def _respond(request: Request, stream: EventStream, first: list[bytes]) -> StreamingResponse:
    streams: set[EventStream] = request.app.state.streams
    streams.add(stream)

    async def body() -> Any:
        try:
            async for chunk in stream.body(first):
                yield chunk
        finally:
            streams.discard(stream)

    return StreamingResponse(body(), media_type="text/event-stream", headers=SSE_HEADERS)


@router.get("/v1/events", response_class=StreamingResponse, responses=SSE_RESPONSE, tags=["events"])
async def watch_all(
    request: Request,
    machines: str | None = None,
    instances: str | None = None,
    from_states: str | None = None,
    to_states: str | None = None,
    events: str | None = None,
    from_offset: Offset = None,
    include_ctx: bool = True,
    last_event_id: LastEventId = None,
    access_token: AccessToken = None,
) -> StreamingResponse:
    """Every applied event passing the filters, live, as SSE (WATCH_ALL)."""
    start = resume_offset(last_event_id, from_offset)
    hub = _hub(request)
    keepalive = request.app.state.keepalive_secs
    wanted = frozenset(_split(instances))
    stream = FilteredStream(hub, keepalive, wanted) if wanted else EventStream(hub, keepalive)
    lists = (_split(machines), _split(from_states), _split(to_states), _split(events))
    result = hub.watch_all(stream, *lists, include_ctx, start)
    hub.activate(stream, str(result["subscription_id"]))
    return _respond(request, stream, [opening(result), *_lost(result, start)])


@router.get(
    "/v1/instances/{instance_id}/events/stream",
    response_class=StreamingResponse,
    responses=SSE_RESPONSE,
    tags=["events"],
)
async def watch_instance(
    request: Request,
    instance_id: InstanceId,
    include_ctx: bool = True,
    from_offset: Offset = None,
    last_event_id: LastEventId = None,
    access_token: AccessToken = None,
) -> StreamingResponse:
    """One instance's applied events, live, as SSE (WATCH_INSTANCE)."""
    start = resume_offset(last_event_id, from_offset)
    hub = _hub(request)
    stream = EventStream(hub, request.app.state.keepalive_secs)
    result = hub.watch_instance(stream, instance_id, include_ctx, start)
    subscription_id = str(result["subscription_id"])
    try:
        await gateway(request).visible(int(result["current_wal_offset"]))
    except BaseException:
        hub.unwatch(stream, subscription_id)
        raise
    hub.activate(stream, subscription_id)
    return _respond(request, stream, [opening(result), *_lost(result, start)])
