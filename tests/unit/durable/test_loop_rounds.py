"""Fsync rounds run by the event loop with the fdatasync in a helper process.

Real files, a real helper process (or the real one answering EIO where asked), a real
``Core`` over ``DiskStore``: every acknowledged write must be on disk after reopening,
failed rounds must fail exactly their writes, and the rounds must survive the helper.
"""

from __future__ import annotations

import asyncio
import os
import select
import signal
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from pyrstmdb import WalIoError, aio
from pyrstmdb.aio import DurabilityWaiter
from pyrstmdb.aio_rounds import LoopRounds
from pyrstmdb.core import Core
from pyrstmdb.engine.commands import ApplyEvent, CreateInstance, PutMachine
from pyrstmdb.storage.disk import DiskStore
from pyrstmdb.storage.policy import FsyncPolicy
from pyrstmdb.storage.wal import FileIO
from pyrstmdb.storage.wal.fsync_helper import FsyncHelper, HelperGone
from pyrstmdb.storage.wal.offload import RoundOffload

COUNTER = {
    "states": ["on"],
    "initial": "on",
    "transitions": [{"from": "on", "event": "INC", "to": "on"}],
}
FLAKY = Path(__file__).with_name("flaky_fsync_helper.py")


def _open(path: Path) -> Core:
    return Core(DiskStore.open(str(path)), clock=lambda: 1_700_000_000_000)


def _prepared(path: Path, instances: int) -> Core:
    core = _open(path)
    core.wait(core.put_machine(PutMachine("counter", 1, COUNTER))[1])
    for n in range(instances):
        core.wait(core.write(CreateInstance("counter", 1, f"c{n}", {"k": 0}))[1])
    return core


def _counts(path: Path, instances: int) -> dict[str, int]:
    core = _open(path)
    try:
        return {f"c{n}": core.live_instance(f"c{n}").ctx["k"] for n in range(instances)}
    finally:
        core.close()


def _flaky(fail_at: str) -> Callable[[], FsyncHelper]:
    return lambda: FsyncHelper([sys.executable, str(FLAKY), fail_at])


async def _inc(core: Core, waiter: DurabilityWaiter, name: str, k: int) -> None:
    _result, offset = core.apply_event(ApplyEvent(name, "INC", {"k": k}))
    await waiter.visible(offset)


def _answers(helper: FsyncHelper, timeout: float = 10.0) -> list[int]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        select.select([helper.fileno()], [], [], 0.1)
        got = helper.answers()
        if got:
            return got
    raise AssertionError("the helper never answered")


# -- the helper process on its own -----------------------------------------------------------


def test_helper_syncs_the_descriptor_it_is_given_and_exits_when_closed(tmp_path: Path) -> None:
    helper = FsyncHelper()
    fd = os.open(tmp_path / "f", os.O_WRONLY | os.O_CREAT)
    try:
        os.write(fd, b"x" * 100)
        helper.submit(fd)
        helper.submit(fd)
        answers = _answers(helper)
        if len(answers) < 2:
            answers += _answers(helper)
        assert answers == [0, 0]
    finally:
        os.close(fd)
        helper.close()
    assert helper._process.returncode == 0


def test_a_dead_helper_is_reported_not_waited_for(tmp_path: Path) -> None:
    helper = FsyncHelper()
    try:
        os.kill(helper.pid, signal.SIGKILL)
        helper._process.wait(10)
        with pytest.raises(HelperGone):
            _answers(helper)
        fd = os.open(tmp_path / "f", os.O_WRONLY | os.O_CREAT)
        try:
            with pytest.raises(HelperGone):
                for _ in range(100):  # the socket may take a moment to notice
                    helper.submit(fd)
                    time.sleep(0.01)
        finally:
            os.close(fd)
    finally:
        helper.close()


def test_flaky_helper_answers_eio_only_where_asked(tmp_path: Path) -> None:
    helper = _flaky("2")()
    fd = os.open(tmp_path / "f", os.O_WRONLY | os.O_CREAT)
    try:
        got: list[int] = []
        for _ in range(3):
            helper.submit(fd)
            got += _answers(helper)
        assert got == [0, 5, 0]  # 5 = EIO
    finally:
        os.close(fd)
        helper.close()


# -- rounds run by the loop --------------------------------------------------------------------


def test_the_loop_runs_the_rounds_and_every_acknowledged_write_is_on_disk(tmp_path: Path) -> None:
    core = _prepared(tmp_path / "db", 64)
    fsyncs_before = core.wal_stats().io_stats.fsyncs

    async def main() -> None:
        waiter = DurabilityWaiter(core, asyncio.get_running_loop())
        assert waiter.runs_fsync_rounds

        async def writer(name: str) -> None:
            for k in range(1, 31):
                await _inc(core, waiter, name, k)

        await asyncio.gather(*(writer(f"c{n}") for n in range(64)))
        assert core.visible_end == core.store.head
        waiter.close()

    aio.run(main())
    fsyncs = core.wal_stats().io_stats.fsyncs - fsyncs_before
    assert 0 < fsyncs < 64 * 30  # writers shared rounds
    core.close()
    assert _counts(tmp_path / "db", 64) == {f"c{n}": 30 for n in range(64)}


