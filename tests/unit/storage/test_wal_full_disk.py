"""A full disk under every_write: what a failed round may claim, the cut-back, the space gate.

The rounds whose interleaving matters are driven by hand here (an offloaded round whose
write fails, then a round that was already waiting for the round lock), so the race that
once declared never-written bytes durable is forced rather than hoped for.
"""

from __future__ import annotations

import errno
import os
import time
from pathlib import Path

import pytest
from wal_testkit import FaultyIO, append_when_room, eventually, payload, seg_path

from pyrstmdb.errors import WalIoError
from pyrstmdb.storage.wal import Wal, syncing
from pyrstmdb.storage.wal.appender import SPACE_PROBE_INTERVAL, SPACE_PROBE_NAME
from pyrstmdb.storage.wal.offload import RoundOffload


def _segment_files(directory: Path) -> list[str]:
    return sorted(name for name in os.listdir(directory) if name.endswith(".wal"))


def _fail_an_offloaded_write(log: Wal, io: FaultyIO) -> int:
    """Queue one record and fail the round that writes it (nothing reaches the file)."""
    offload = RoundOffload(log._state)
    assert offload.attach(lambda: True)
    (lost,) = log.append([(3, payload(1, 3000))])
    io.partial_writes = False
    io.arm("write", errno.ENOSPC)
    with pytest.raises(WalIoError):
        offload.begin(lambda fd: None)
    return lost


def test_a_round_planned_after_a_failed_one_claims_nothing(tmp_path: Path) -> None:
    io = FaultyIO()
    with Wal.open(tmp_path, fileio=io) as log:
        (kept,) = log.append([(3, payload(0))])
        log.wait_durable(kept, timeout=5)
        durable = log.durable_end
        lost = _fail_an_offloaded_write(log, io)
        assert log.failed
        size = seg_path(tmp_path, 1).stat().st_size
        assert size == durable - (1 << 40)  # the lost record never reached the file
        # A round that was waiting for the round lock meanwhile (the flusher, after a
        # rotation) runs now: it must not declare the head, lost bytes included, durable.
        syncing.sync_round(log._state, background=True, force=False)
        assert log.durable_end == durable
        log.recover_after_failure()
        # The cut-back went to the real durable end: nothing padded with zeros.
        assert seg_path(tmp_path, 1).stat().st_size == size
        assert log.head == log.durable_end == durable
        with pytest.raises(WalIoError):
            log.wait_durable(lost, timeout=0.5)
    with Wal.open(tmp_path) as log:
        assert [(e.offset, e.payload) for e in log.entries()] == [(kept, payload(0))]


def test_a_late_successful_sync_claims_nothing_once_another_round_failed(
    tmp_path: Path,
) -> None:
    io = FaultyIO()
    with Wal.open(tmp_path, fileio=io) as log:
        offload = RoundOffload(log._state)
        assert offload.attach(lambda: True)
        (kept,) = log.append([(3, payload(0))])
        late = offload.begin(lambda fd: None)  # written, its sync still "running"
        assert late is not None
        durable = log.durable_end
        log.append([(3, payload(1))])
        io.arm("write", errno.ENOSPC)
        with pytest.raises(WalIoError):
            offload.begin(lambda fd: None)
        # The late sync succeeds before the log is cut back: every write the failure
        # covered was told it failed, so none of them may become durable now.
        offload.end(late, None)
        assert log.durable_end == durable
        log.recover_after_failure()
        with pytest.raises(WalIoError):
            log.wait_durable(kept, timeout=0.5)
    with Wal.open(tmp_path) as log:
        assert list(log.entries()) == []


