"""Recovery at open: torn tails are cut (with a .broken copy), real corruption is refused."""

from __future__ import annotations

import logging
import struct
from pathlib import Path

import pytest
from wal_testkit import SegmentBuilder, seg_path

from pyrstmdb.errors import CorruptionError, WalIoError
from pyrstmdb.storage.wal import MAX_PAYLOAD, Wal, repair_torn_tail, verify
from pyrstmdb.storage.wal.record import encode_record


def _header(type_code: int, length: int, crc: int, sequence: int, magic: bytes = b"WLOG") -> bytes:
    return struct.pack(">4sBBHIIQ", magic, type_code, 0, 0, length, crc, sequence)


def _torn_tails() -> dict[str, bytes]:
    whole = encode_record(3, b'{"torn":true}', 4)
    return {
        "short header": whole[:11],
        "short payload": whole[:-3],
        "bad magic": b"WLOX" + whole[4:],
        "zero bytes": bytes(40),
        "crc mismatch": whole[:-1] + b"!",
        "bad type": whole[:4] + b"\x09" + whole[5:],
        "no-op type 255": whole[:4] + b"\xff" + whole[5:],
        "oversized length": _header(3, MAX_PAYLOAD + 1, 0, 4) + b"{}",
        "a single byte": b"W",
    }


@pytest.mark.parametrize("kind", sorted(_torn_tails()))
def test_torn_tail_is_cut_and_saved(
    tmp_path: Path, kind: str, caplog: pytest.LogCaptureFixture
) -> None:
    tail = _torn_tails()[kind]
    build = SegmentBuilder(tmp_path)
    build.records(1, 3)
    good_size = build.sizes[1]
    path = build.write(1, tail)
    with caplog.at_level(logging.WARNING, logger="pyrstmdb.wal"), Wal.open(tmp_path) as log:
        report = log.recovery
        assert report.records == 3
        assert report.last_sequence == 3
        assert report.torn_bytes == len(tail)
        assert report.torn_segment == str(path)
        assert report.broken_copy == str(path) + ".broken"
        assert Path(report.broken_copy).read_bytes() == tail
        assert path.stat().st_size == good_size
        assert log.head == (1 << 40) + good_size
        assert log.next_sequence == 4
        log.wait_durable(log.append([(3, b'{"after":1}')])[0])
    assert any("torn tail" in r.getMessage() for r in caplog.records)
    with Wal.open(tmp_path) as log:
        assert log.recovery.torn_bytes == 0
        assert [e.sequence for e in log.entries()] == [1, 2, 3, 4]
        assert list(log.entries())[-1].payload == b'{"after":1}'


def test_existing_broken_copy_is_not_overwritten(tmp_path: Path) -> None:
    build = SegmentBuilder(tmp_path)
    path = build.records(1, 2)
    (tmp_path / (path.name + ".broken")).write_bytes(b"older")
    build.write(1, b"WLOG\x03")
    with Wal.open(tmp_path) as log:
        assert log.recovery.broken_copy == str(path) + ".broken.1"
        log.append([(3, b"x")])
        log.sync()
    with open(path, "ab") as handle:
        handle.write(b"\0\0")
    with Wal.open(tmp_path) as log:
        assert log.recovery.broken_copy == str(path) + ".broken.2"
    assert (tmp_path / (path.name + ".broken")).read_bytes() == b"older"
    assert (tmp_path / (path.name + ".broken.1")).read_bytes() == b"WLOG\x03"
    assert (tmp_path / (path.name + ".broken.2")).read_bytes() == b"\0\0"


def test_a_wholly_torn_last_segment_becomes_empty(tmp_path: Path) -> None:
    build = SegmentBuilder(tmp_path)
    build.records(1, 2)
    build.write(2, build.record()[:30])
    with Wal.open(tmp_path) as log:
        assert log.recovery.torn_bytes == 30
        assert log.head == 2 << 40
        assert log.next_sequence == 3
        assert [e.sequence for e in log.entries()] == [1, 2]


def test_torn_tail_before_empty_trailing_segments_is_cut(tmp_path: Path) -> None:
    build = SegmentBuilder(tmp_path)
    build.records(1, 2)
    path = build.write(1, b"WLOG\x03\x00")
    build.write(2)
    with Wal.open(tmp_path) as log:
        assert log.recovery.torn_segment == str(path)
        assert [s.segment_id for s in log.segments()] == [1, 2]
        assert log.head == 2 << 40


def _assert_refused(directory: Path, path: Path, position: int, words: str) -> None:
    with pytest.raises(CorruptionError) as info:
        Wal.open(directory)
    assert info.value.path == str(path)
    assert info.value.position == position
    assert words in str(info.value)


def test_invalid_record_followed_by_a_valid_one_is_refused(tmp_path: Path) -> None:
    build = SegmentBuilder(tmp_path)
    first = build.record()
    damaged = bytearray(build.record(b'{"k":22}'))
    damaged[-2] ^= 0xFF
    path = build.write(1, first, bytes(damaged), build.record())
    size = path.stat().st_size
    _assert_refused(tmp_path, path, len(first), "followed by a valid record")
    assert path.stat().st_size == size  # nothing was cut
    assert not (tmp_path / (path.name + ".broken")).exists()


