"""Codecs: mixed binary/JSONL input, output modes, chunking, the official client."""

from __future__ import annotations

import struct
import time
from typing import Any

import orjson
import pytest
from rstmdb.models import Operation as ClientOperation
from rstmdb.models import Request as ClientRequest
from rstmdb.models import Response as ClientResponse
from rstmdb.models import StreamEvent
from rstmdb.protocol import Frame

from pyrstmdb.protocol import (
    HEADER_SIZE,
    MAX_PAYLOAD,
    ClientCodec,
    Event,
    FramingError,
    InvalidMessage,
    MessageTooLarge,
    Operation,
    Request,
    Response,
    ServerCodec,
    StreamSplitter,
    crc32c,
    encode_frame,
    error_response,
    ok_response,
    request_message,
)


def req(request_id: str, op: str = "PING", **params: Any) -> bytes:
    return orjson.dumps(request_message(request_id, op, params))


def frame_without_crc(payload: bytes, extension: bytes = b"") -> bytes:
    head = struct.pack(">4sHHHII", b"RCPX", 1, 0, len(extension), len(payload), 0)
    return head + extension + payload


MIXED_STREAM = b"".join(
    [
        encode_frame(req("1", "HELLO", protocol_version=1)),
        req("2", "GET_INSTANCE", instance_id="o-1") + b"\n",
        b"\n\r\n  \t\n",
        req("3") + b"\r\n",
        frame_without_crc(req("4"), extension=b"{\n"),
        b'{"type":"request","id":"5","op":"NOPE"}\n',
        encode_frame(b"oops"),
        b'   {"type":"request","id":"7","op":"BYE","params":null}  \r\n',
    ]
)
MIXED_EXPECTED = [
    Request("1", Operation.HELLO, {"protocol_version": 1}),
    Request("2", Operation.GET_INSTANCE, {"instance_id": "o-1"}),
    Request("3", Operation.PING, {}),
    Request("4", Operation.PING, {}),
    InvalidMessage("5", "unknown op 'NOPE'"),
    "invalid-null",
    Request("7", Operation.BYE, {}),
]


def check_mixed(messages: list[Request | InvalidMessage]) -> None:
    assert len(messages) == len(MIXED_EXPECTED)
    for got, want in zip(messages, MIXED_EXPECTED, strict=True):
        if want == "invalid-null":
            assert isinstance(got, InvalidMessage)
            assert got.id is None
        else:
            assert got == want


def test_mixed_binary_and_jsonl_input_in_one_feed() -> None:
    codec = ServerCodec()
    check_mixed(codec.feed(MIXED_STREAM))
    assert codec.buffered == 0


def test_every_split_offset_gives_the_same_messages() -> None:
    for cut in range(len(MIXED_STREAM) + 1):
        codec = ServerCodec()
        check_mixed(codec.feed(MIXED_STREAM[:cut]) + codec.feed(MIXED_STREAM[cut:]))
        assert codec.buffered == 0


def test_byte_at_a_time() -> None:
    codec = ServerCodec()
    out: list[Request | InvalidMessage] = []
    for i in range(len(MIXED_STREAM)):
        out += codec.feed(MIXED_STREAM[i : i + 1])
    check_mixed(out)


def test_jsonl_only_input() -> None:
    codec = ServerCodec()
    lines = b"".join(req(str(i)) + b"\n" for i in range(5))
    assert codec.feed(lines) == [Request(str(i), Operation.PING, {}) for i in range(5)]


def test_incomplete_line_waits_for_newline() -> None:
    codec = ServerCodec()
    assert codec.feed(req("1")) == []
    assert codec.feed(b"\r") == []
    assert codec.feed(b"\n") == [Request("1", Operation.PING, {})]


def test_whitespace_only_input_is_consumed() -> None:
    codec = ServerCodec()
    assert codec.feed(b" \r\n\t\n" * 100) == []
    assert codec.buffered == 0


@pytest.mark.parametrize("first", [b"X", b"\x00", b"[", b"\xff", b"G", b"\x0b"])
def test_any_other_first_byte_is_bad_magic(first: bytes) -> None:
    with pytest.raises(FramingError, match="magic"):
        ServerCodec().feed(first)


