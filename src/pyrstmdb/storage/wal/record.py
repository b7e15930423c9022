"""Record framing: encoding records and decoding them out of a buffer.

Owns the checks that decide whether bytes form a valid record (magic, type code, length
limit, completeness, CRC-32C, increasing sequence). Decoding never raises on bad bytes; it
stops and describes the first :class:`Problem`, leaving the verdict (torn tail or
corruption) to the caller. :func:`check_items` raises ``BadRequest`` for records that may
not be written.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any, Final, NamedTuple

from crc32c import crc32c as _crc32c

from pyrstmdb.errors import BadRequest

from .layout import HEADER, HEADER_SIZE, MAGIC, MAX_PAYLOAD, TYPE_CODES
from .model import WalEntry

crc32c: Final[Callable[[Any], int]] = _crc32c

# Problem kinds. Every kind except SEQUENCE may be the remains of a torn write.
SHORT_HEADER: Final = "incomplete record header"
SHORT_PAYLOAD: Final = "incomplete record payload"
ZEROS: Final = "zero bytes where a record header is expected"
BAD_MAGIC: Final = "bad record magic"
BAD_TYPE: Final = "invalid record type"
OVERSIZED: Final = "record length over 16 MiB"
BAD_CRC: Final = "record checksum mismatch"
SEQUENCE: Final = "sequence number not greater than its predecessor"

_ZERO_WORD: Final = 0
_new_entry = tuple.__new__
_pack = HEADER.pack
_unpack = HEADER.unpack_from


class Problem(NamedTuple):
    """Why decoding stopped before the end of the buffer, and where."""

    kind: str
    position: int
    detail: str

    @property
    def incomplete(self) -> bool:
        """True when more bytes could complete the record (the buffer ended early)."""
        return self.kind in (SHORT_HEADER, SHORT_PAYLOAD)


def check_items(items: Sequence[tuple[int, bytes]]) -> None:
    """Refuse, before anything is written, records that must never reach the log."""
    for type_code, payload in items:
        if type_code not in TYPE_CODES:
            raise BadRequest(f"invalid WAL record type {type_code}")
        if len(payload) > MAX_PAYLOAD:
            raise BadRequest(
                f"WAL record payload of {len(payload)} bytes exceeds {MAX_PAYLOAD} bytes"
            )


def encode_header(type_code: int, payload: bytes, sequence: int) -> bytes:
    """The 24-byte header of a record (flags and reserved written as 0)."""
    return _pack(MAGIC, type_code, 0, 0, len(payload), crc32c(payload), sequence)


def encode_record(type_code: int, payload: bytes, sequence: int) -> bytes:
    """A whole record: header followed by payload."""
    return encode_header(type_code, payload, sequence) + payload


def valid_record_at(buf: bytes, position: int) -> bool:
    """True when a complete, checksum-valid record with a valid type starts at ``position``."""
    if len(buf) - position < HEADER_SIZE:
        return False
    magic, type_code, _flags, _reserved, length, checksum, _seq = _unpack(buf, position)
    if magic != MAGIC or type_code not in TYPE_CODES or length > MAX_PAYLOAD:
        return False
    start = position + HEADER_SIZE
    if start + length > len(buf):
        return False
    return bool(crc32c(buf[start : start + length]) == checksum)


class Decoder:
    """Walks the records of ``buf[position:stop]``.

    Iterating yields ``(position, type_code, sequence, payload)`` for each valid record.
    Afterwards ``position`` is where decoding stopped, ``last_sequence`` the sequence of the
    last valid record (or the starting value) and ``problem`` why it stopped early
    (``None`` when it reached ``stop`` exactly).
    """

    __slots__ = ("_buf", "last_sequence", "position", "problem", "stop")

    def __init__(self, buf: bytes, position: int, stop: int, last_sequence: int = 0) -> None:
        self._buf = buf
        self.position = position
        self.stop = stop
        self.last_sequence = last_sequence
        self.problem: Problem | None = None

    def __iter__(self) -> Iterator[tuple[int, int, int, bytes]]:
        for entry in self.collect(0, 0):
            yield entry.offset, entry.type_code, entry.sequence, entry.payload

    def positions(self) -> list[int]:
        """Check every record and return their positions, without copying payloads."""
        found: list[int] = []
        self._walk(found.append, None, 0, 0)
        return found

    def collect(self, base: int, skip_below: int, verify_from: int = 0) -> list[WalEntry]:
        """Decode every valid record at once, as entries at offset ``base + position``.

        Records whose position is below ``skip_below`` are decoded (and checked) but left
        out. CRCs are checked from position ``verify_from`` on (bytes before it were
        checked when the log was opened). One call per buffer keeps replays cheap.
        """
        found: list[WalEntry] = []
        self._walk(None, found.append, base, skip_below, verify_from)
        return found

    def _walk(
        self,
        note: Callable[[int], None] | None,
        keep: Callable[[WalEntry], None] | None,
        base: int,
        skip_below: int,
        verify_from: int = 0,
    ) -> None:
        buf = self._buf
        view = memoryview(buf)
        pos = self.position
        stop = self.stop
        last = self.last_sequence
        unpack = _unpack
        valid_types = TYPE_CODES
        checksum_of = crc32c
        make = _new_entry
        while stop - pos >= HEADER_SIZE:
            magic, type_code, _f, _r, length, checksum, sequence = unpack(buf, pos)
            start = pos + HEADER_SIZE
            end = start + length
            if magic != MAGIC or type_code not in valid_types or end > stop:
                break
            if length > MAX_PAYLOAD:
                break
            if sequence <= last or (
                pos >= verify_from and checksum_of(view[start:end]) != checksum
            ):
                break
            last = sequence
            if note is not None:
                note(pos)
            elif keep is not None and pos >= skip_below:
                keep(make(WalEntry, (sequence, base + pos, type_code, buf[start:end])))
            pos = end
        view.release()
        self.position = pos
        self.last_sequence = last
        self.problem = self._diagnose(pos)

    def _diagnose(self, pos: int) -> Problem | None:
        """Explain why decoding stopped at ``pos`` (``None``: it reached the end)."""
        remaining = self.stop - pos
        if remaining == 0:
            return None
        if remaining < HEADER_SIZE:
            return Problem(SHORT_HEADER, pos, f"{remaining} of {HEADER_SIZE} header bytes")
        magic, type_code, _f, _r, length, checksum, sequence = _unpack(self._buf, pos)
        if magic != MAGIC:
            kind = ZEROS if magic == _ZERO_WORD else BAD_MAGIC
            return Problem(kind, pos, f"magic {magic:#010x}")
        if type_code not in TYPE_CODES:
            return Problem(BAD_TYPE, pos, f"type code {type_code}")
        if length > MAX_PAYLOAD:
            return Problem(OVERSIZED, pos, f"length {length}")
        if pos + HEADER_SIZE + length > self.stop:
            got = remaining - HEADER_SIZE
            return Problem(SHORT_PAYLOAD, pos, f"{got} of {length} payload bytes")
        start = pos + HEADER_SIZE
        actual = crc32c(self._buf[start : start + length])
        if actual != checksum:
            return Problem(BAD_CRC, pos, f"crc32c {actual:#010x}, header says {checksum:#010x}")
        return Problem(SEQUENCE, pos, f"sequence {sequence} after {self.last_sequence}")

    @property
    def needed(self) -> int:
        """Bytes from ``position`` needed to complete the record decoding stopped at."""
        problem = self.problem
        if problem is None or problem.kind == SHORT_HEADER:
            return HEADER_SIZE
        if problem.kind == SHORT_PAYLOAD:
            length = _unpack(self._buf, self.position)[4]
            return HEADER_SIZE + int(length)
        return 0