def test_a_failed_helper_sync_fails_exactly_its_round_and_writes_resume(tmp_path: Path) -> None:
    path = tmp_path / "db"
    core = _prepared(path, 1)
    outcomes: list[str] = []

    async def main() -> None:
        loop = asyncio.get_running_loop()
        rounds = LoopRounds.start(_offload(core), loop, _flaky("3"))
        assert rounds is not None
        waiter = DurabilityWaiter(core, loop)  # the rounds already have their owner
        assert not waiter.runs_fsync_rounds
        k = 0
        for _ in range(5):  # one write per round: the third round fails
            try:
                await _inc(core, waiter, "c0", k + 1)
            except WalIoError:
                outcomes.append("failed")
            else:
                k += 1
                outcomes.append("ok")
        assert core.live_instance("c0").ctx["k"] == k  # memory rolled back to the disk
        waiter.close()
        rounds.close()

    aio.run(main())
    assert outcomes == ["ok", "ok", "failed", "ok", "ok"]
    core.close()
    assert _counts(path, 1) == {"c0": 4}


def test_a_killed_helper_costs_at_most_its_round_and_a_new_one_takes_over(
    tmp_path: Path,
) -> None:
    path = tmp_path / "db"
    core = _prepared(path, 8)
    acked = {f"c{n}": 0 for n in range(8)}
    failures = 0

    async def main() -> None:
        nonlocal failures
        loop = asyncio.get_running_loop()
        waiter = DurabilityWaiter(core, loop)
        rounds = waiter._rounds
        assert rounds is not None
        first = rounds.helper_pid
        assert first is not None
        stop = asyncio.Event()

        async def writer(name: str) -> None:
            nonlocal failures
            while not stop.is_set():
                k = core.live_instance(name).ctx["k"] + 1
                try:
                    await _inc(core, waiter, name, k)
                except WalIoError:
                    failures += 1
                else:
                    acked[name] = k

        async def killer() -> None:
            await asyncio.sleep(0.05)
            os.kill(first, signal.SIGKILL)
            deadline = loop.time() + 10
            while rounds.helper_pid in (None, first) and loop.time() < deadline:
                await asyncio.sleep(0.005)
            # and the new helper keeps serving: every writer gets ten more writes through
            # (waited for rather than timed, so a loaded machine cannot fail it)
            base = dict(acked)
            while loop.time() < deadline and any(acked[n] < base[n] + 10 for n in acked):
                await asyncio.sleep(0.005)
            stop.set()

        await asyncio.gather(killer(), *(writer(f"c{n}") for n in range(8)))
        assert rounds.helper_pid not in (None, first)
        waiter.close()

    aio.run(main())
    assert failures <= 8  # each writer has one write in flight; only those can fail
    assert all(k > 10 for k in acked.values())
    core.close()
    assert _counts(path, 8) == acked


def test_a_blocking_wait_on_the_loop_thread_syncs_instead_of_deadlocking(tmp_path: Path) -> None:
    core = _prepared(tmp_path / "db", 1)

    async def main() -> None:
        waiter = DurabilityWaiter(core, asyncio.get_running_loop())
        assert waiter.runs_fsync_rounds
        _result, offset = core.apply_event(ApplyEvent("c0", "INC", {"k": 1}))
        core.wait(offset)  # blocks this (the loop's) thread; the round runs right here
        assert core.visible_end > offset
        waiter.close()

    aio.run(main())
    core.close()


def test_writes_from_other_threads_are_synced_by_the_loop_and_by_the_flusher_after_close(
    tmp_path: Path,
) -> None:
    path = tmp_path / "db"
    core = _prepared(path, 2)
    done = threading.Event()

    def other_thread() -> None:
        for k in range(1, 21):
            _result, offset = core.apply_event(ApplyEvent("c1", "INC", {"k": k}))
            core.wait(offset)
        done.set()

    async def main() -> None:
        loop = asyncio.get_running_loop()
        waiter = DurabilityWaiter(core, loop)
        assert waiter.runs_fsync_rounds
        thread = threading.Thread(target=other_thread)
        thread.start()
        while not done.is_set():
            await asyncio.sleep(0.005)
        thread.join()
        waiter.close()

    aio.run(main())
    # The loop is gone: the flusher thread serves blocking waits again.
    _result, offset = core.apply_event(ApplyEvent("c0", "INC", {"k": 7}))
    core.wait(offset)
    core.close()
    assert _counts(path, 2) == {"c0": 7, "c1": 20}


class _InjectedIO(FileIO):
    """Stands for a fault-injecting disk: a FileIO subclass."""


def _offload(core: Core) -> RoundOffload:
    offload = core.fsync_offload()
    assert offload is not None
    return offload


def test_rounds_are_offloaded_only_for_real_files_under_every_write_and_to_one_owner(
    tmp_path: Path,
) -> None:
    policy = FsyncPolicy.from_env("every_n:4")
    lax = Core(DiskStore.open(str(tmp_path / "lax"), policy=policy), clock=lambda: 0)
    injected = Core(DiskStore.open(str(tmp_path / "inj"), fileio=_InjectedIO()), clock=lambda: 0)
    assert lax.fsync_offload() is None
    assert injected.fsync_offload() is None  # an injected FileIO must see every sync
    lax.close()
    injected.close()
    core = _prepared(tmp_path / "db", 1)
    offload = _offload(core)

    def first() -> bool:
        return True

    def second() -> bool:
        return True

    assert offload.attach(first)
    assert not _offload(core).attach(second)
    offload.detach(second)  # not the owner: no effect
    assert not offload.attach(second)
    offload.detach(first)
    assert offload.attach(second)
    offload.detach(second)
    core.close()
    assert not offload.attach(first)  # closed
