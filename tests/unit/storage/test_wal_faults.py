"""Injected ENOSPC/EIO at the OS-call boundary: writes, truncates, fsyncs, recovery."""

from __future__ import annotations

import errno
import os
import threading
import time
from pathlib import Path

import pytest
from wal_testkit import FaultyIO, append_when_room, eventually, payload, seg_path

from pyrstmdb.errors import WalIoError
from pyrstmdb.storage.policy import FsyncPolicy
from pyrstmdb.storage.wal import Wal

#: A policy whose appends write at once (every_write queues them for the next fsync round).
WRITES_AT_ONCE = FsyncPolicy("every_n", 1000)


def _state(log: Wal) -> tuple[int, int, int, list[tuple[int, int]]]:
    return (
        log.head,
        log.next_sequence,
        log.stats().entry_count,
        [(s.segment_id, s.size) for s in log.segments()],
    )


@pytest.mark.parametrize("err", [errno.ENOSPC, errno.EIO])
def test_failed_write_is_truncated_and_consumes_nothing(tmp_path: Path, err: int) -> None:
    io = FaultyIO()
    with Wal.open(tmp_path, fileio=io, policy=WRITES_AT_ONCE) as log:
        log.append([(3, payload(0))])
        before = _state(log)
        io.arm("write", err)
        with pytest.raises(WalIoError):
            log.append([(3, payload(1)), (3, payload(2))])
        assert _state(log) == before
        assert seg_path(tmp_path, 1).stat().st_size == before[3][0][1]
        assert [e.sequence for e in log.entries()] == [1]
        (off,) = log.append([(3, payload(3))])
        log.wait_durable(off)
    with Wal.open(tmp_path) as log:
        assert log.recovery.torn_bytes == 0
        entries = list(log.entries())
        assert [e.sequence for e in entries] == [1, 2]
        assert entries[1].payload == payload(3)


def test_failed_write_into_a_new_segment_removes_it(tmp_path: Path) -> None:
    io = FaultyIO()
    with Wal.open(tmp_path, fileio=io, policy=WRITES_AT_ONCE, segment_size=256) as log:
        log.append([(3, payload(0, 176))])
        before = _state(log)
        io.arm("write", errno.ENOSPC, skip=1)  # the first group fits, the second fails
        with pytest.raises(WalIoError):
            log.append([(3, payload(1, 50)), (3, payload(2, 200)), (3, payload(3, 200))])
        assert _state(log) == before
        assert not seg_path(tmp_path, 2).exists()
        assert seg_path(tmp_path, 1).stat().st_size == 200
        io.arm("open", errno.EMFILE)
        with pytest.raises(WalIoError):
            log.append([(3, payload(4, 200))])
        assert _state(log) == before
        offsets = log.append([(3, payload(5, 200))])
        assert offsets == [2 << 40]
        log.wait_durable(offsets[0])
    with Wal.open(tmp_path) as log:
        assert [e.sequence for e in log.entries()] == [1, 2]


def test_failed_truncate_keeps_the_log_failed_until_repaired(tmp_path: Path) -> None:
    io = FaultyIO()
    with Wal.open(tmp_path, fileio=io, policy=WRITES_AT_ONCE) as log:
        log.append([(3, payload(0))])
        good = seg_path(tmp_path, 1).stat().st_size
        io.arm("write", errno.EIO)
        io.arm("ftruncate", errno.EIO, times=2)
        with pytest.raises(WalIoError):
            log.append([(3, payload(1))])
        assert seg_path(tmp_path, 1).stat().st_size > good  # the half-written bytes remain
        with pytest.raises(WalIoError, match="cannot remove"):
            log.append([(3, payload(2))])  # retries the repair first, which fails again
        assert log.next_sequence == 2
        (off,) = log.append([(3, payload(3))])  # the repair succeeds now
        log.wait_durable(off)
        assert [e.payload for e in log.entries()] == [payload(0), payload(3)]
    with Wal.open(tmp_path) as log:
        assert log.recovery.torn_bytes == 0
        assert [e.sequence for e in log.entries()] == [1, 2]


