"""The data directory lock in one process: refusals, release, probing, failed opens."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from pyrstmdb import Database, DataDirectoryLocked
from pyrstmdb.errors import CorruptionError
from pyrstmdb.storage import dirlock
from pyrstmdb.storage.wal import Wal


def test_a_second_open_in_the_same_process_is_refused_until_close(tmp_path: Path) -> None:
    first = Database(tmp_path)
    with pytest.raises(DataDirectoryLocked) as refused:
        Database(tmp_path)
    assert refused.value.pid == os.getpid()
    assert refused.value.path == str(tmp_path)
    assert str(refused.value) == (
        f"data directory {tmp_path} is in use by this process (pid {os.getpid()}); "
        "close the other Database first"
    )
    first.put_machine("m", 1, {"states": ["s"], "initial": "s", "transitions": []})
    first.close()
    with Database(tmp_path) as again:
        assert [m.machine for m in again.list_machines().items] == ["m"]


def test_the_lock_file_names_the_holder_and_is_cleared_on_release(tmp_path: Path) -> None:
    assert dirlock.probe(str(tmp_path)) is None  # nothing there yet; nothing created
    assert not (tmp_path / dirlock.LOCK_NAME).exists()
    lock = dirlock.DirLock.acquire(str(tmp_path))
    assert (tmp_path / "LOCK").read_text() == f"{os.getpid()}\n"
    assert dirlock.probe(str(tmp_path)) == dirlock.Holder(os.getpid())
    with pytest.raises(DataDirectoryLocked):
        dirlock.DirLock.acquire(str(tmp_path))
    lock.release()
    lock.release()  # idempotent
    assert (tmp_path / "LOCK").read_text() == ""
    assert dirlock.probe(str(tmp_path)) is None
    with dirlock.DirLock.acquire(str(tmp_path)) as again:
        assert again.held
    assert not again.held


def test_an_unknown_holder_is_still_refused(tmp_path: Path) -> None:
    lock = dirlock.DirLock.acquire(str(tmp_path))
    (tmp_path / "LOCK").write_text("")  # as between another holder's lock and its write
    with pytest.raises(DataDirectoryLocked) as refused:
        Database(tmp_path)
    assert refused.value.pid is None
    assert str(refused.value) == f"data directory {tmp_path} is in use by another process"
    assert dirlock.probe(str(tmp_path)) == dirlock.Holder(None)
    lock.release()


def test_a_refused_open_does_not_keep_the_directory(tmp_path: Path) -> None:
    with Database(tmp_path) as db:
        db.put_machine("m", 1, {"states": ["s"], "initial": "s", "transitions": []})
    segment = tmp_path / "wal" / "0000000000000001.wal"
    original = segment.read_bytes()
    with Wal.open(tmp_path / "wal") as log:  # a valid frame whose payload is not an entry
        log.wait_durable(log.append([(2, b"not json")])[0])
    with pytest.raises(CorruptionError, match="unreadable record payload"):
        Database(tmp_path)  # refused while replaying, after the store was opened
    assert dirlock.probe(str(tmp_path)) is None
    segment.write_bytes(original)
    with Database(tmp_path) as db:
        assert db.list_machines().items[0].machine == "m"
