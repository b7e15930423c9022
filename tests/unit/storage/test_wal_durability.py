"""Fsync policies, durability waits and callbacks, and group commit under every_write."""

from __future__ import annotations

import asyncio
import os
import threading
import time
from pathlib import Path

import pytest
from wal_testkit import FaultyIO, eventually, payload, seg_path

from pyrstmdb.errors import WalIoError
from pyrstmdb.storage.policy import FsyncPolicy
from pyrstmdb.storage.wal import Wal, offset_position, offset_segment


class SlowSyncIO(FaultyIO):
    """Fsyncs take a little longer, like a real disk, and remember their thread."""

    def __init__(self, delay: float = 0.002) -> None:
        super().__init__()
        self.delay = delay
        self.sync_threads: set[int] = set()

    def fdatasync(self, fd: int) -> None:
        self.sync_threads.add(threading.get_ident())
        time.sleep(self.delay)
        super().fdatasync(fd)


class BlockingSyncIO(FaultyIO):
    """Fsyncs wait until the test opens the gate."""

    def __init__(self) -> None:
        super().__init__()
        self.gate = threading.Event()
        self.gate.set()

    def fdatasync(self, fd: int) -> None:
        self.gate.wait(10)
        super().fdatasync(fd)


def _record_end(log: Wal, off: int) -> tuple[Path, int]:
    """The segment path of a record and the byte where it ends."""
    entry = next(log.entries(off, off + 1))
    info = {s.segment_id: s for s in log.segments()}[offset_segment(off)]
    return Path(info.path), offset_position(off) + 24 + len(entry.payload)


def test_every_write_wait_returns_only_after_a_covering_fsync(tmp_path: Path) -> None:
    io = FaultyIO()
    with Wal.open(tmp_path, fileio=io) as log:
        for i in range(20):
            (off,) = log.append([(3, payload(i))])
            log.wait_durable(off)
            path, end = _record_end(log, off)
            assert io.synced_size(path) >= end
            assert log.durable_end > off


def test_fsync_never_runs_in_the_appending_thread(tmp_path: Path) -> None:
    io = SlowSyncIO(0)
    with Wal.open(tmp_path, fileio=io) as log:
        io.sync_threads.clear()
        for i in range(10):
            log.wait_durable(log.append([(3, payload(i))])[0])
        assert io.sync_threads
        assert threading.get_ident() not in io.sync_threads


def test_when_durable_calls_back_from_the_flusher_and_at_once_when_decided(
    tmp_path: Path,
) -> None:
    io = BlockingSyncIO()
    with Wal.open(tmp_path, fileio=io) as log:
        io.gate.clear()
        (off,) = log.append([(3, b"x")])
        calls: list[tuple[WalIoError | None, int]] = []
        done = threading.Event()

        def callback(error: WalIoError | None) -> None:
            calls.append((error, threading.get_ident()))
            done.set()

        log.when_durable(off, callback)
        time.sleep(0.02)
        assert calls == []
        io.gate.set()
        assert done.wait(5)
        assert calls[0][0] is None and calls[0][1] != threading.get_ident()
        log.when_durable(off, callback)  # already durable: in this thread, at once
        assert calls[1] == (None, threading.get_ident())


def test_wait_durable_times_out(tmp_path: Path) -> None:
    io = BlockingSyncIO()
    with Wal.open(tmp_path, fileio=io) as log:
        io.gate.clear()
        (off,) = log.append([(3, b"x")])
        with pytest.raises(WalIoError, match="timed out"):
            log.wait_durable(off, timeout=0.05)
        io.gate.set()
        log.wait_durable(off, timeout=5)


def test_durable_listener_sees_every_advance_in_order(tmp_path: Path) -> None:
    seen: list[int] = []
    with Wal.open(tmp_path) as log:
        log.add_durable_listener(seen.append)
        offsets = [log.append([(3, payload(i))])[0] for i in range(30)]
        log.wait_durable(offsets[-1])
        assert eventually(lambda: bool(seen) and seen[-1] == log.head)
    assert seen == sorted(seen) and len(set(seen)) == len(seen)
    assert seen[-1] > offsets[-1]


def test_lax_policies_do_not_wait(tmp_path: Path) -> None:
    for policy in (
        FsyncPolicy("never"),
        FsyncPolicy("every_n", 1000),
        FsyncPolicy("every_ms", 10_000),
    ):
        directory = tmp_path / policy.describe().replace(":", "_")
        io = BlockingSyncIO()
        with Wal.open(directory, policy=policy, fileio=io) as log:
            io.gate.clear()
            (off,) = log.append([(3, b"x")])
            start = time.monotonic()
            log.wait_durable(off)
            outcome: list[WalIoError | None] = []
            log.when_durable(off, outcome.append)
            assert outcome == [None]
            assert time.monotonic() - start < 1
            io.gate.set()


def test_never_syncs_only_on_sync_and_close(tmp_path: Path) -> None:
    io = FaultyIO()
    seen: list[int] = []
    log = Wal.open(tmp_path, policy=FsyncPolicy("never"), fileio=io, segment_size=256)
    log.add_durable_listener(seen.append)
    baseline = io.data_syncs()
    start = log.durable_end
    for i in range(8):
        log.append([(3, payload(i, 76))])  # rotates into segments 1..4
    time.sleep(0.05)
    assert io.data_syncs() == baseline
    assert log.durable_end == start
    assert log.stats().fsyncs == 0
    log.sync()
    assert log.durable_end == log.head
    assert seen == [log.head]
    assert log.stats().fsyncs >= 2  # the finished segments and the active one
    for info in log.segments():
        assert io.synced_size(info.path) == info.size
    log.append([(3, b"last")])
    path = log.segments()[-1].path
    log.close()
    assert io.synced_size(path) == os.path.getsize(path)


