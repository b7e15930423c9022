"""Wal behaviour through its public interface: appends, rotation, reads, stats, upkeep."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from wal_testkit import offset, payload, seg_path

from pyrstmdb.errors import BadRequest, WalIoError
from pyrstmdb.storage.policy import FsyncPolicy
from pyrstmdb.storage.wal import MAX_PAYLOAD, Wal, WalEntry


@pytest.fixture
def wal(tmp_path: Path) -> Iterator[Wal]:
    log = Wal.open(tmp_path / "wal")
    yield log
    log.close()


def _fill(log: Wal, count: int, size: int = 40, type_code: int = 3) -> list[int]:
    offsets: list[int] = []
    for i in range(count):
        offsets += log.append([(type_code, payload(i, size))])
    return offsets


def test_open_creates_directory_and_first_segment(tmp_path: Path) -> None:
    directory = tmp_path / "a" / "wal"
    with Wal.open(directory) as log:
        assert seg_path(directory, 1).exists()
        assert log.head == 1 << 40 == log.first_offset == log.durable_end
        assert log.next_sequence == 1
        assert log.recovery.records == 0


def test_append_returns_offsets_and_entries_round_trip(wal: Wal) -> None:
    items = [(1, b'{"m":1}'), (2, b""), (3, b'{"e":"PAY"}')]
    offsets = wal.append(items)
    assert offsets[0] == 1 << 40
    assert offsets[1] == offsets[0] + 24 + 7
    assert offsets[2] == offsets[1] + 24
    assert wal.head == offsets[2] + 24 + len(items[2][1])
    assert wal.next_sequence == 4
    got = list(wal.entries())
    assert got == [
        WalEntry(1, offsets[0], 1, b'{"m":1}'),
        WalEntry(2, offsets[1], 2, b""),
        WalEntry(3, offsets[2], 3, b'{"e":"PAY"}'),
    ]
    assert wal.append([]) == []


def test_entries_honours_from_and_end(wal: Wal) -> None:
    offsets = _fill(wal, 10)
    assert [e.offset for e in wal.entries(offsets[3])] == offsets[3:]
    assert [e.offset for e in wal.entries(offsets[3] + 1)] == offsets[4:]
    assert [e.offset for e in wal.entries(offsets[2], offsets[5])] == offsets[2:5]
    assert list(wal.entries(wal.head)) == []
    assert [e.offset for e in wal.entries(0)] == offsets


def test_entries_end_defaults_to_head_at_call_time(wal: Wal) -> None:
    _fill(wal, 3)
    stream = wal.entries()
    wal.append([(3, b"later")])
    assert len(list(stream)) == 3


def test_entries_from_deep_inside_a_large_segment_uses_the_index(tmp_path: Path) -> None:
    with Wal.open(tmp_path, policy=FsyncPolicy("never")) as log:
        offsets = _fill(log, 3000, size=100)
        middle = offsets[2500]
        got = [e.offset for e in log.entries(middle - 3)]
        assert got == offsets[2500:]


def test_empty_payload_and_every_type_code(wal: Wal) -> None:
    wal.append([(code, b"") for code in range(1, 7)])
    assert [e.type_code for e in wal.entries()] == [1, 2, 3, 4, 5, 6]


def test_bad_records_are_refused_before_anything_is_written(wal: Wal) -> None:
    wal.append([(3, b"ok")])
    head = wal.head
    with pytest.raises(BadRequest):
        wal.append([(3, b"fine"), (3, bytes(MAX_PAYLOAD + 1))])
    with pytest.raises(BadRequest):
        wal.append([(255, b"")])
    with pytest.raises(BadRequest):
        wal.append([(0, b"")])
    assert wal.head == head
    assert wal.next_sequence == 2
    wal.sync()
    assert os.path.getsize(seg_path(Path(os.path.dirname(wal.segments()[0].path)), 1)) == 26


def test_rotation_at_small_segment_size(tmp_path: Path) -> None:
    limit = 1024
    with Wal.open(tmp_path, segment_size=limit) as log:
        offsets = _fill(log, 100, size=76)  # 100-byte records
        log.sync()  # every_write queues appends until a round writes them
        segments = log.segments()
        assert len(segments) == 10
        assert [s.segment_id for s in segments] == list(range(1, 11))
        assert all(s.size == 1000 for s in segments)
        assert offsets[10] == offset(2, 0)
        assert offsets[9] == offset(1, 900)
        assert log.head == offset(10, 1000)
        for info in segments:
            assert os.path.getsize(info.path) == info.size
        assert [e.offset for e in log.entries()] == offsets
        assert [e.sequence for e in log.entries()] == list(range(1, 101))


def test_batch_rotation_and_oversized_record_alone(tmp_path: Path) -> None:
    with Wal.open(tmp_path, segment_size=1024) as log:
        log.append([(3, payload(0, 476))])  # 500 bytes
        # fits into the active segment's remaining space? no: 500 + 2 * 300 > 1024
        batch = log.append([(3, payload(1, 276)), (3, payload(2, 276))])
        assert [b >> 40 for b in batch] == [2, 2]
        big = log.append([(3, payload(3, 3000))])
        assert big == [offset(3, 0)]
        after = log.append([(3, payload(4, 16))])
        assert after == [offset(4, 0)]
        sizes = [s.size for s in log.segments()]
        assert sizes == [500, 600, 3024, 40]
        huge_batch = log.append([(3, payload(i, 376)) for i in range(5)])  # 5 x 400 bytes
        assert [o >> 40 for o in huge_batch] == [4, 4, 5, 5, 6]
        assert len(list(log.entries())) == 10


def test_sequences_and_offsets_continue_after_reopen(tmp_path: Path) -> None:
    with Wal.open(tmp_path, segment_size=512) as log:
        first = _fill(log, 20)
        head = log.head
    with Wal.open(tmp_path, segment_size=512) as log:
        assert log.recovery.records == 20
        assert log.recovery.last_sequence == 20
        assert log.next_sequence == 21
        assert log.head == head == log.durable_end
        more = log.append([(3, b"next")])
        assert more[0] >= head
        entries = list(log.entries())
        assert [e.sequence for e in entries] == list(range(1, 22))
        assert [e.offset for e in entries] == [*first, *more]


def test_other_files_in_the_directory_are_ignored(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("hello")
    (tmp_path / "00000000000000AA.wal").write_bytes(b"garbage")
    (tmp_path / "0000000000000001.wal.broken").write_bytes(b"garbage")
    with Wal.open(tmp_path) as log:
        log.append([(3, b"x")])
        assert [s.segment_id for s in log.segments()] == [1]
    with Wal.open(tmp_path) as log:
        assert log.recovery.records == 1


def test_first_offset_tracks_dropped_segments(tmp_path: Path) -> None:
    with Wal.open(tmp_path, segment_size=256) as log:
        _fill(log, 20, size=76)
        assert log.first_offset == offset(1, 0)
        count, reclaimed = log.drop_segments_before(3)
        assert count == 2
        assert reclaimed == 400
        assert log.first_offset == offset(3, 0)
        assert not seg_path(tmp_path, 1).exists() and not seg_path(tmp_path, 2).exists()
        assert next(log.entries()).offset >> 40 == 3
        assert len(list(log.entries())) == 16


def test_drop_segments_before_never_deletes_the_active_segment(tmp_path: Path) -> None:
    with Wal.open(tmp_path, segment_size=256) as log:
        _fill(log, 6, size=76)  # segments 1..3
        active = log.segments()[-1].segment_id
        count, reclaimed = log.drop_segments_before(active + 10)
        assert count == active - 1
        assert reclaimed == 200 * (active - 1)
        assert [s.segment_id for s in log.segments()] == [active]
        assert log.drop_segments_before(active + 10) == (0, 0)
        entry_count = log.stats().entry_count
        log.append([(3, b"more")])
        assert log.stats().entry_count == entry_count + 1
    with Wal.open(tmp_path, segment_size=256) as log:
        assert log.next_sequence == 8
        assert [e.sequence for e in log.entries()] == [5, 6, 7]


def test_stats_report_real_sizes_and_counters(tmp_path: Path) -> None:
    with Wal.open(tmp_path, segment_size=1024) as log:
        assert log.stats().total_size_bytes == 0
        offsets = _fill(log, 30, size=76)
        log.wait_durable(offsets[-1])
        stats = log.stats()
        assert stats.entry_count == 30
        assert stats.writes == 30
        assert stats.bytes_written == 3000
        assert stats.segment_count == 3
        assert stats.total_size_bytes == 3000
        assert stats.total_size_bytes == sum(os.path.getsize(s.path) for s in log.segments())
        assert stats.latest_offset == log.head
        assert stats.fsyncs >= 1
        assert stats.reads == 0 and stats.bytes_read == 0
        log.read(0, 5, 10_000)
        list(log.entries())
        stats = log.stats()
        assert stats.reads == 2
        assert stats.bytes_read == 5 * 100 + 30 * 100
    with Wal.open(tmp_path, segment_size=1024) as log:
        stats = log.stats()
        assert (stats.writes, stats.reads, stats.fsyncs) == (0, 0, 0)
        assert stats.entry_count == 30
        assert stats.total_size_bytes == 3000


def test_read_pages_with_limit_max_bytes_and_next_offset(wal: Wal) -> None:
    offsets = _fill(wal, 10, size=100)
    wal.wait_durable(offsets[-1])
    got, next_offset = wal.read(0, 3, 1_000_000)
    assert [e.offset for e in got] == offsets[:3]
    assert next_offset == offsets[2] + 1
    got, next_offset = wal.read(next_offset, None, 250)
    assert [e.offset for e in got] == offsets[3:5]
    assert next_offset is not None
    got, next_offset = wal.read(next_offset, None, 10)  # always at least one record
    assert [e.offset for e in got] == offsets[5:6]
    got, next_offset = wal.read(next_offset, 0, 1000)
    assert got == [] and next_offset is None
    assert next_offset is None
    got, next_offset = wal.read(offsets[6], None, 1 << 30)
    assert [e.offset for e in got] == offsets[6:]
    assert wal.read(next_offset or 0, None, 1000) == ([], None)


def test_read_returns_only_durable_records_under_every_write(tmp_path: Path) -> None:
    with Wal.open(tmp_path) as log:
        offsets = _fill(log, 3)
        log.wait_durable(offsets[-1])
        got, _next = log.read(0, None, 1 << 20)
        assert all(e.offset < log.durable_end for e in got)
        assert len(got) == 3


def test_read_returns_written_records_under_lax_policies(tmp_path: Path) -> None:
    with Wal.open(tmp_path, policy=FsyncPolicy("never")) as log:
        offsets = _fill(log, 3)
        assert log.durable_end < offsets[0] + 1
        got, _next = log.read(0, None, 1 << 20)
        assert [e.offset for e in got] == offsets


def test_reset_starts_a_new_segment_with_increasing_offsets(tmp_path: Path) -> None:
    with Wal.open(tmp_path, segment_size=256) as log:
        _fill(log, 7, size=76)
        highest = log.segments()[-1].segment_id
        before = log.head
        new = log.reset(6, b'{"type":"checkpoint","timestamp":1}')
        assert new == offset(highest + 1, 0) > before
        assert [s.segment_id for s in log.segments()] == [highest + 1]
        assert not any(seg_path(tmp_path, i).exists() for i in range(1, highest + 1))
        assert log.durable_end == log.head
        entries = list(log.entries())
        assert [(e.sequence, e.type_code, e.offset) for e in entries] == [(8, 6, new)]
        assert log.stats().entry_count == 8
        assert log.append([(3, b"after")])[0] > new
    with Wal.open(tmp_path, segment_size=256) as log:
        assert [e.sequence for e in log.entries()] == [8, 9]
        assert log.next_sequence == 10


def test_close_is_idempotent_and_blocks_further_appends(tmp_path: Path) -> None:
    log = Wal.open(tmp_path)
    log.append([(3, b"x")])
    log.close()
    log.close()
    with pytest.raises(WalIoError):
        log.append([(3, b"y")])
    with pytest.raises(WalIoError):
        log.sync()


def test_two_logs_in_the_same_process_after_close(tmp_path: Path) -> None:
    for round_number in range(3):
        with Wal.open(tmp_path) as log:
            log.append([(3, payload(round_number))])
    with Wal.open(tmp_path) as log:
        assert [e.payload for e in log.entries()] == [payload(i) for i in range(3)]


def test_entries_across_small_read_chunks(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from pyrstmdb.storage.wal import segment as segment_module

    monkeypatch.setattr(segment_module, "READ_CHUNK", 300)
    with Wal.open(tmp_path, policy=FsyncPolicy("never")) as log:
        sizes = [16, 200, 1500, 40, 290, 17, 700, 30] * 5
        offsets = [log.append([(3, payload(i, size))])[0] for i, size in enumerate(sizes)]
        got = list(log.entries())
        assert [e.offset for e in got] == offsets
        assert [e.payload for e in got] == [payload(i, s) for i, s in enumerate(sizes)]
        for start in (3, 17, 33):
            assert [e.offset for e in log.entries(offsets[start] - 1)] == offsets[start:]
        assert [e.offset for e in log.entries(offsets[5], offsets[9])] == offsets[5:9]


def test_damage_found_while_reading_raises_corruption(tmp_path: Path) -> None:
    from pyrstmdb.errors import CorruptionError

    with Wal.open(tmp_path, policy=FsyncPolicy("never")) as log:
        offsets = _fill(log, 5)
        log.sync()
        path = seg_path(tmp_path, 1)
        data = bytearray(path.read_bytes())
        position = offsets[3] & ((1 << 40) - 1)
        data[position + 30] ^= 0xFF
        path.write_bytes(bytes(data))
        with pytest.raises(CorruptionError) as info:
            list(log.entries())
        assert info.value.path == str(path)
        assert info.value.position == position
        assert [e.offset for e in log.entries(0, offsets[3])] == offsets[:3]


def test_reading_while_another_thread_appends(tmp_path: Path) -> None:
    import threading

    with Wal.open(tmp_path, policy=FsyncPolicy("never"), segment_size=2048) as log:
        stop = threading.Event()

        def writer() -> None:
            i = 0
            while not stop.is_set():
                log.append([(3, payload(i))])
                i += 1

        thread = threading.Thread(target=writer)
        thread.start()
        try:
            for _ in range(50):
                sequences = [e.sequence for e in log.entries()]
                assert sequences == list(range(1, len(sequences) + 1))
        finally:
            stop.set()
            thread.join()


def test_truncate_to_discards_the_end_of_the_log(tmp_path: Path) -> None:
    with Wal.open(tmp_path, segment_size=256) as log:
        offsets = _fill(log, 10, size=76)  # two records per segment
        log.wait_durable(offsets[-1])
        with pytest.raises(ValueError):
            log.truncate_to(offsets[4] + 1)
        with pytest.raises(ValueError):
            log.truncate_to(log.head + 100)
        log.truncate_to(log.head)  # nothing to cut
        assert len(list(log.entries())) == 10
        log.truncate_to(offsets[5])
        assert [e.offset for e in log.entries()] == offsets[:5]
        assert log.head == offsets[5] == log.durable_end
        assert log.next_sequence == 6
        assert [s.segment_id for s in log.segments()] == [1, 2, 3]
        assert not seg_path(tmp_path, 4).exists()
        assert log.stats().total_size_bytes == 500
        (again,) = log.append([(3, b"again")])
        assert again == offsets[5]
        log.wait_durable(again)
    with Wal.open(tmp_path, segment_size=256) as log:
        assert log.recovery.torn_bytes == 0
        assert [e.sequence for e in log.entries()] == [1, 2, 3, 4, 5, 6]


def test_never_policy_does_not_hold_a_descriptor_per_segment(tmp_path: Path) -> None:
    before = len(os.listdir("/proc/self/fd"))
    with Wal.open(tmp_path, policy=FsyncPolicy("never"), segment_size=1024) as log:
        for n in range(300):
            log.append([(3, payload(n, 600))])  # every record starts a new segment
        assert len(log.segments()) >= 290
        assert len(os.listdir("/proc/self/fd")) - before < 20
    with Wal.open(tmp_path) as log:
        assert len(list(log.entries())) == 300
