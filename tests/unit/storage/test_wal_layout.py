"""Byte layout, offsets, names, record framing and the rotation split (pure code)."""

from __future__ import annotations

import struct

import pytest
from crc32c import crc32c

from pyrstmdb.errors import BadRequest
from pyrstmdb.storage.policy import FsyncPolicy
from pyrstmdb.storage.wal import (
    HEADER_SIZE,
    MAX_PAYLOAD,
    encode_offset,
    offset_position,
    offset_segment,
    parse_segment_name,
    segment_name,
)
from pyrstmdb.storage.wal.flusher import Backlog, due
from pyrstmdb.storage.wal.record import (
    BAD_CRC,
    BAD_MAGIC,
    BAD_TYPE,
    OVERSIZED,
    SEQUENCE,
    SHORT_HEADER,
    SHORT_PAYLOAD,
    ZEROS,
    Decoder,
    check_items,
    encode_record,
    valid_record_at,
)
from pyrstmdb.storage.wal.segment import Segment
from pyrstmdb.storage.wal.writer import Group, split_groups


def test_header_bytes_match_the_spec() -> None:
    payload = b'{"type":"checkpoint","timestamp":5}'
    data = encode_record(6, payload, 0x0102030405060708)
    assert HEADER_SIZE == 24
    assert data[:4] == b"WLOG"
    assert data[4] == 6 and data[5] == 0 and data[6:8] == b"\0\0"
    assert struct.unpack(">I", data[8:12])[0] == len(payload)
    assert struct.unpack(">I", data[12:16])[0] == crc32c(payload)
    assert data[16:24] == bytes([1, 2, 3, 4, 5, 6, 7, 8])
    assert data[24:] == payload


def test_offsets_encode_segment_and_position() -> None:
    assert encode_offset(1, 0) == 1 << 40 == 1099511627776
    value = encode_offset(0x12, 0xABCDEF)
    assert offset_segment(value) == 0x12
    assert offset_position(value) == 0xABCDEF
    with pytest.raises(ValueError):
        encode_offset(1, 1 << 40)


def test_segment_names() -> None:
    assert segment_name(255) == "00000000000000ff.wal"
    assert segment_name(1) == "0000000000000001.wal"
    assert parse_segment_name("00000000000000ff.wal") == 255
    for other in ("00000000000000FF.wal", "ff.wal", "00000000000000ff.wal.broken", "x.txt"):
        assert parse_segment_name(other) is None
    assert parse_segment_name("00000000000000ff.wal\n") is None


def test_check_items_refuses_bad_types_and_oversized_payloads() -> None:
    check_items([(1, b"{}"), (6, b"x" * 10)])
    for bad in (0, 7, 255):
        with pytest.raises(BadRequest):
            check_items([(bad, b"{}")])
    with pytest.raises(BadRequest):
        check_items([(3, b"{}"), (3, bytes(MAX_PAYLOAD + 1))])


def _decode(buf: bytes, last: int = 0) -> tuple[list[int], Decoder]:
    decoder = Decoder(buf, 0, len(buf), last)
    return [sequence for _pos, _t, sequence, _p in decoder], decoder


def test_decoder_reads_records_and_stops_cleanly() -> None:
    buf = encode_record(1, b"a", 1) + encode_record(2, b"", 2) + encode_record(3, b"ccc", 5)
    sequences, decoder = _decode(buf)
    assert sequences == [1, 2, 5]
    assert decoder.problem is None
    assert decoder.position == len(buf)
    assert decoder.last_sequence == 5


@pytest.mark.parametrize(
    ("tail", "kind"),
    [
        (b"WLOG\x03", SHORT_HEADER),
        (encode_record(3, b"abcdef", 2)[:-2], SHORT_PAYLOAD),
        (bytes(30), ZEROS),
        (b"XLOG" + encode_record(3, b"abc", 2)[4:], BAD_MAGIC),
        (encode_record(3, b"abc", 2)[:4] + b"\xff" + encode_record(3, b"abc", 2)[5:], BAD_TYPE),
        (struct.pack(">4sBBHIIQ", b"WLOG", 3, 0, 0, MAX_PAYLOAD + 1, 0, 2), OVERSIZED),
        (encode_record(3, b"abc", 2)[:-1] + b"d", BAD_CRC),
        (encode_record(3, b"abc", 1), SEQUENCE),
    ],
)
def test_decoder_names_each_problem(tail: bytes, kind: str) -> None:
    first = encode_record(3, b"first", 1)
    sequences, decoder = _decode(first + tail)
    assert sequences == [1]
    assert decoder.problem is not None
    assert decoder.problem.kind == kind
    assert decoder.problem.position == len(first)
    assert decoder.position == len(first)


