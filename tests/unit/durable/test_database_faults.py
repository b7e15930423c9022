"""Disk faults through the whole write path: ENOSPC/EIO in write() and in fsync.

The failing write gets WAL_IO_ERROR, memory stays as it was (and equal to the
disk), reads keep working, and writes succeed again once the disk recovers.
"""

from __future__ import annotations

import asyncio
import errno
import io
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from pyrstmdb import WalIoError, aio
from pyrstmdb.core import Core
from pyrstmdb.engine.commands import (
    ApplyEvent,
    CreateInstance,
    DeleteInstance,
    ListInstances,
    PutMachine,
)
from pyrstmdb.storage.check import run_check
from pyrstmdb.storage.disk import DiskStore
from pyrstmdb.storage.wal import FileIO


class FlakyDisk(FileIO):
    """Fails ``write`` or ``fdatasync`` with the chosen errno while ``broken`` is set."""

    def __init__(self) -> None:
        self.fail_write: int | None = None
        self.fail_sync: int | None = None

    def write(self, fd: int, data: bytes | bytearray | memoryview) -> int:
        if self.fail_write is not None:
            raise OSError(self.fail_write, "injected write failure")
        return super().write(fd, data)

    def fdatasync(self, fd: int) -> None:
        if self.fail_sync is not None:
            raise OSError(self.fail_sync, "injected fsync failure")
        super().fdatasync(fd)

    def fsync(self, fd: int) -> None:
        if self.fail_sync is not None:
            raise OSError(self.fail_sync, "injected fsync failure")
        super().fsync(fd)


def _open(path: Path, disk: FlakyDisk) -> Core:
    return Core(DiskStore.open(str(path), fileio=disk), clock=lambda: 1_700_000_000_000)


def _run(core: Core, pair: tuple[Any, int]) -> Any:
    result, offset = pair
    core.wait(offset)
    return result


