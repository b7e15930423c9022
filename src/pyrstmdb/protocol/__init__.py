"""The sans-I/O wire protocol of pyrstmdb: frames, JSON lines, message envelopes.

No sockets and no event loop live here: feed received bytes to a codec to get
messages; hand messages to a codec to get the bytes to send. Framing faults
raise :class:`FramingError` (connection-fatal); an outgoing message over 16 MiB
raises :class:`MessageTooLarge`.
"""

from pyrstmdb.protocol.codec import (
    WIRE_MODES,
    ClientCodec,
    ServerCodec,
    StreamSplitter,
    WireMode,
)
from pyrstmdb.protocol.frame import (
    FLAG_CRC_PRESENT,
    FLAG_MASK,
    HEADER,
    HEADER_SIZE,
    MAGIC,
    MAX_PAYLOAD,
    VERSION,
    FrameDecoder,
    FramingError,
    MessageTooLarge,
    crc32c,
    encode_frame,
    split_frame,
)
from pyrstmdb.protocol.messages import (
    EXTENSION_OPERATIONS,
    Event,
    InvalidMessage,
    Notice,
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

__all__ = [
    "EXTENSION_OPERATIONS",
    "FLAG_CRC_PRESENT",
    "FLAG_MASK",
    "HEADER",
    "HEADER_SIZE",
    "MAGIC",
    "MAX_PAYLOAD",
    "VERSION",
    "WIRE_MODES",
    "ClientCodec",
    "Event",
    "FrameDecoder",
    "FramingError",
    "InvalidMessage",
    "MessageTooLarge",
    "Notice",
    "Operation",
    "Request",
    "Response",
    "ServerCodec",
    "StreamSplitter",
    "WireMode",
    "crc32c",
    "encode_frame",
    "error_response",
    "invalid_message_response",
    "ok_response",
    "parse_request",
    "parse_server_message",
    "request_message",
    "split_frame",
]