def test_every_n_syncs_once_n_records_are_unsynced(tmp_path: Path) -> None:
    io = FaultyIO()
    with Wal.open(tmp_path, policy=FsyncPolicy("every_n", 5), fileio=io) as log:
        baseline = io.data_syncs()
        offsets = [log.append([(3, payload(i))])[0] for i in range(4)]
        time.sleep(0.05)
        assert io.data_syncs() == baseline
        assert log.durable_end <= offsets[0]
        offsets += log.append([(3, payload(4))])
        assert eventually(lambda: log.durable_end > offsets[-1])
        assert io.synced_size(seg_path(tmp_path, 1)) >= offset_position(offsets[-1])
        assert io.data_syncs() == baseline + 1


def test_every_ms_really_syncs_within_the_interval(tmp_path: Path) -> None:
    io = FaultyIO()
    interval = 0.05
    with Wal.open(tmp_path, policy=FsyncPolicy("every_ms", 50), fileio=io) as log:
        baseline = io.data_syncs()
        for _ in range(3):
            start = time.monotonic()
            (off,) = log.append([(3, b"tick")])
            assert eventually(lambda off=off: log.durable_end > off, timeout=5)  # type: ignore[misc]
            elapsed = time.monotonic() - start
            assert elapsed < interval + 0.5  # generous: the machine is noisy
            path, end = _record_end(log, off)
            assert io.synced_size(path) >= end
        assert io.data_syncs() == baseline + 3
        time.sleep(0.15)
        assert io.data_syncs() == baseline + 3  # nothing unsynced: no more fsyncs


def test_rotation_syncs_the_finished_segment_and_the_directory(tmp_path: Path) -> None:
    io = FaultyIO()
    with Wal.open(tmp_path, fileio=io, segment_size=256) as log:
        dir_syncs = io.dir_syncs
        offsets = [log.append([(3, payload(i, 76))])[0] for i in range(5)]
        log.wait_durable(offsets[-1])
        for info in log.segments():
            assert io.synced_size(info.path) == info.size
        assert io.dir_syncs >= dir_syncs + 1


def test_group_commit_shares_fsyncs_between_threads(tmp_path: Path) -> None:
    io = SlowSyncIO(0.002)
    threads, per_thread = 16, 25
    problems: list[str] = []
    lock = threading.Lock()
    with Wal.open(tmp_path, fileio=io) as log:
        baseline = io.data_syncs()

        def writer(n: int) -> None:
            for i in range(per_thread):
                with lock:
                    (off,) = log.append([(3, payload(n * 1000 + i))])
                log.wait_durable(off)
                path, end = _record_end(log, off)
                if io.synced_size(path) < end:
                    problems.append(f"{off:#x} acknowledged before an fsync covered it")

        workers = [threading.Thread(target=writer, args=(n,)) for n in range(threads)]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()
        syncs = io.data_syncs() - baseline
        writes = threads * per_thread
        assert problems == []
        assert log.stats().writes == writes
        assert syncs <= writes / 4, f"{syncs} fsyncs for {writes} writes"
        assert len(list(log.entries())) == writes


def test_group_commit_with_asyncio_tasks(tmp_path: Path) -> None:
    io = SlowSyncIO(0.002)
    with Wal.open(tmp_path, fileio=io) as log:
        baseline = io.data_syncs()

        async def write(i: int) -> int:
            loop = asyncio.get_running_loop()
            (off,) = log.append([(3, payload(i))])
            future: asyncio.Future[WalIoError | None] = loop.create_future()
            log.when_durable(off, lambda err: loop.call_soon_threadsafe(future.set_result, err))
            assert await future is None
            return off

        async def main() -> list[int]:
            return await asyncio.gather(*(write(i) for i in range(300)))

        offsets = asyncio.run(main())
        assert all(off < log.durable_end for off in offsets)
        assert io.data_syncs() - baseline <= 300 / 5


def test_open_syncs_every_segment_a_previous_run_may_have_left_unsynced(tmp_path: Path) -> None:
    with Wal.open(tmp_path, policy=FsyncPolicy("never"), segment_size=256) as log:
        for i in range(8):
            log.append([(3, payload(i, 76))])
    io = FaultyIO()
    with Wal.open(tmp_path, fileio=io, segment_size=256) as log:
        infos = log.segments()
        assert len(infos) == 4
        for info in infos:
            assert io.synced_size(info.path) == info.size
        assert log.durable_end == log.head


def test_every_write_gathers_writers_after_a_crowded_round() -> None:
    from pyrstmdb.storage.wal.flusher import GATHER_LIMIT, Backlog, due

    policy = FsyncPolicy("every_write")

    def backlog(waiting: int, last: tuple[int, float, float]) -> Backlog:
        return Backlog(waiting, waiting > 0, False, 0.0, False, None, last)

    # A lone writer never waits.
    assert due(policy, backlog(1, (1, 0.004, 10.0)), 10.0) == (True, None)
    # After a round of 8, the first returning writer waits for the others...
    ready, wait = due(policy, backlog(1, (8, 0.004, 10.0)), 10.0005)
    assert not ready and wait is not None and 0 < wait <= 0.0015 + 1e-9
    # ...until as many are back as last time, or the pause is over.
    assert due(policy, backlog(8, (8, 0.004, 10.0)), 10.0005) == (True, None)
    assert due(policy, backlog(3, (8, 0.004, 10.0)), 10.0021) == (True, None)
    # The pause never exceeds the limit, however slow the disk.
    ready, wait = due(policy, backlog(2, (50, 1.0, 10.0)), 10.0)
    assert not ready and wait == pytest.approx(GATHER_LIMIT)
    assert due(policy, backlog(0, (8, 0.004, 10.0)), 10.0) == (False, None)
