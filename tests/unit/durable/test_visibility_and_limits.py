"""Nothing is visible before it is durable; size limits of records and WAL_READ."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import pytest

from pyrstmdb import BadRequest, Database
from pyrstmdb.core import Core
from pyrstmdb.engine.commands import ApplyEvent, CreateInstance, PutMachine
from pyrstmdb.storage.disk import DiskStore
from pyrstmdb.storage.store import MAX_FRAME_BYTES
from pyrstmdb.storage.wal import FileIO


class GatedDisk(FileIO):
    """fdatasync blocks while the gate is closed."""

    def __init__(self) -> None:
        self.gate = threading.Event()
        self.gate.set()

    def fdatasync(self, fd: int) -> None:
        self.gate.wait(10)
        super().fdatasync(fd)


def test_reads_wait_for_the_fsync_of_a_pending_change(
    tmp_path: Path, order_machine: dict[str, Any]
) -> None:
    disk = GatedDisk()
    core = Core(DiskStore.open(str(tmp_path), fileio=disk), clock=lambda: 1)
    for pair in (
        core.put_machine(PutMachine("order", 1, order_machine)),
        core.write(CreateInstance("order", 1, "o")),
        core.write(CreateInstance("order", 1, "other")),
    ):
        core.wait(pair[1])
    disk.gate.clear()
    _result, offset = core.apply_event(ApplyEvent("o", "PAY"))  # written, fsync held back
    seen: dict[str, Any] = {}

    def read(name: str, call: Any) -> None:
        result, wait = call()
        core.wait(wait)
        seen[name] = (time.monotonic(), result)

    readers = [
        threading.Thread(target=read, args=("get", lambda: core.get_instance("o"))),
        threading.Thread(target=read, args=("list", lambda: core.list_instances(_all()))),
    ]
    for thread in readers:
        thread.start()
    # An instance without a pending change is served at once.
    other, wait = core.get_instance("other")
    assert other.state == "created" and wait < core.store.visible_end
    time.sleep(0.3)
    assert seen == {}  # both readers are still waiting for the fsync
    released = time.monotonic()
    disk.gate.set()
    for thread in readers:
        thread.join(5)
    assert seen["get"][0] >= released and seen["get"][1].state == "paid"
    assert seen["list"][0] >= released
    assert core.store.visible_end > offset
    core.close()


def _all() -> Any:
    from pyrstmdb.engine.commands import ListInstances

    return ListInstances()


def test_oversized_record_is_bad_request_and_writes_nothing(
    tmp_path: Path, order_machine: dict[str, Any]
) -> None:
    with Database(tmp_path) as db:
        db.put_machine("order", 1, order_machine)
        db.create_instance("order", 1, instance_id="o")
        before = db.wal_stats()
        with pytest.raises(BadRequest):
            db.apply_event("o", "PAY", payload={"blob": "x" * (17 * 1024 * 1024)})
        after = db.wal_stats()
        assert after.entry_count == before.entry_count
        assert after.total_size_bytes == before.total_size_bytes
        assert db.get_instance("o").state == "created"
        assert db.apply_event("o", "PAY").to_state == "paid"


@pytest.mark.parametrize("durable", [True, False])
def test_wal_read_stays_within_one_frame(
    tmp_path: Path, order_machine: dict[str, Any], durable: bool
) -> None:
    with Database(tmp_path if durable else None, fsync_policy="never") as db:
        db.put_machine("order", 1, order_machine)
        big = "y" * (6 * 1024 * 1024)
        for n in range(3):
            db.create_instance("order", 1, instance_id=f"big{n}", initial_ctx={"blob": big})
        first = db.wal_read(0)
        assert len(first.records) == 3  # the machine and two 6 MiB creates fit, the third not
        size = sum(len(str(r.entry)) for r in first.records)
        assert size < MAX_FRAME_BYTES
        assert first.next_offset == first.records[-1].offset + 1
        rest = db.wal_read(first.next_offset)
        assert [r.entry["instance_id"] for r in rest.records] == ["big2"]
        assert rest.next_offset is not None
        assert db.wal_read(rest.next_offset).records == []
        assert db.wal_read(rest.next_offset).next_offset is None
        assert [r.entry["type"] for r in db.wal_read(0, limit=2).records] == [
            "put_machine",
            "create_instance",
        ]
        assert db.wal_read(0, limit=0).records == []


def test_logged_from_with_an_end_inside_a_record(
    tmp_path: Path, order_machine: dict[str, Any]
) -> None:
    with Database(tmp_path) as db:
        db.put_machine("order", 1, order_machine)
        offsets = [db.create_instance("order", 1, instance_id=f"i{n}").wal_offset for n in range(5)]
        got = [item.offset for item in db.core.logged_from(offsets[1], offsets[3] + 1)]
        assert got == offsets[1:4]
        assert [item.offset for item in db.core.logged_from(0, offsets[0] + 5)][-1] == offsets[0]


def test_memory_log_reads_never_skip_while_appends_evict() -> None:
    from pyrstmdb.engine.records import Checkpoint
    from pyrstmdb.storage.store import MemoryStore

    store = MemoryStore(retain=50)
    for n in range(50):
        store.append_one(Checkpoint(n))
    reader = store.logged_from(store.history_start + 10, 1 << 62)
    seen = [next(reader).offset]
    for n in range(30):  # evicts the 30 oldest while the reader is half-way
        store.append_one(Checkpoint(100 + n))
    seen.extend(item.offset for item in reader)
    # The evicted records are gone (history starts later now); every held one is read.
    assert seen[1] == store.history_start
    assert seen[1:] == list(range(store.history_start, store.head))


def test_commit_listener_gets_everything_from_its_boundary(
    tmp_path: Path, order_machine: dict[str, Any]
) -> None:
    disk = GatedDisk()
    core = Core(DiskStore.open(str(tmp_path), fileio=disk), clock=lambda: 1)
    core.wait(core.put_machine(PutMachine("order", 1, order_machine))[1])
    disk.gate.clear()
    _r, pending = core.write(CreateInstance("order", 1, "early"))  # written, not yet durable
    received: list[int] = []
    boundary: list[int] = []

    def register() -> None:
        boundary.append(core.add_commit_listener(lambda b: received.extend(o for o, _ in b)))

    # The first listener waits until what was appended before it is visible: nothing
    # appended is left that neither the log below its boundary nor the listener covers.
    thread = threading.Thread(target=register)
    thread.start()
    thread.join(0.2)
    assert thread.is_alive()
    disk.gate.set()
    thread.join(5)
    assert boundary and boundary[0] > pending
    assert [e.offset for e in core.logged_from(0, boundary[0])][-1] == pending
    _r, later = core.write(CreateInstance("order", 1, "late"))
    core.wait(later)
    deadline = time.monotonic() + 5
    while later not in received and time.monotonic() < deadline:
        time.sleep(0.01)
    assert received == [later]  # everything from the boundary on, once
    core.close()
