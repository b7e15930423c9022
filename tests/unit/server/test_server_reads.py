"""Reads in the server while a write they saw is rolled back: answered again, never failed."""

from __future__ import annotations

import asyncio
import errno
from pathlib import Path
from typing import Any

from pyrstmdb.aio import DurabilityWaiter
from pyrstmdb.core import Core
from pyrstmdb.engine.commands import ApplyEvent, CreateInstance, PutMachine
from pyrstmdb.server.handlers import instances
from pyrstmdb.server.handlers.base import Answer, Context, Settings
from pyrstmdb.server.session import Session
from pyrstmdb.storage.disk import DiskStore
from pyrstmdb.storage.wal import FileIO


class FailingWrites(FileIO):
    """Fails every ``write`` with ENOSPC while ``full`` is set."""

    def __init__(self) -> None:
        self.full = False

    def write(self, fd: int, data: bytes | bytearray | memoryview) -> int:
        if self.full:
            raise OSError(errno.ENOSPC, "injected: no space left on device")
        return super().write(fd, data)


def test_a_read_that_saw_a_rolled_back_write_is_answered_from_the_durable_state(
    tmp_path: Path, order_machine: dict[str, Any]
) -> None:
    disk = FailingWrites()
    core = Core(DiskStore.open(str(tmp_path), fileio=disk), clock=lambda: 1_700_000_000_000)

    async def main() -> tuple[Any, Any]:
        loop = asyncio.get_running_loop()
        waiter = DurabilityWaiter(core, loop)
        for pair in (
            core.put_machine(PutMachine("order", 1, order_machine)),
            core.write(CreateInstance("order", 1, "o", {"n": 1})),
        ):
            await waiter.visible(pair[1])
        ctx = Context(
            core, waiter, Session(False, frozenset()), Settings("t", False), loop, None, None
        )
        disk.full = True
        with core.store._wal._state.round_lock:  # (no round may fail before both reads ran)
            core.apply_event(ApplyEvent("o", "PAY", {"n": 2}))  # in memory; its round fails
            get = instances.get_instance(ctx, {"instance_id": "o"})
            listed = instances.list_instances(ctx, {})
        answers = []
        for reply in (get, listed):
            assert isinstance(reply, Answer) and reply.wait is not None  # it had to wait
            answers.append(await asyncio.wait_for(reply.wait, 10))
        waiter.close()
        return answers[0], answers[1]

    got, listed = asyncio.run(main())
    assert (got["state"], got["ctx"]) == ("created", {"n": 1})
    assert [(i["id"], i["state"]) for i in listed["instances"]] == [("o", "created")]
    core.close()