def test_bad_magic_after_whitespace() -> None:
    with pytest.raises(FramingError, match="magic"):
        ServerCodec().feed(b"\n\n GET / HTTP/1.1\r\n")


def test_frame_faults_in_the_mixed_stream_raise_at_18_bytes() -> None:
    codec = ServerCodec()
    assert codec.feed(req("1") + b"\n") == [Request("1", Operation.PING, {})]
    head = struct.pack(">4sHHHII", b"RCPX", 1, 0x0001, 0, MAX_PAYLOAD + 1, 0)
    assert codec.feed(head[:17]) == []
    with pytest.raises(FramingError, match="payload length"):
        codec.feed(head[17:])


def test_fault_carries_requests_decoded_before_it() -> None:
    stream = encode_frame(req("1")) + req("2") + b"\n" + b"?"
    with pytest.raises(FramingError) as info:
        ServerCodec().feed(stream)
    assert info.value.decoded == [
        Request("1", Operation.PING, {}),
        Request("2", Operation.PING, {}),
    ]


def test_line_of_exactly_16_mib_is_accepted() -> None:
    codec = ServerCodec()
    body = b"{" + b" " * (MAX_PAYLOAD - 2) + b"}"
    assert codec.feed(body) == []
    assert codec.feed(b"\r") == []
    [message] = codec.feed(b"\n")
    assert isinstance(message, InvalidMessage)
    assert message.id is None


def test_line_over_16_mib_without_newline_is_fatal() -> None:
    codec = ServerCodec()
    assert codec.feed(b"{" + b"a" * (MAX_PAYLOAD - 1)) == []
    with pytest.raises(FramingError, match="line"):
        codec.feed(b"a")


def test_line_over_16_mib_with_newline_is_fatal() -> None:
    with pytest.raises(FramingError, match="line"):
        ServerCodec().feed(b"{" + b"a" * MAX_PAYLOAD + b"\n")


def test_official_client_frames_are_understood() -> None:
    codec = ServerCodec()
    params = {"machine": "order", "version": 1, "initial_ctx": {"n": 1}}
    wire = ClientRequest(id="2", op=ClientOperation.CREATE_INSTANCE, params=params)
    data = Frame(wire.model_dump_json().encode()).encode()
    data += Frame(req("3"), use_crc=False, header_extension=b"RCPX").encode()
    assert codec.feed(data) == [
        Request("2", Operation.CREATE_INSTANCE, params),
        Request("3", Operation.PING, {}),
    ]


def test_binary_output_is_decoded_by_the_official_client() -> None:
    codec = ServerCodec()
    assert codec.output_mode == "binary_json"
    data = codec.encode_many(
        [
            ok_response("1", {"pong": True}),
            {
                "type": "event",
                "subscription_id": "sub-1",
                "instance_id": "o-1",
                "machine": "m",
                "version": 1,
                "wal_offset": 5,
                "from_state": "a",
                "to_state": "b",
                "event": "GO",
                "payload": {"x": 1},
            },
        ]
    )
    first, rest = Frame.decode(data)
    second, rest = Frame.decode(rest)
    assert first is not None and second is not None and rest == b""
    assert ClientResponse.model_validate_json(first.payload).result == {"pong": True}
    assert StreamEvent.model_validate_json(second.payload).to_state == "b"
    assert data[:HEADER_SIZE][4:10] == b"\x00\x01\x00\x01\x00\x00"
    assert int.from_bytes(data[14:18], "big") == crc32c(first.payload)


def test_jsonl_output_and_switching_back() -> None:
    codec = ServerCodec()
    codec.output_mode = "jsonl"
    assert codec.encode(ok_response("1", {"pong": True})) == (
        b'{"type":"response","id":"1","status":"ok","result":{"pong":true}}\n'
    )
    assert codec.encode_many([ok_response("1", {}), ok_response("2", {})]).count(b"\n") == 2
    codec.output_mode = "binary_json"
    assert codec.encode(ok_response("1", {})).startswith(b"RCPX")


