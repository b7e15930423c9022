"""The RCPX binary frame: header layout, CRC32C, encoding and incremental decoding.

Every message of the ``binary_json`` wire mode travels in one frame. Integers are
unsigned big-endian::

    offset  size        field         rule
    ------  ----------  ------------  ---------------------------------------------
         0  4           magic         ASCII "RCPX" (52 43 50 58)
         4  2           version       must be 1
         6  2           flags         bits outside 0x000F are an error
         8  2           header_len    length of the header extension
        10  4           payload_len   at most 16 MiB (16 777 216), inclusive
        14  4           crc32c        CRC32C of the payload; 0 when CRC_PRESENT is clear
        18  header_len  extension     reserved: skipped on input, never sent
     18+hl  payload_len payload       one UTF-8 JSON object

    flags: 0x0001 CRC_PRESENT (verify crc32c)   0x0002 COMPRESSED (ignored)
           0x0004 STREAM (ignored)              0x0008 END_STREAM (ignored)

Frames written here always carry version 1, flags ``CRC_PRESENT``, no extension
and a valid CRC.

This module owns the layout constants, :func:`crc32c`, :func:`encode_frame`,
:func:`split_frame` (one frame out of a buffer) and :class:`FrameDecoder` (frames
out of a byte stream, telling how large the unfinished one will be). It raises
:class:`FramingError` for every fault that ends a connection (bad magic, version,
flag bits, oversized payload, CRC mismatch) and its subclass
:class:`MessageTooLarge` when a payload is too large to be framed.
The header faults are reported as soon as the 18 header bytes are present (a bad
magic even earlier), never after waiting for the payload; a CRC mismatch is
necessarily reported once the payload is complete.
"""

from __future__ import annotations

import struct
from typing import Any

import crc32c as _crc32c

MAGIC = b"RCPX"
VERSION = 1

HEADER = struct.Struct(">4sHHHII")  # magic, version, flags, header_len, payload_len, crc32c
HEADER_SIZE = 18
assert HEADER.size == HEADER_SIZE
_SIZES = struct.Struct(">HI")  # header_len, payload_len at offset 8

MAX_PAYLOAD = 16 * 1024 * 1024

FLAG_CRC_PRESENT = 0x0001
FLAG_COMPRESSED = 0x0002
FLAG_STREAM = 0x0004
FLAG_END_STREAM = 0x0008
FLAG_MASK = 0x000F

Buffer = bytes | bytearray | memoryview


class FramingError(Exception):
    """A fault in the byte stream itself; the connection cannot continue.

    ``reason`` is a short human-readable description. ``decoded`` holds the
    messages that were complete before the fault within the same ``feed`` call
    (the receiver may still process them before closing).
    """

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason
        self.decoded: list[Any] = []


class MessageTooLarge(FramingError):
    """An outgoing message does not fit the 16 MiB payload limit.

    Nothing was written; the connection itself is intact, so the sender may
    answer with an error instead.
    """

    def __init__(self, size: int, limit: int = MAX_PAYLOAD) -> None:
        super().__init__(f"message of {size} bytes exceeds the limit of {limit} bytes")
        self.size = size
        self.limit = limit


def crc32c(data: Buffer) -> int:
    """CRC32C (Castagnoli) of ``data``; ``crc32c(b"123456789") == 0xE3069283``."""
    return int(_crc32c.crc32c(data))


def encode_frame(payload: bytes) -> bytes:
    """One frame around ``payload``: version 1, CRC_PRESENT, no extension.

    Raises :class:`MessageTooLarge` when the payload exceeds :data:`MAX_PAYLOAD`.
    """
    size = len(payload)
    if size > MAX_PAYLOAD:
        raise MessageTooLarge(size)
    return HEADER.pack(MAGIC, VERSION, FLAG_CRC_PRESENT, 0, size, crc32c(payload)) + payload


def check_magic_prefix(buf: Buffer, pos: int) -> None:
    """Raise on a bad magic among the (possibly fewer than 4) bytes present at ``pos``."""
    present = bytes(buf[pos : pos + len(MAGIC)])
    if not MAGIC.startswith(present):
        raise FramingError(f"bad magic {present!r}")