def test_decoder_needed_reports_bytes_to_complete_a_record() -> None:
    record = encode_record(3, b"x" * 100, 1)
    _seq, decoder = _decode(record[:10])
    assert decoder.needed == HEADER_SIZE
    _seq, decoder = _decode(record[:50])
    assert decoder.needed == len(record)


def test_valid_record_at() -> None:
    buf = b"junk" + encode_record(4, b"{}", 9)
    assert valid_record_at(buf, 4)
    assert not valid_record_at(buf, 0)
    assert not valid_record_at(buf[:-1], 4)


def test_split_groups_keeps_a_fitting_batch_together() -> None:
    assert split_groups([10, 10], 0, 100) == [Group(False, 0, 2)]
    assert split_groups([10, 10], 85, 100) == [Group(True, 0, 2)]
    assert split_groups([10, 10], 80, 100) == [Group(False, 0, 2)]
    # a single record larger than the limit: alone, in a fresh segment unless it is empty
    assert split_groups([500], 0, 100) == [Group(False, 0, 1)]
    assert split_groups([500], 1, 100) == [Group(True, 0, 1)]


def test_split_groups_splits_a_batch_larger_than_a_segment() -> None:
    assert split_groups([40, 40, 40], 0, 100) == [Group(False, 0, 2), Group(True, 2, 3)]
    assert split_groups([40, 40, 40], 30, 100) == [
        Group(False, 0, 1),
        Group(True, 1, 3),
    ]
    assert split_groups([30, 500, 30], 0, 100) == [
        Group(False, 0, 1),
        Group(True, 1, 2),
        Group(True, 2, 3),
    ]


def test_segment_sparse_index() -> None:
    segment = Segment(1, "x")
    for position in range(0, 300_000, 1000):
        segment.note_record(position)
    assert segment.marks[0] == 0
    assert all(b - a >= 64 * 1024 for a, b in zip(segment.marks, segment.marks[1:], strict=False))
    assert segment.start_for(0) == 0
    assert segment.start_for(70_000) == segment.marks[1] <= 70_000
    segment.cut(100_000)
    assert all(mark < 100_000 for mark in segment.marks) and segment.size == 100_000


def _backlog(**changes: object) -> Backlog:
    values: dict[str, object] = {
        "unsynced_records": 0,
        "unsynced": False,
        "chores": False,
        "dirty_since": None,
        "failed": False,
        "retry_at": None,
    }
    values.update(changes)
    return Backlog(**values)  # type: ignore[arg-type]


def test_flusher_decision_per_policy() -> None:
    write = FsyncPolicy("every_write")
    assert due(write, _backlog(), 0) == (False, None)
    assert due(write, _backlog(unsynced=True, unsynced_records=1), 0) == (True, None)
    assert due(write, _backlog(unsynced=True, failed=True), 0) == (False, None)
    every_n = FsyncPolicy("every_n", 3)
    assert due(every_n, _backlog(unsynced=True, unsynced_records=2), 0)[0] is False
    assert due(every_n, _backlog(unsynced=True, unsynced_records=3), 0)[0] is True
    assert due(every_n, _backlog(chores=True), 0)[0] is True
    every_ms = FsyncPolicy("every_ms", 100)
    ready, wait = due(every_ms, _backlog(unsynced=True, dirty_since=10.0), 10.04)
    assert ready is False and wait == pytest.approx(0.06)
    assert due(every_ms, _backlog(unsynced=True, dirty_since=10.0), 10.1)[0] is True
    retry = _backlog(unsynced=True, chores=True, retry_at=5.0)
    assert due(write, retry, 4.5) == (False, 0.5)
    assert due(FsyncPolicy("never"), _backlog(unsynced=True, unsynced_records=99), 0)[0] is False