def _when_room(write: Callable[[], Any], timeout: float = 5.0) -> Any:
    """Run ``write``, again while the log refuses it for lack of space (it probes again
    shortly after a failure for lack of space)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return write()
        except WalIoError as err:
            if "no space" not in err.message or time.monotonic() > deadline:
                raise
        time.sleep(0.01)


def _setup(core: Core, order_machine: dict[str, Any]) -> None:
    _run(core, core.put_machine(PutMachine("order", 1, order_machine)))
    _run(core, core.write(CreateInstance("order", 1, "o", {"n": 1})))


@pytest.mark.parametrize("code", [errno.ENOSPC, errno.EIO])
def test_write_failure_changes_nothing(
    tmp_path: Path, order_machine: dict[str, Any], code: int
) -> None:
    disk = FlakyDisk()
    core = _open(tmp_path, disk)
    _setup(core, order_machine)
    before = core.get_instance("o")[0]
    disk.fail_write = code
    with pytest.raises(WalIoError) as info:  # the fsync round's write fails
        _run(core, core.apply_event(ApplyEvent("o", "PAY", {"n": 2})))
    assert info.value.retryable is True
    assert core.get_instance("o")[0] == before  # memory unchanged, reads still served
    entries = core.wal_stats().entry_count
    disk.fail_write = None
    result = _when_room(lambda: _run(core, core.apply_event(ApplyEvent("o", "PAY", {"n": 2}))))
    assert result.to_state == "paid"
    assert core.wal_stats().entry_count == entries + 1  # no sequence was consumed by the failure
    core.close()
    reopened = _open(tmp_path, FlakyDisk())
    assert reopened.get_instance("o")[0].ctx == {"n": 2}
    reopened.close()


@pytest.mark.parametrize("code", [errno.ENOSPC, errno.EIO])
def test_fsync_failure_rolls_memory_back(
    tmp_path: Path, order_machine: dict[str, Any], code: int
) -> None:
    disk = FlakyDisk()
    core = _open(tmp_path, disk)
    _setup(core, order_machine)
    disk.fail_sync = code
    result, offset = core.apply_event(ApplyEvent("o", "PAY", {"n": 2}))
    assert result.to_state == "paid"  # decided and written, but not yet durable
    with pytest.raises(WalIoError):
        core.wait(offset)
    # the failure handler rebuilt memory from what is durable
    state_now = core.state.instances["o"]
    assert (state_now.state, state_now.ctx) == ("created", {"n": 1})
    disk.fail_sync = None
    again = _when_room(lambda: _run(core, core.apply_event(ApplyEvent("o", "PAY", {"n": 3}))))
    assert again.to_state == "paid"
    core.close()
    reopened = _open(tmp_path, FlakyDisk())
    instance = reopened.state.instances["o"]
    assert (instance.state, instance.ctx) == ("paid", {"n": 3})
    assert [r.entry["type"] for r in reopened.wal_read(0, None).records] == [
        "put_machine",
        "create_instance",
        "apply_event",
    ]
    reopened.close()


def test_concurrent_writers_all_fail_together_on_fsync_error(
    tmp_path: Path, order_machine: dict[str, Any]
) -> None:
    disk = FlakyDisk()
    core = _open(tmp_path, disk)
    _run(core, core.put_machine(PutMachine("order", 1, order_machine)))
    disk.fail_sync = errno.EIO
    errors: list[BaseException] = []

    def create(n: int) -> None:
        try:
            _run(core, core.write(CreateInstance("order", 1, f"i{n}")))
        except WalIoError as err:
            errors.append(err)

    threads = [threading.Thread(target=create, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert len(errors) == 8
    assert core.state.instances == {}
    disk.fail_sync = None
    _run(core, core.write(CreateInstance("order", 1, "after")))
    assert list(core.state.instances) == ["after"]
    core.close()


def test_failed_fsync_during_compaction_rolls_back_too(
    tmp_path: Path, order_machine: dict[str, Any]
) -> None:
    disk = FlakyDisk()
    core = _open(tmp_path, disk)
    _setup(core, order_machine)
    disk.fail_sync = errno.EIO
    # A write whose background fsync fails, then a compaction whose own fsync fails.
    _result, offset = core.apply_event(ApplyEvent("o", "PAY", {"n": 2}))
    with pytest.raises(WalIoError):
        core.compact(True)
    with pytest.raises(WalIoError):
        core.wait(offset)
    state_now = core.state.instances["o"]
    assert (state_now.state, state_now.ctx) == ("created", {"n": 1})
    disk.fail_sync = None
    assert _run(core, core.apply_event(ApplyEvent("o", "PAY", {"n": 3}))).ctx == {"n": 3}
    assert core.compact(True).total_snapshots == 1
    core.close()


def test_loop_waits_fail_for_discarded_records_and_offsets_are_not_reused(
    tmp_path: Path, order_machine: dict[str, Any]
) -> None:
    disk = FlakyDisk()
    core = _open(tmp_path, disk)
    _setup(core, order_machine)

    async def main() -> None:
        waiter = aio.DurabilityWaiter(core, asyncio.get_running_loop())
        disk.fail_sync = errno.EIO
        offsets = [core.write(CreateInstance("order", 1, f"lost{n}"))[1] for n in range(5)]
        futures = [waiter.wait(offset) for offset in offsets]
        outcomes = await asyncio.wait_for(
            asyncio.gather(*[f for f in futures if f is not None], return_exceptions=True), 10
        )
        assert len(outcomes) == 5
        assert all(isinstance(outcome, WalIoError) for outcome in outcomes)
        assert sorted(core.state.instances) == ["o"]  # rolled back to what is durable
        disk.fail_sync = None
        _result, fresh = core.write(CreateInstance("order", 1, "kept"))
        assert fresh > max(offsets)  # a new segment: no discarded offset is reused
        await waiter.visible(fresh)
        # A wait that starts only now, for a discarded record, still fails at once.
        late = waiter.wait(offsets[2])
        assert late is not None
        with pytest.raises(WalIoError):
            await late
        with pytest.raises(WalIoError):
            core.wait(offsets[2])
        waiter.close()

    aio.run(main())
    assert sorted(core.state.instances) == ["kept", "o"]
    core.close()
    reopened = _open(tmp_path, FlakyDisk())
    assert sorted(reopened.state.instances) == ["kept", "o"]
    reopened.close()


def test_segments_emptied_by_a_failed_round_pass_the_offline_check(
    tmp_path: Path, order_machine: dict[str, Any]
) -> None:
    disk = FlakyDisk()
    store = DiskStore.open(str(tmp_path), fileio=disk, segment_size=512)
    core = Core(store, clock=lambda: 1_700_000_000_000)
    _setup(core, order_machine)
    disk.fail_sync = errno.EIO
    with store.wal._state.round_lock:  # hold the round back until all four are queued
        lost = [
            core.write(CreateInstance("order", 1, f"lost{n}", {"pad": "x" * 200})) for n in range(4)
        ]
    with pytest.raises(WalIoError):
        core.wait(lost[-1][1])
    disk.fail_sync = None
    _run(core, core.write(CreateInstance("order", 1, "kept")))
    sizes = [info.size for info in store.wal.segments()]
    assert 0 in sizes[1:-1]  # an emptied segment between two holding records
    core.close()
    out = io.StringIO()
    assert run_check(str(tmp_path), False, out) == 0, out.getvalue()
    reopened = _open(tmp_path, FlakyDisk())
    assert sorted(reopened.state.instances) == ["kept", "o"]
    reopened.close()


def test_a_roll_back_into_emptied_segments_publishes_nothing_discarded(
    tmp_path: Path, order_machine: dict[str, Any]
) -> None:
    disk = FlakyDisk()
    setup = DiskStore.open(str(tmp_path / "setup"), fileio=disk)
    core = Core(setup, clock=lambda: 1_700_000_000_000)
    _setup(core, order_machine)
    used = core.store.head - (1 << 40)  # what the set-up takes in a segment
    core.close()
    store = DiskStore.open(str(tmp_path / "db"), fileio=disk, segment_size=used + 400)
    core = Core(store, clock=lambda: 1_700_000_000_000)
    published: list[int] = []
    core.add_commit_listener(lambda batch: published.extend(offset for offset, _ in batch))
    _setup(core, order_machine)
    kept = list(published)
    disk.fail_write = errno.EIO  # the round fails; the cut-back (which writes nothing) works
    with store._wal._state.round_lock:  # both records in one round
        _r, lost = core.apply_event(ApplyEvent("o", "PAY", {"n": 2}))
        core.write(DeleteInstance("o"))
        _r, beyond = core.write(CreateInstance("order", 1, "p", {"pad": "x" * 500}))
    assert lost >> 40 == 1 and beyond >> 40 == 2  # the second segment is emptied
    with pytest.raises(WalIoError):
        core.wait(beyond)
    assert core.store.head == 2 << 40  # the head starts the emptied segment
    # Nothing lies between the durable end and the head: a list has nothing to wait for.
    assert core.list_instances(ListInstances())[1] == -1
    disk.fail_write = None
    again = _run(core, core.apply_event(ApplyEvent("o", "PAY", {"n": 3})))
    assert published == [*kept, again.wal_offset]  # nothing discarded was ever published
    core.close()


def test_a_failed_wait_returns_only_once_memory_is_rolled_back(
    tmp_path: Path, order_machine: dict[str, Any]
) -> None:
    disk = FlakyDisk()
    core = _open(tmp_path, disk)
    _setup(core, order_machine)
    before = core.get_instance("o")[0]
    disk.fail_write = errno.EIO
    _result, lost = core.apply_event(ApplyEvent("o", "PAY", {"n": 2}))
    assert core.get_instance("o")[0] != before  # applied in memory, not yet durable
    holding = threading.Event()

    def delay_the_failure_handler() -> None:
        with core._lock:  # as a slow caller would; the handler waits behind it
            holding.set()
            time.sleep(0.3)

    blocker = threading.Thread(target=delay_the_failure_handler)
    blocker.start()
    holding.wait(5)
    with pytest.raises(WalIoError):
        core.wait(lost)
    # A caller told of the failure reads again (as Database does) and sees the durable
    # state, not the discarded change.
    assert core.get_instance("o")[0] == before
    blocker.join(5)
    disk.fail_write = None
    core.close()