def _header_fault(magic: bytes, version: int, flags: int, payload_len: int) -> FramingError:
    if magic != MAGIC:
        return FramingError(f"bad magic {magic!r}")
    if version != VERSION:
        return FramingError(f"unsupported frame version {version}")
    if flags & ~FLAG_MASK:
        return FramingError(f"unknown frame flags 0x{flags:04x}")
    return FramingError(f"payload length {payload_len} exceeds the limit of {MAX_PAYLOAD}")


def split_frame(buf: Buffer, pos: int) -> tuple[bytes | None, int]:
    """Take the frame that starts at ``buf[pos]``.

    Returns ``(payload, end)`` with ``end`` the offset just past the frame, or
    ``(None, pos)`` while the frame is incomplete. Raises :class:`FramingError`
    as soon as the bytes present show a fault.
    """
    if len(buf) - pos < HEADER_SIZE:
        check_magic_prefix(buf, pos)
        return None, pos
    magic, version, flags, header_len, payload_len, crc = HEADER.unpack_from(buf, pos)
    if magic != MAGIC or version != VERSION or flags & ~FLAG_MASK or payload_len > MAX_PAYLOAD:
        raise _header_fault(magic, version, flags, payload_len)
    start = pos + HEADER_SIZE + header_len
    end = start + payload_len
    if len(buf) < end:
        return None, pos
    payload = bytes(buf[start:end])
    if flags & FLAG_CRC_PRESENT and crc32c(payload) != crc:
        raise FramingError("payload CRC32C mismatch")
    return payload, end


class FrameDecoder:
    """Frames out of a byte stream that carries nothing but frames.

    ``feed`` takes any chunking of the stream and returns the payloads of the
    messages it completed, in order. Bytes are buffered only while a message is
    incomplete, so a burst of small frames and a large frame arriving in many
    chunks both cost time linear in their size. After a :class:`FramingError`
    the decoder must not be used again.
    """

    def __init__(self) -> None:
        self._buf = bytearray()

    @property
    def buffered(self) -> int:
        """Bytes received but not yet part of a complete message."""
        return len(self._buf)

    @property
    def pending_size(self) -> int:
        """Size the unfinished message will reach: what its header announces, if known.

        ``0`` when nothing is pending; the bytes held so far while the size is unknown.
        A receiver may refuse a message by this size before buffering it.
        """
        buf = self._buf
        if len(buf) < HEADER_SIZE or buf[0] != MAGIC[0]:
            return len(buf)
        header_len, payload_len = _SIZES.unpack_from(buf, 8)
        size: int = HEADER_SIZE + header_len + payload_len
        return size

    def feed(self, data: Buffer) -> list[bytes]:
        buf: bytes | bytearray
        if self._buf:
            self._buf += data
            buf = self._buf
        else:
            buf = data if isinstance(data, bytes) else bytes(data)
        payloads: list[bytes] = []
        pos = self._split_all(buf, payloads)
        if buf is self._buf:
            del self._buf[:pos]
        elif pos < len(buf):
            self._buf += memoryview(buf)[pos:]
        return payloads

    def _split_all(self, buf: bytes | bytearray, payloads: list[bytes]) -> int:
        """Append every complete payload; return the offset of the first unused byte."""
        pos = 0
        size = len(buf)
        try:
            while pos < size:
                payload, after = self._split(buf, pos)
                if payload is not None:
                    payloads.append(payload)
                elif after == pos:
                    break
                pos = after
        except FramingError as exc:
            exc.decoded = list(payloads)
            raise
        return pos

    def _split(self, buf: bytes | bytearray, pos: int) -> tuple[bytes | None, int]:
        """The next payload at ``pos`` and the offset after it; ``None`` to skip or wait.

        Returning ``(None, pos)`` means the message at ``pos`` is incomplete;
        ``(None, later)`` skips the bytes up to ``later``.
        """
        return split_frame(buf, pos)