def test_zero_bytes_followed_by_a_valid_record_are_refused(tmp_path: Path) -> None:
    build = SegmentBuilder(tmp_path)
    first = build.record()
    path = build.write(1, first, bytes(100), build.record())
    _assert_refused(tmp_path, path, len(first), "zero bytes")


def test_damage_in_a_segment_that_is_not_the_last_is_refused(tmp_path: Path) -> None:
    build = SegmentBuilder(tmp_path)
    path = build.records(1, 2)
    size = path.stat().st_size
    build.write(1, build.record()[:-1])  # incomplete record at the end of segment 1
    build.records(2, 1)
    _assert_refused(tmp_path, path, size, "not the last")


def test_bad_type_mid_segment_is_refused(tmp_path: Path) -> None:
    build = SegmentBuilder(tmp_path)
    first = build.record()
    second = bytearray(build.record())
    second[4] = 7
    path = build.write(1, first, bytes(second), build.record())
    _assert_refused(tmp_path, path, len(first), "invalid record type")


def test_sequence_not_increasing_is_refused(tmp_path: Path) -> None:
    first = encode_record(3, b"a", 5)
    path = SegmentBuilder(tmp_path).write(1, first, encode_record(3, b"b", 5))
    _assert_refused(tmp_path, path, len(first), "sequence")


def test_sequence_going_back_across_segments_is_refused(tmp_path: Path) -> None:
    build = SegmentBuilder(tmp_path)
    build.write(1, encode_record(3, b"a", 10), encode_record(3, b"b", 11))
    path = build.write(2, encode_record(3, b"c", 11))
    _assert_refused(tmp_path, path, 0, "sequence")


def test_sequence_gaps_are_accepted(tmp_path: Path) -> None:
    SegmentBuilder(tmp_path).write(1, encode_record(3, b"a", 1), encode_record(3, b"b", 7))
    with Wal.open(tmp_path) as log:
        assert log.next_sequence == 8


def test_a_missing_segment_between_others_is_refused(tmp_path: Path) -> None:
    build = SegmentBuilder(tmp_path)
    build.records(1, 1)
    path = build.records(3, 1)
    _assert_refused(tmp_path, path, 0, "missing")


def test_verify_reports_without_changing_anything(tmp_path: Path) -> None:
    build = SegmentBuilder(tmp_path)
    build.records(1, 3)
    build.records(2, 2)
    clean = verify(tmp_path)
    assert clean.clean and clean.ok
    assert (clean.segments, clean.records, clean.last_sequence) == (2, 5, 5)
    assert clean.total_bytes == build.sizes[1] + build.sizes[2]
    path = build.write(2, b"WLOG\x01\x00")
    torn = verify(tmp_path)
    assert torn.ok and not torn.clean
    assert torn.torn_segment == str(path)
    assert torn.torn_position == build.sizes[2] - 6
    assert torn.torn_bytes == 6
    assert path.stat().st_size == build.sizes[2]  # verify does not cut


def test_verify_locates_the_first_problem_and_keeps_counting(tmp_path: Path) -> None:
    build = SegmentBuilder(tmp_path)
    first = build.record()
    damaged = bytearray(build.record())
    damaged[30] ^= 1
    path = build.write(1, first, bytes(damaged))
    build.records(2, 4)
    report = verify(tmp_path)
    assert not report.ok
    assert report.problem_path == str(path)
    assert report.problem_position == len(first)
    assert report.problem is not None and "checksum" in report.problem
    assert report.records == 5


def test_verify_of_a_missing_directory_raises(tmp_path: Path) -> None:
    with pytest.raises(WalIoError):
        verify(tmp_path / "absent")


def test_repair_torn_tail_cuts_only_a_torn_tail(tmp_path: Path) -> None:
    build = SegmentBuilder(tmp_path)
    path = build.records(1, 2)
    build.write(1, b"WLOG")
    report = repair_torn_tail(tmp_path)
    assert report.torn_bytes == 4 and report.records == 2
    assert path.stat().st_size == build.sizes[1] - 4
    assert verify(tmp_path).clean
    assert repair_torn_tail(tmp_path).torn_bytes == 0
    build.write(1, bytes(30), build.record())
    with pytest.raises(CorruptionError):
        repair_torn_tail(tmp_path)


def test_records_cut_from_a_torn_tail_are_not_replayed_later(tmp_path: Path) -> None:
    build = SegmentBuilder(tmp_path)
    build.records(1, 2)
    whole = build.record(b'{"lost":1}')
    build.write(1, whole[:-1])
    for round_number in range(3):
        with Wal.open(tmp_path) as log:
            log.append([(3, b'{"round":%d}' % round_number)])
    with Wal.open(tmp_path) as log:
        payloads = [e.payload for e in log.entries()]
    assert b'{"lost":1}' not in payloads
    assert len(payloads) == 5
    assert seg_path(tmp_path, 1).stat().st_size == sum(24 + len(p) for p in payloads)
