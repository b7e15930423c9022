"""WATCH_INSTANCE and a record that is not durable yet, through the server's own pieces.

The real dispatcher, WATCH handlers, subscription hub, durability waiter and a
durable ``Core`` run in this process over a disk whose fsync the test holds
back and then fails (a failure a server process cannot be made to show). While
the instance's latest record waits for its fsync, the WATCH_INSTANCE answer
waits too; when the fsync fails, the answer is ``WAL_IO_ERROR``, the
subscription is gone, and a new WATCH reports the state memory rolled back to.
"""

from __future__ import annotations

import asyncio
import errno
import threading
from pathlib import Path
from typing import Any

from sub_wire import TOGGLE

from pyrstmdb.aio import DurabilityWaiter
from pyrstmdb.core import Core
from pyrstmdb.engine.commands import ApplyEvent, CreateInstance, PutMachine
from pyrstmdb.protocol import Operation, Request
from pyrstmdb.server.dispatch import Dispatcher, Slot
from pyrstmdb.server.handlers.base import Context, Settings
from pyrstmdb.server.session import Session
from pyrstmdb.storage.disk import DiskStore
from pyrstmdb.storage.wal import FileIO
from pyrstmdb.subscriptions import Hub


class HeldDisk(FileIO):
    """While ``hold`` is set, the next fsync waits for ``release`` and then fails with EIO."""

    def __init__(self) -> None:
        self.hold = False
        self.release = threading.Event()

    def fdatasync(self, fd: int) -> None:
        self._maybe_fail()
        super().fdatasync(fd)

    def fsync(self, fd: int) -> None:
        self._maybe_fail()
        super().fsync(fd)

    def _maybe_fail(self) -> None:
        if self.hold:
            self.release.wait(10)
            self.hold = False  # the disk works again for the recovery that follows
            raise OSError(errno.EIO, "injected fsync failure")


class Peer:
    """The connection as the handlers and the hub see it; keeps what is pushed."""

    def __init__(self) -> None:
        self.pushed: list[dict[str, Any]] = []

    def send_event(self, message: dict[str, Any]) -> None:
        self.pushed.append(message)

    def writable(self) -> bool:
        return True

    def close(self) -> None:
        return None


async def answered(slot: Slot, seconds: float = 5.0) -> dict[str, Any]:
    deadline = asyncio.get_running_loop().time() + seconds
    while slot.message is None:
        assert asyncio.get_running_loop().time() < deadline, "no answer"
        await asyncio.sleep(0.005)
    return slot.message


def test_watch_instance_waits_for_durability_and_a_failed_fsync_removes_it(
    tmp_path: Path,
) -> None:
    disk = HeldDisk()
    core = Core(
        DiskStore.open(str(tmp_path / "data"), fileio=disk), clock=lambda: 1_700_000_000_000
    )

    async def main() -> None:
        loop = asyncio.get_running_loop()
        for pair in (
            core.put_machine(PutMachine("toggle", 1, TOGGLE)),
            core.write(CreateInstance("toggle", 1, "t", {})),
        ):
            core.wait(pair[1])
        hub = Hub(core, loop)
        peer = Peer()
        session = Session(False, frozenset())
        ctx = Context(
            core, DurabilityWaiter(core, loop), session, Settings("test", False), loop, hub, peer
        )
        dispatcher = Dispatcher()

        def watch(request_id: str) -> Slot:
            request = Request(request_id, Operation.WATCH_INSTANCE, {"instance_id": "t"})
            slot = dispatcher.dispatch(ctx, request, lambda: None)
            if slot.message is not None and slot.after_write is not None:
                slot.after_write()
            return slot

        disk.hold = True
        _, offset = core.apply_event(ApplyEvent("t", "GO"))  # applied in memory, fsync held
        held = watch("1")
        await asyncio.sleep(0.2)
        assert held.message is None, "answered before the state it names was durable"
        assert hub.stats()["instance"] == 1

        disk.release.set()  # the fsync fails: memory rolls back to the durable state
        failed = await answered(held)
        assert failed["status"] == "error" and failed["error"]["code"] == "WAL_IO_ERROR"
        assert failed["id"] == "1"
        assert hub.stats()["instance"] == 0  # the subscription named nowhere is gone

        again = await answered(watch("2"))
        assert again["status"] == "ok"
        assert again["result"]["current_state"] == "a"
        assert again["result"]["current_wal_offset"] < offset
        applied, _ = core.apply_event(ApplyEvent("t", "GO"))
        deadline = loop.time() + 5
        while not peer.pushed and loop.time() < deadline:
            await asyncio.sleep(0.005)
        assert [m["subscription_id"] for m in peer.pushed] == [again["result"]["subscription_id"]]
        assert peer.pushed[0]["wal_offset"] == applied.wal_offset
        await hub.close()

    try:
        asyncio.run(main())
    finally:
        disk.release.set()
        core.close()