def test_the_cut_back_never_lengthens_a_segment_shorter_than_its_durable_end(
    tmp_path: Path,
) -> None:
    io = FaultyIO()
    log = Wal.open(tmp_path, fileio=io)
    log.set_failure_handler(lambda _error: None)
    offsets = log.append([(3, payload(n, 500)) for n in range(4)])
    log.wait_durable(offsets[-1], timeout=5)
    path = seg_path(tmp_path, 1)
    os.truncate(path, 700)  # durable bytes lost behind the log's back
    io.arm("fdatasync", errno.EIO)
    (lost,) = log.append([(3, payload(9))])
    with pytest.raises(WalIoError):
        log.wait_durable(lost, timeout=5)
    size = path.stat().st_size
    assert size < log.durable_end - (1 << 40)
    with pytest.raises(WalIoError, match="fewer than"):
        log.recover_after_failure()
    assert path.stat().st_size == size  # not padded with zeros up to the durable end
    assert log.failed
    with pytest.raises(WalIoError):
        log.append([(3, payload(10))])
    with pytest.raises(WalIoError, match="fewer than"):
        log.close()  # closing cannot repair it either; the files are closed anyway
    assert path.stat().st_size == size


def test_after_a_cut_back_into_emptied_segments_nothing_looks_unsynced(tmp_path: Path) -> None:
    io = FaultyIO()
    with Wal.open(tmp_path, fileio=io, segment_size=256) as log:
        log.set_failure_handler(lambda _error: None)
        log.wait_durable(log.append([(3, payload(0, 176))])[0], timeout=5)
        io.arm("fdatasync", errno.EIO)
        offsets = log.append([(3, payload(1, 176)), (3, payload(2, 176))])
        with pytest.raises(WalIoError):
            log.wait_durable(offsets[-1], timeout=5)
        log.recover_after_failure()
        assert log.head == 3 << 40  # the start of the emptied active segment
        # Nothing lies between the durable end and the head: a read that waits for
        # "everything written so far" has nothing to wait for.
        assert log.durable_end == log.head
        (again,) = log.append([(3, payload(3, 176))])
        assert again == 4 << 40
        log.wait_durable(again, timeout=5)


def test_no_space_refuses_appends_at_once_until_a_probe_finds_room(tmp_path: Path) -> None:
    io = FaultyIO()
    with Wal.open(tmp_path, fileio=io, segment_size=4096) as log:
        log.set_failure_handler(lambda _error: log.recover_after_failure())
        (kept,) = log.append([(3, payload(0))])
        log.wait_durable(kept, timeout=5)
        io.arm("write", errno.ENOSPC, times=-1)  # the device stays full
        (lost,) = log.append([(3, payload(1))])
        with pytest.raises(WalIoError):
            log.wait_durable(lost, timeout=5)
        assert eventually(lambda: not log.failed)
        head, sequence = log.head, log.next_sequence
        files = _segment_files(tmp_path)
        writes = io.calls.get("write", 0)
        refused = 0
        deadline = time.monotonic() + 3 * SPACE_PROBE_INTERVAL
        while time.monotonic() < deadline:
            started = time.monotonic()
            with pytest.raises(WalIoError, match="no space left"):
                log.append([(3, payload(2, 3000))])
            assert time.monotonic() - started < 0.1  # at once, no round, no cut-back
            refused += 1
        # No offset handed out, nothing queued, no new segment, a probe now and then.
        assert (log.head, log.next_sequence) == (head, sequence)
        assert _segment_files(tmp_path) == files
        assert 1 <= io.calls.get("write", 0) - writes <= 4 < refused
        assert not (tmp_path / SPACE_PROBE_NAME).exists()
        io.disarm()  # space freed: writes resume by themselves
        (again,) = append_when_room(log, [(3, payload(3))], timeout=2 * SPACE_PROBE_INTERVAL + 1)
        log.wait_durable(again, timeout=5)
        assert again >= head and again != lost
        assert len(_segment_files(tmp_path)) <= len(files) + 1
    with Wal.open(tmp_path) as log:
        assert [e.payload for e in log.entries()] == [payload(0), payload(3)]


def test_an_io_error_is_not_taken_for_a_full_disk(tmp_path: Path) -> None:
    io = FaultyIO()
    with Wal.open(tmp_path, fileio=io) as log:
        log.set_failure_handler(lambda _error: log.recover_after_failure())
        io.arm("fdatasync", errno.EIO)
        (lost,) = log.append([(3, payload(1))])
        with pytest.raises(WalIoError):
            log.wait_durable(lost, timeout=5)
        assert eventually(lambda: not log.failed)
        (again,) = log.append([(3, payload(2))])  # no space gate: accepted at once
        log.wait_durable(again, timeout=5)