def test_unknown_output_mode_is_refused() -> None:
    codec = ServerCodec()
    with pytest.raises(ValueError):
        codec.output_mode = "xml"  # type: ignore[assignment]
    assert codec.output_mode == "binary_json"


def test_output_mode_does_not_change_input_decoding() -> None:
    codec = ServerCodec("jsonl")
    assert codec.feed(encode_frame(req("1")) + req("2") + b"\n") == [
        Request("1", Operation.PING, {}),
        Request("2", Operation.PING, {}),
    ]


@pytest.mark.parametrize("mode", ["binary_json", "jsonl"])
def test_message_over_16_mib_raises_message_too_large(mode: Any) -> None:
    codec = ServerCodec(mode)
    fits = {"x": "a" * (MAX_PAYLOAD - 8)}
    assert len(orjson.dumps(fits)) == MAX_PAYLOAD
    assert len(codec.encode(fits)) in (MAX_PAYLOAD + 1, MAX_PAYLOAD + HEADER_SIZE)
    with pytest.raises(MessageTooLarge):
        codec.encode({"x": "a" * (MAX_PAYLOAD - 7)})
    with pytest.raises(MessageTooLarge):
        codec.encode_many([ok_response("1", {}), {"x": "a" * MAX_PAYLOAD}])


def test_client_codec_roundtrip_in_both_modes() -> None:
    server, client = ServerCodec(), ClientCodec()
    error = {"code": "BAD_REQUEST", "message": "m", "retryable": False}
    event = {"type": "event", "subscription_id": "s", "payload": None}
    data = server.encode(ok_response("1", {"pong": True}))
    server.output_mode = "jsonl"
    data += server.encode_many([error_response(None, error), event])
    assert client.feed(data) == [
        Response("1", True, {"pong": True}, None),
        Response(None, False, None, error),
        Event(event),
    ]
    client.output_mode = "jsonl"
    sent = client.encode(request_message("9", "PING", {}))
    assert sent.endswith(b"\n")
    assert server.feed(sent) == [Request("9", Operation.PING, {})]


def test_client_codec_frames_are_byte_identical_to_the_official_client() -> None:
    message = request_message("1", "PING", {})
    assert ClientCodec().encode(message) == Frame(orjson.dumps(message)).encode()


@pytest.mark.parametrize("payload", [b"[1]", b"nope", b'{"type":"mystery"}'])
def test_client_codec_garbage_is_fatal(payload: bytes) -> None:
    good = ok_response("1", {})
    with pytest.raises(FramingError, match="invalid server message") as info:
        ClientCodec().feed(encode_frame(orjson.dumps(good)) + encode_frame(payload))
    assert info.value.decoded == [Response("1", True, {}, None)]


def test_client_codec_every_split_offset() -> None:
    server = ServerCodec()
    data = server.encode(ok_response("1", {"a": [1, 2]}))
    server.output_mode = "jsonl"
    data += server.encode(ok_response("2", {})) + server.encode({"type": "event", "n": 1})
    whole = ClientCodec().feed(data)
    assert len(whole) == 3
    for cut in range(len(data) + 1):
        client = ClientCodec()
        assert client.feed(data[:cut]) + client.feed(data[cut:]) == whole


def test_large_frame_in_64k_chunks_is_linear() -> None:
    payload = b'{"pad":"' + b"a" * (MAX_PAYLOAD - 10) + b'"}'
    data = encode_frame(payload) * 2
    line = payload + b"\n"
    for stream in (data, line * 2):
        splitter = StreamSplitter()
        start = time.perf_counter()
        out: list[bytes] = []
        for i in range(0, len(stream), 65536):
            out += splitter.feed(stream[i : i + 65536])
        assert out == [payload, payload]
        assert time.perf_counter() - start < 2.0


def test_burst_of_small_frames_is_linear() -> None:
    frame = encode_frame(req("1"))
    codec = ServerCodec()
    start = time.perf_counter()
    assert len(codec.feed(frame * 20_000)) == 20_000
    assert time.perf_counter() - start < 2.0
