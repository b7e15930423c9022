"""Property tests of the codecs: round trips under any chunking, robustness to garbage."""

from __future__ import annotations

import itertools
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pyrstmdb.protocol import (
    ClientCodec,
    Event,
    FramingError,
    InvalidMessage,
    Operation,
    Request,
    Response,
    ServerCodec,
    WireMode,
    ok_response,
    request_message,
)

MODES: list[WireMode] = ["binary_json", "jsonl"]

json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**64 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20)
)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner),
    max_leaves=8,
)
json_objects = st.dictionaries(st.text(max_size=8), json_values, max_size=5)

requests = st.builds(
    Request, id=st.text(max_size=12), op=st.sampled_from(list(Operation)), params=json_objects
)
responses = st.builds(
    lambda rid, result: Response(rid, True, result, None), st.text(max_size=12), json_objects
) | st.builds(
    lambda rid, msg: Response(
        rid, False, None, {"code": "BAD_REQUEST", "message": msg, "retryable": False}
    ),
    st.none() | st.text(max_size=12),
    st.text(max_size=30),
)
events = st.builds(
    lambda fields: Event({**fields, "type": "event"}),
    st.dictionaries(st.text(max_size=8), json_values),
)


def to_wire(message: Response | Event) -> dict[str, Any]:
    if isinstance(message, Event):
        return message.fields
    if message.ok:
        assert message.id is not None and message.result is not None
        return ok_response(message.id, message.result)
    return {"type": "response", "id": message.id, "status": "error", "error": message.error}


def chunked(data: st.DataObject, stream: bytes) -> list[bytes]:
    cuts = data.draw(st.lists(st.integers(0, len(stream)), max_size=12))
    bounds = [0, *sorted(cuts), len(stream)]
    return [stream[a:b] for a, b in itertools.pairwise(bounds)]


@pytest.mark.slow
@settings(max_examples=100, deadline=None)
@given(st.data(), st.lists(st.tuples(requests, st.sampled_from(MODES)), max_size=8))
def test_requests_roundtrip_in_any_mode_mix_and_chunking(
    data: st.DataObject, batch: list[tuple[Request, WireMode]]
) -> None:
    client, server = ClientCodec(), ServerCodec()
    stream = b""
    for request, mode in batch:
        client.output_mode = mode
        stream += client.encode(request_message(request.id, request.op, request.params))
    received: list[Request | InvalidMessage] = []
    for chunk in chunked(data, stream):
        received += server.feed(chunk)
    assert received == [request for request, _ in batch]
    assert server.buffered == 0


@pytest.mark.slow
@settings(max_examples=100, deadline=None)
@given(st.data(), st.lists(st.tuples(responses | events, st.sampled_from(MODES)), max_size=8))
def test_server_messages_roundtrip_in_any_mode_mix_and_chunking(
    data: st.DataObject, batch: list[tuple[Response | Event, WireMode]]
) -> None:
    server, client = ServerCodec(), ClientCodec()
    stream = b""
    for message, mode in batch:
        server.output_mode = mode
        stream += server.encode(to_wire(message))
    received: list[Response | Event] = []
    for chunk in chunked(data, stream):
        received += client.feed(chunk)
    assert received == [message for message, _ in batch]


def feed_all(codec: ServerCodec | ClientCodec, chunks: list[bytes]) -> None:
    try:
        for chunk in chunks:
            for message in codec.feed(chunk):
                assert isinstance(message, Request | InvalidMessage | Response | Event)
    except FramingError as exc:
        assert isinstance(exc.reason, str)


@settings(max_examples=200, deadline=None)
@given(st.data(), st.binary(max_size=200), st.booleans())
def test_random_bytes_yield_messages_or_framing_error(
    data: st.DataObject, garbage: bytes, as_server: bool
) -> None:
    codec = ServerCodec() if as_server else ClientCodec()
    feed_all(codec, chunked(data, garbage))


@settings(max_examples=200, deadline=None)
@given(
    st.data(),
    st.lists(st.tuples(requests, st.sampled_from(MODES)), min_size=1, max_size=4),
    st.booleans(),
)
@pytest.mark.slow
def test_mutated_streams_yield_messages_or_framing_error(
    data: st.DataObject, batch: list[tuple[Request, WireMode]], as_server: bool
) -> None:
    client = ClientCodec()
    stream = bytearray()
    for request, mode in batch:
        client.output_mode = mode
        stream += client.encode(request_message(request.id, request.op, request.params))
    edits = data.draw(
        st.lists(st.tuples(st.integers(0, len(stream) - 1), st.integers(0, 255)), max_size=6)
    )
    for index, value in edits:
        stream[index] = value
    cut = data.draw(st.integers(0, len(stream)))
    mutated = bytes(stream[:cut] + stream[cut + data.draw(st.integers(0, 3)) :])
    codec = ServerCodec() if as_server else ClientCodec()
    feed_all(codec, chunked(data, mutated))
