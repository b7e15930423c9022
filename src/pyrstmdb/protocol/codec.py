"""Sans-I/O codecs: bytes in, messages out; messages in, bytes out.

Input is accepted in both encodings on the same connection, decided per
message by its first byte::

    'R'               a binary frame (see frame.py)
    '{'               a JSON line, up to '\\n' ('\\r\\n' tolerated), at most 16 MiB
    ' ' \\t \\r \\n      skipped between messages
    anything else     bad magic (fatal)

Output uses the codec's ``output_mode``: ``"binary_json"`` (one frame per
message) or ``"jsonl"`` (compact JSON plus ``'\\n'``); it may be switched at any
time and applies to the next ``encode``.

This module owns :class:`StreamSplitter` (payloads out of the mixed stream),
:class:`ServerCodec` and :class:`ClientCodec`. ``feed`` raises
:class:`~pyrstmdb.protocol.frame.FramingError` for faults that end the
connection; ``encode`` raises :class:`~pyrstmdb.protocol.frame.MessageTooLarge`
for a message over 16 MiB and ``orjson.JSONEncodeError`` (a ``TypeError``) for a
value JSON cannot represent.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from typing import Any, Literal, TypeVar, get_args

import orjson

from pyrstmdb.protocol.frame import (
    MAX_PAYLOAD,
    Buffer,
    FrameDecoder,
    FramingError,
    MessageTooLarge,
    encode_frame,
    split_frame,
)
from pyrstmdb.protocol.messages import (
    Event,
    InvalidMessage,
    Notice,
    Request,
    Response,
    parse_request,
    parse_server_message,
)

WireMode = Literal["binary_json", "jsonl"]
WIRE_MODES: tuple[WireMode, ...] = get_args(WireMode)

_FRAME_START = ord("R")
_LINE_START = ord("{")
_NEWLINE = b"\n"
_CR = 0x0D
_WHITESPACE = frozenset(b" \t\r\n")
_NOT_WHITESPACE = re.compile(rb"[^ \t\r\n]")

T = TypeVar("T")


class StreamSplitter(FrameDecoder):
    """Payloads out of a stream that mixes binary frames and JSON lines.

    After a :class:`FramingError` the splitter must not be used again.
    """

    def __init__(self) -> None:
        super().__init__()
        self._line_scanned = 0  # bytes of the pending JSON line known to hold no '\n'

    def _split(self, buf: bytes | bytearray, pos: int) -> tuple[bytes | None, int]:
        first = buf[pos]
        if first == _FRAME_START:
            return split_frame(buf, pos)
        if first == _LINE_START:
            return self._split_line(buf, pos)
        if first in _WHITESPACE:
            found = _NOT_WHITESPACE.search(buf, pos)
            return None, len(buf) if found is None else found.start()
        raise FramingError(f"bad magic: message starts with byte 0x{first:02x}")

    def _split_line(self, buf: bytes | bytearray, pos: int) -> tuple[bytes | None, int]:
        newline = buf.find(_NEWLINE, pos + self._line_scanned)
        if newline < 0:
            self._line_scanned = len(buf) - pos
            pending = self._line_scanned - (buf[-1] == _CR)
            if pending > MAX_PAYLOAD:
                raise FramingError(f"JSON line longer than {MAX_PAYLOAD} bytes")
            return None, pos
        self._line_scanned = 0
        end = newline - 1 if buf[newline - 1] == _CR else newline
        if end - pos > MAX_PAYLOAD:
            raise FramingError(f"JSON line longer than {MAX_PAYLOAD} bytes")
        return bytes(buf[pos:end]), newline + 1


class _Codec:
    """What both directions share: the input splitter and the output encoding."""

    def __init__(self, output_mode: WireMode = "binary_json") -> None:
        self._splitter = StreamSplitter()
        self._output_mode: WireMode = "binary_json"
        self.output_mode = output_mode

    @property
    def output_mode(self) -> WireMode:
        """The encoding of outgoing messages: ``"binary_json"`` or ``"jsonl"``."""
        return self._output_mode

    @output_mode.setter
    def output_mode(self, mode: WireMode) -> None:
        if mode not in WIRE_MODES:
            raise ValueError(f"unknown wire mode {mode!r}")
        self._output_mode = mode

    @property
    def buffered(self) -> int:
        """Bytes received but not yet part of a complete message."""
        return self._splitter.buffered

    @property
    def pending_size(self) -> int:
        """Size of the unfinished message: announced by its frame header, else held so far."""
        return self._splitter.pending_size

    def encode(self, message: dict[str, Any]) -> bytes:
        """``message`` as bytes in the current output mode."""
        payload = orjson.dumps(message)
        if self._output_mode == "jsonl":
            if len(payload) > MAX_PAYLOAD:
                raise MessageTooLarge(len(payload))
            return payload + _NEWLINE
        return encode_frame(payload)

    def encode_many(self, messages: Iterable[dict[str, Any]]) -> bytes:
        """Several messages concatenated, for one write.

        Raises :class:`MessageTooLarge` if any of them is too large; nothing is
        returned then, so the caller may encode them one by one instead.
        """
        return b"".join([self.encode(message) for message in messages])

    def _feed(self, data: Buffer, parse: Callable[[bytes], T]) -> list[T]:
        try:
            payloads = self._splitter.feed(data)
        except FramingError as exc:
            exc.decoded = _parse_all(exc.decoded, parse)
            raise
        return _parse_all(payloads, parse)


def _parse_all(payloads: list[bytes], parse: Callable[[bytes], T]) -> list[T]:
    """Parse in order; a FramingError from ``parse`` carries what came before it."""
    messages: list[T] = []
    try:
        for payload in payloads:
            messages.append(parse(payload))
    except FramingError as exc:
        exc.decoded = messages
        raise
    return messages


class ServerCodec(_Codec):
    """The server's side of one connection.

    ``feed`` returns requests and invalid messages (to be answered with
    ``BAD_REQUEST``) in arrival order. On :class:`FramingError` the connection
    must be closed; the error's ``decoded`` lists the messages that were
    complete before the fault in the same call.
    """

    def feed(self, data: Buffer) -> list[Request | InvalidMessage]:
        return self._feed(data, parse_request)


def _parse_for_client(payload: bytes) -> Response | Event | Notice:
    try:
        return parse_server_message(payload)
    except ValueError as exc:
        raise FramingError(f"invalid server message: {exc}") from exc


class ClientCodec(_Codec):
    """The client's side of one connection.

    ``feed`` returns responses and events in arrival order and raises
    :class:`FramingError` for a broken stream or a message that is neither a
    response nor an event.
    """

    def feed(self, data: Buffer) -> list[Response | Event | Notice]:
        return self._feed(data, _parse_for_client)
