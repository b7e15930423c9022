"""Rounds offloaded to another owner (the server's loop): the log's side of the contract.

The owner's sync is simulated here (``submit`` records the descriptor, the test decides
the outcome), so the interleavings that matter can be forced.
"""

from __future__ import annotations

import errno
import os
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from wal_testkit import FaultyIO, eventually, payload

from pyrstmdb.errors import WalIoError
from pyrstmdb.storage.wal import Wal
from pyrstmdb.storage.wal.offload import RoundOffload


def _offload(log: Wal) -> RoundOffload:
    return RoundOffload(log._state)  # the faulty disk keeps Wal.offload() from offering one


def _owner(offload: RoundOffload) -> Callable[[], bool]:
    def kick() -> bool:
        return True

    assert offload.attach(kick)
    return kick


def test_an_offloaded_round_is_durable_only_when_its_owner_says_so(tmp_path: Path) -> None:
    with Wal.open(tmp_path) as log:
        offload = _offload(log)
        kick = _owner(offload)
        (offset,) = log.append([(3, payload(1))])
        time.sleep(0.05)  # the flusher leaves data rounds to the owner
        assert log.durable_end <= offset
        submitted: list[int] = []
        assert offload.arm()
        plan = offload.begin(submitted.append)
        assert plan is not None and len(submitted) == 1
        os.fdatasync(submitted[0])  # what the helper does
        offload.end(plan, None)
        assert log.durable_end > offset
        offload.detach(kick)


@pytest.mark.slow
def test_a_failed_log_starts_no_offloaded_round(tmp_path: Path) -> None:
    io = FaultyIO()
    with Wal.open(tmp_path, fileio=io) as log:
        offload = _offload(log)
        (kept,) = log.append([(3, payload(0))])
        log.wait_durable(kept)
        durable = log.durable_end
        kick = _owner(offload)
        (lost,) = log.append([(3, payload(1))])
        plan = offload.begin(lambda fd: None)
        assert plan is not None
        with pytest.raises(WalIoError):
            offload.end(plan, OSError(errno.EIO, "injected"))
        assert log.failed  # no failure handler here: the log stays failed
        submitted: list[int] = []
        assert offload.begin(submitted.append) is None  # nothing declared durable now
        assert submitted == [] and log.durable_end == durable
        offload.detach(kick)
        log.recover_after_failure()
        assert log.head == durable
        with pytest.raises(WalIoError):
            log.wait_durable(lost, timeout=1)


def test_a_round_that_outlives_a_cut_back_claims_nothing(tmp_path: Path) -> None:
    with Wal.open(tmp_path) as log:
        offload = _offload(log)
        (kept,) = log.append([(3, payload(0))])
        log.wait_durable(kept)
        durable = log.durable_end
        kick = _owner(offload)
        log.append([(3, payload(1))])
        late = offload.begin(lambda fd: None)  # its sync is still "running"
        assert late is not None
        # Meanwhile another round fails and the log is cut back to its durable end.
        log.append([(3, payload(2))])
        failing = offload.begin(lambda fd: None)
        assert failing is not None
        with pytest.raises(WalIoError):
            offload.end(failing, OSError(errno.EIO, "injected"))
        log.recover_after_failure()
        assert log.head == durable
        offload.end(late, None)  # the late success must not move the durable end
        assert log.durable_end == durable
        offload.detach(kick)


def test_detach_hands_unsynced_data_back_to_the_flusher(tmp_path: Path) -> None:
    with Wal.open(tmp_path) as log:
        offload = _offload(log)
        kick = _owner(offload)
        (offset,) = log.append([(3, payload(1))])
        time.sleep(0.05)
        assert log.durable_end <= offset
        offload.detach(kick)
        assert eventually(lambda: log.durable_end > offset)
