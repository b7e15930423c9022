"""WAL benchmarks: durable append throughput under every_write (group commit) and replay speed.

``run(tmpdir)`` returns ``(name, value, unit)`` rows:

* durable appends/s and fsyncs/s with 1, 8 and 64 writer threads, each looping
  ``append`` (under a shared lock, as the storage layer does) then ``wait_durable``;
* the same with 1 and 64 writers on a simulated slower disk (2 ms added to each data
  fsync), where the fsync rather than the interpreter bounds throughput;
* replay: ``Wal.open`` (recovery scan) and ``entries()`` over about 200k records of
  about 200 bytes, in records/s.

Takes well under a minute.
"""

from __future__ import annotations

import os
import shutil
import threading
import time

from pyrstmdb.storage.policy import FsyncPolicy
from pyrstmdb.storage.wal import FileIO, Wal

Row = tuple[str, float, str]

WRITE_SECONDS = 2.0
REPLAY_RECORDS = 200_000
PAYLOAD = (
    b'{"type":"apply_event","instance_id":"order-000001","event":"PAY","from_state":"created",'
    b'"to_state":"paid","payload":{"amount":5},"ctx":{"amount":5,"currency":"EUR"}}'
)


class SlowDisk(FileIO):
    """Adds a fixed delay to every data fsync, like a disk with a real flush latency."""

    def __init__(self, delay: float) -> None:
        self.delay = delay

    def fdatasync(self, fd: int) -> None:
        time.sleep(self.delay)
        super().fdatasync(fd)


def durable_appends(
    directory: str, writers: int, fileio: FileIO | None = None
) -> tuple[float, float]:
    """(durable appends/s, fsyncs/s) with ``writers`` threads for :data:`WRITE_SECONDS`."""
    shutil.rmtree(directory, ignore_errors=True)
    log = Wal.open(directory, fileio=fileio)
    lock = threading.Lock()
    counts = [0] * writers
    start_gate = threading.Barrier(writers + 1)
    deadline = [0.0]

    def writer(index: int) -> None:
        start_gate.wait()
        done = 0
        while time.perf_counter() < deadline[0]:
            with lock:
                (offset,) = log.append([(3, PAYLOAD)])
            log.wait_durable(offset)
            done += 1
        counts[index] = done

    threads = [threading.Thread(target=writer, args=(i,)) for i in range(writers)]
    for thread in threads:
        thread.start()
    fsyncs_before = log.stats().fsyncs
    started = time.perf_counter()
    deadline[0] = started + WRITE_SECONDS
    start_gate.wait()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    fsyncs = log.stats().fsyncs - fsyncs_before
    log.close()
    shutil.rmtree(directory, ignore_errors=True)
    return sum(counts) / elapsed, fsyncs / elapsed


def replay(directory: str) -> tuple[float, float]:
    """(records/s of Wal.open's recovery scan, records/s of entries()) over ~200k records."""
    shutil.rmtree(directory, ignore_errors=True)
    with Wal.open(directory, policy=FsyncPolicy("never")) as log:
        batch = [(3, PAYLOAD)] * 1000
        for _ in range(REPLAY_RECORDS // len(batch)):
            log.append(batch)
    started = time.perf_counter()
    log = Wal.open(directory, policy=FsyncPolicy("never"))
    opened = time.perf_counter() - started
    started = time.perf_counter()
    count = sum(1 for _entry in log.entries())
    iterated = time.perf_counter() - started
    log.close()
    shutil.rmtree(directory, ignore_errors=True)
    assert count == REPLAY_RECORDS, count
    return count / opened, count / iterated


def run(tmpdir: str) -> list[Row]:
    """Run every WAL benchmark in a scratch directory below ``tmpdir``."""
    directory = os.path.join(tmpdir, "wal-bench")
    rows: list[Row] = []
    for writers in (1, 8, 64):
        rate, fsyncs = durable_appends(directory, writers)
        rows.append((f"wal every_write durable appends, {writers} writers", rate, "appends/s"))
        rows.append((f"wal every_write fsyncs, {writers} writers", fsyncs, "fsyncs/s"))
    for writers in (1, 64):
        rate, fsyncs = durable_appends(directory, writers, SlowDisk(0.002))
        name = f"wal every_write durable appends, {writers} writers, +2 ms fsync"
        rows.append((name, rate, "appends/s"))
        name = f"wal every_write fsyncs, {writers} writers, +2 ms fsync"
        rows.append((name, fsyncs, "fsyncs/s"))
    scan, iterate = replay(directory)
    rows.append(("wal open (recovery scan), 200k records", scan, "records/s"))
    rows.append(("wal replay entries(), 200k records", iterate, "records/s"))
    return rows


if __name__ == "__main__":
    import tempfile

    with tempfile.TemporaryDirectory() as scratch:
        for name, value, unit in run(scratch):
            print(f"{name:<62} {value:>12,.0f} {unit}")
