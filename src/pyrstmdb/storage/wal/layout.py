"""The WAL byte layout: record header, type codes, encoded offsets, segment names.

This module owns every constant of the on-disk format (STORAGE §2-§4). It is pure:
no I/O; the helpers raise ``ValueError`` on impossible arguments.

A segment is a file named ``<segment id as 16 lowercase hex digits>.wal``. It holds
records back to back from byte 0, with no file header and no padding. One record::

    byte 0        4      5      6          8           12          16               24
         +--------+------+------+----------+-----------+-----------+----------------+----------
         | magic  | type | flags| reserved |  length   |  crc32c   |    sequence    | payload
         | "WLOG" |  u8  | u8=0 |  u16=0   |    u32    |    u32    |      u64       | (length
         |        |      |      |          | <= 16 MiB | of payload|                |  bytes)
         +--------+------+------+----------+-----------+-----------+----------------+----------

All integers are big-endian. The checksum is CRC-32C (Castagnoli) of the payload only.
The reserved field is not checked when reading; the flags are written as 0.

An encoded offset names the byte where a record's header starts::

    bit 63                  40 39                                            0
        +--------------------+-----------------------------------------------+
        |     segment id     |          byte position inside the segment     |
        +--------------------+-----------------------------------------------+

The first record ever written is at ``1 << 40``; the head (where the next record goes) is
``(active segment id << 40) | active segment size``.
"""

from __future__ import annotations

import re
import struct
from typing import Final

#: magic, type, flags, reserved, length, crc32c, sequence (magic read as an integer).
HEADER: Final = struct.Struct(">IBBHIIQ")
HEADER_SIZE: Final = 24
assert HEADER.size == HEADER_SIZE

MAGIC_BYTES: Final = b"WLOG"
MAGIC: Final = int.from_bytes(MAGIC_BYTES, "big")
assert MAGIC == 0x574C4F47

#: The largest payload a record may carry (16 MiB).
MAX_PAYLOAD: Final = 16 * 1024 * 1024

#: Record type codes (STORAGE §3.2). 255 is a no-op the reference never writes; a reader
#: treats it, like any other code outside this table, as damage.
TYPE_NAMES: Final = {
    1: "put_machine",
    2: "create_instance",
    3: "apply_event",
    4: "delete_instance",
    5: "snapshot",
    6: "checkpoint",
}
TYPE_CODES: Final = frozenset(TYPE_NAMES)

POSITION_BITS: Final = 40
POSITION_MASK: Final = (1 << POSITION_BITS) - 1

FIRST_SEGMENT_ID: Final = 1
FIRST_SEQUENCE: Final = 1
DEFAULT_SEGMENT_SIZE: Final = 64 * 1024 * 1024

SEGMENT_SUFFIX: Final = ".wal"
SEGMENT_NAME: Final = re.compile(r"[0-9a-f]{16}\.wal")
BROKEN_SUFFIX: Final = ".broken"


def encode_offset(segment_id: int, position: int) -> int:
    """The encoded offset of byte ``position`` of segment ``segment_id``."""
    if segment_id < 0 or not 0 <= position <= POSITION_MASK:
        raise ValueError(f"no offset for segment {segment_id} position {position}")
    return (segment_id << POSITION_BITS) | position


def offset_segment(offset: int) -> int:
    """The segment id part of an encoded offset."""
    return offset >> POSITION_BITS


def offset_position(offset: int) -> int:
    """The byte position part of an encoded offset."""
    return offset & POSITION_MASK


def segment_name(segment_id: int) -> str:
    """The file name of a segment: 16 lowercase hex digits and ``.wal``."""
    if not 0 <= segment_id < 1 << 64:
        raise ValueError(f"invalid segment id {segment_id}")
    return f"{segment_id:016x}{SEGMENT_SUFFIX}"


def parse_segment_name(name: str) -> int | None:
    """The segment id of a file name, or ``None`` when the name is not a segment's."""
    if SEGMENT_NAME.fullmatch(name) is None:
        return None
    return int(name[:16], 16)


def record_size(payload_length: int) -> int:
    """Bytes a record with a payload of this length takes in a segment."""
    return HEADER_SIZE + payload_length