@pytest.mark.parametrize("err", [errno.EIO, errno.ENOSPC])
def test_failed_fsync_fails_waiters_and_recovery_truncates(tmp_path: Path, err: int) -> None:
    io = FaultyIO()
    handler_calls: list[WalIoError] = []
    with Wal.open(tmp_path, fileio=io) as log:
        log.set_failure_handler(handler_calls.append)
        (kept,) = log.append([(3, payload(0))])
        log.wait_durable(kept)
        durable = log.durable_end
        io.arm("fdatasync", err)
        offsets = log.append([(3, payload(1)), (3, payload(2))])
        with pytest.raises(WalIoError):
            log.wait_durable(offsets[1], timeout=5)
        assert eventually(lambda: len(handler_calls) == 1)
        callback_result: list[WalIoError | None] = []
        log.when_durable(offsets[0], callback_result.append)
        assert isinstance(callback_result[0], WalIoError)
        assert log.durable_end == durable
        with pytest.raises(WalIoError, match="failed state"):
            log.append([(3, payload(3))])
        got, _next = log.read(0, None, 1 << 20)
        assert [e.offset for e in got] == [kept]  # nothing undurable is visible
        log.recover_after_failure()
        assert log.head == durable
        assert log.next_sequence == 2
        assert seg_path(tmp_path, 1).stat().st_size == durable - (1 << 40)
        (again,) = append_when_room(log, [(3, payload(4))])  # (after ENOSPC: once probed)
        # A fresh segment: the discarded records' offsets are never handed out again.
        assert again == 2 << 40
        assert again not in offsets
        log.wait_durable(again, timeout=5)
    with Wal.open(tmp_path) as log:
        assert [(e.sequence, e.payload) for e in log.entries()] == [
            (1, payload(0)),
            (2, payload(4)),
        ]


def test_failed_fsync_fails_every_concurrent_waiter(tmp_path: Path) -> None:
    io = FaultyIO()
    with Wal.open(tmp_path, fileio=io) as log:
        io.arm("fdatasync", errno.EIO, times=-1)
        lock = threading.Lock()
        outcomes: list[str] = []

        def writer(i: int) -> None:
            try:
                with lock:
                    (off,) = log.append([(3, payload(i))])
                log.wait_durable(off, timeout=10)
                outcomes.append("durable")
            except WalIoError:
                outcomes.append("failed")

        threads = [threading.Thread(target=writer, args=(i,)) for i in range(12)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(20)
        assert not any(thread.is_alive() for thread in threads)
        assert outcomes.count("failed") == 12
        io.disarm()
        log.recover_after_failure()
        assert list(log.entries()) == []
        log.wait_durable(log.append([(3, b"ok")])[0], timeout=5)


def test_failed_fsync_after_rotation_empties_the_new_segments(tmp_path: Path) -> None:
    io = FaultyIO()
    with Wal.open(tmp_path, fileio=io, segment_size=256) as log:
        log.wait_durable(log.append([(3, payload(0, 176))])[0])
        durable = log.durable_end
        io.arm("fdatasync", errno.EIO)
        offsets = log.append([(3, payload(1, 176)), (3, payload(2, 176))])
        assert [o >> 40 for o in offsets] == [2, 3]
        with pytest.raises(WalIoError):
            log.wait_durable(offsets[-1], timeout=5)
        log.recover_after_failure()
        # Emptied, not deleted: segment ids stay contiguous and none of the discarded
        # offsets is handed out again.
        assert [(s.segment_id, s.size) for s in log.segments()] == [
            (1, durable - (1 << 40)),
            (2, 0),
            (3, 0),
        ]
        assert seg_path(tmp_path, 2).stat().st_size == seg_path(tmp_path, 3).stat().st_size == 0
        assert log.head == 3 << 40
        (off,) = log.append([(3, payload(3, 176))])
        assert off == 4 << 40
        log.wait_durable(off, timeout=5)
    with Wal.open(tmp_path, segment_size=256) as log:
        assert [(e.sequence, e.offset) for e in log.entries()] == [(1, 1 << 40), (2, 4 << 40)]


def test_failed_directory_fsync_at_rotation_is_a_failed_fsync(tmp_path: Path) -> None:
    io = FaultyIO()
    with Wal.open(tmp_path, fileio=io, segment_size=256) as log:
        log.wait_durable(log.append([(3, payload(0, 176))])[0])
        io.arm("fsync_dir", errno.EIO)
        (off,) = log.append([(3, payload(1, 176))])
        with pytest.raises(WalIoError):
            log.wait_durable(off, timeout=5)
        log.recover_after_failure()
        log.wait_durable(log.append([(3, payload(2, 176))])[0], timeout=5)
        assert [e.sequence for e in log.entries()] == [1, 2]


def test_recover_after_failure_that_cannot_truncate_stays_failed(tmp_path: Path) -> None:
    io = FaultyIO()
    with Wal.open(tmp_path, fileio=io) as log:
        log.wait_durable(log.append([(3, payload(0))])[0])
        io.arm("fdatasync", errno.EIO)
        (off,) = log.append([(3, payload(1))])
        with pytest.raises(WalIoError):
            log.wait_durable(off, timeout=5)
        io.arm("ftruncate", errno.EIO)
        with pytest.raises(WalIoError):
            log.recover_after_failure()
        with pytest.raises(WalIoError):
            log.append([(3, payload(2))])
        log.recover_after_failure()
        log.wait_durable(log.append([(3, payload(3))])[0], timeout=5)
        assert [e.payload for e in log.entries()] == [payload(0), payload(3)]


def test_close_in_the_failed_state_discards_undurable_records(tmp_path: Path) -> None:
    io = FaultyIO()
    log = Wal.open(tmp_path, fileio=io)
    log.wait_durable(log.append([(3, payload(0))])[0])
    io.arm("fdatasync", errno.EIO)
    (off,) = log.append([(3, payload(1))])
    with pytest.raises(WalIoError):
        log.wait_durable(off, timeout=5)
    log.close()
    with Wal.open(tmp_path) as again:
        assert [e.payload for e in again.entries()] == [payload(0)]


def test_background_fsync_failure_under_lax_policy_is_retried(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    io = FaultyIO()
    with Wal.open(tmp_path, fileio=io, policy=FsyncPolicy("every_n", 1)) as log:
        io.arm("fdatasync", errno.EIO)
        (off,) = log.append([(3, payload(0))])
        assert eventually(lambda: io.calls.get("fdatasync", 0) >= 2, timeout=5)
        assert eventually(lambda: log.durable_end > off, timeout=5)
        log.append([(3, payload(1))])  # appends kept working throughout
    assert any("will retry" in r.getMessage() for r in caplog.records)


def test_sync_failure_raises_and_close_failure_still_closes(tmp_path: Path) -> None:
    io = FaultyIO()
    log = Wal.open(tmp_path, fileio=io, policy=FsyncPolicy("never"))
    log.append([(3, b"x")])
    io.arm("fdatasync", errno.EIO)
    with pytest.raises(WalIoError):
        log.sync()
    log.append([(3, b"y")])  # lax policy: the log keeps working
    io.arm("fdatasync", errno.EIO)
    with pytest.raises(WalIoError):
        log.close()
    with pytest.raises(WalIoError):
        log.append([(3, b"z")])
    log.close()
    with Wal.open(tmp_path) as again:
        assert len(list(again.entries())) == 2


def test_open_reports_io_errors_as_wal_io_errors(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    with pytest.raises(WalIoError):
        Wal.open(blocker / "wal")
    io = FaultyIO()
    io.arm("fsync_dir", errno.EIO)
    with pytest.raises(WalIoError):
        Wal.open(tmp_path / "wal", fileio=io)
    assert os.path.isdir(tmp_path / "wal")


def test_failure_handler_may_recover_the_log_at_once(tmp_path: Path) -> None:
    io = FaultyIO()
    recovered = threading.Event()
    with Wal.open(tmp_path, fileio=io) as log:

        def handler(error: WalIoError) -> None:
            log.recover_after_failure()  # from the flusher thread, inside the handler
            recovered.set()

        log.set_failure_handler(handler)
        log.wait_durable(log.append([(3, payload(0))])[0])
        io.arm("fdatasync", errno.EIO)
        (off,) = log.append([(3, payload(1))])
        with pytest.raises(WalIoError):
            log.wait_durable(off, timeout=5)
        assert recovered.wait(5)
        (again,) = log.append([(3, payload(2))])
        assert again == 2 << 40  # a new segment, not the discarded record's offset
        log.wait_durable(again, timeout=5)
        assert [e.payload for e in log.entries()] == [payload(0), payload(2)]


def test_callbacks_and_listeners_may_call_back_into_the_log(tmp_path: Path) -> None:
    with Wal.open(tmp_path) as log:
        seen: list[int] = []

        def listener(end: int) -> None:
            seen.append(end)
            if len(seen) == 1:
                log.sync()  # re-enters the round from the flusher thread

        log.add_durable_listener(listener)
        calls: list[WalIoError | None] = []
        (off,) = log.append([(3, b"a")])
        log.when_durable(off, lambda err: (calls.append(err), log.stats()))
        log.wait_durable(off, timeout=5)
        assert eventually(lambda: calls == [None])
        log.wait_durable(log.append([(3, b"b")])[0], timeout=5)
        assert seen and seen == sorted(seen)


def test_failure_handler_runs_before_waiters_hear_of_the_failure(tmp_path: Path) -> None:
    io = FaultyIO()
    order: list[str] = []
    with Wal.open(tmp_path, fileio=io) as log:

        def handler(error: WalIoError) -> None:
            time.sleep(0.05)  # a slow handler: the waiter must still come after it
            order.append("handler")

        log.set_failure_handler(handler)
        io.arm("fdatasync", errno.EIO)
        (off,) = log.append([(3, payload(0))])
        with pytest.raises(WalIoError):
            log.wait_durable(off, timeout=5)
        order.append("waiter")
        assert order == ["handler", "waiter"]
        log.recover_after_failure()


def test_recovery_into_an_emptied_segment_still_moves_to_a_new_one(tmp_path: Path) -> None:
    io = FaultyIO()
    record = payload(0)
    with Wal.open(tmp_path, fileio=io, segment_size=len(record) + 24) as log:
        log.set_failure_handler(lambda _error: None)
        (first,) = log.append([(3, record)])
        log.wait_durable(first)
        io.arm("fdatasync", errno.EIO)
        (lost,) = log.append([(3, payload(1))])  # rotates: segment 2, position 0
        assert lost == 2 << 40
        with pytest.raises(WalIoError):
            log.wait_durable(lost, timeout=5)
        log.recover_after_failure()
        assert log.head == 2 << 40  # segment 2 is kept, empty
        (again,) = log.append([(3, payload(2))])
        assert again == 3 << 40
        log.wait_durable(again, timeout=5)
    with Wal.open(tmp_path) as log:
        assert [(e.offset, e.payload) for e in log.entries()] == [
            (first, payload(0)),
            (3 << 40, payload(2)),
        ]


def test_every_write_queues_appends_and_one_round_writes_them(tmp_path: Path) -> None:
    io = FaultyIO()
    with Wal.open(tmp_path, fileio=io) as log:
        size = seg_path(tmp_path, 1).stat().st_size
        writes = io.calls.get("write", 0)
        with log._state.round_lock:  # hold rounds back while the records queue up
            offsets = [log.append([(3, payload(n))])[0] for n in range(10)]
            assert seg_path(tmp_path, 1).stat().st_size == size  # nothing written yet
        log.wait_durable(offsets[-1], timeout=5)
        assert io.calls.get("write", 0) - writes == 1  # the round wrote all ten at once
        assert io.synced_size(str(seg_path(tmp_path, 1))) == log.head - (1 << 40)
        assert [e.offset for e in log.entries()] == offsets


@pytest.mark.parametrize("err", [errno.ENOSPC, errno.EIO])
def test_failed_queued_write_fails_the_round_like_a_failed_fsync(tmp_path: Path, err: int) -> None:
    io = FaultyIO()
    handler_calls: list[WalIoError] = []
    with Wal.open(tmp_path, fileio=io) as log:
        log.set_failure_handler(handler_calls.append)
        (kept,) = log.append([(3, payload(0))])
        log.wait_durable(kept, timeout=5)
        durable = log.durable_end
        io.arm("write", err)
        (lost,) = log.append([(3, payload(1))])  # queued: the append itself succeeds
        with pytest.raises(WalIoError):
            log.wait_durable(lost, timeout=5)
        assert eventually(lambda: len(handler_calls) == 1)
        assert log.durable_end == durable
        log.recover_after_failure()
        assert seg_path(tmp_path, 1).stat().st_size == durable - (1 << 40)
        (again,) = append_when_room(log, [(3, payload(2))])
        assert again == 2 << 40 and again != lost
        log.wait_durable(again, timeout=5)
    with Wal.open(tmp_path) as log:
        assert log.recovery.torn_bytes == 0
        assert [(e.sequence, e.payload) for e in log.entries()] == [
            (1, payload(0)),
            (2, payload(2)),
        ]
