"""The backup handlers against a real embedded database, without a socket."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pyrstmdb.aio import DurabilityWaiter
from pyrstmdb.database import Database
from pyrstmdb.server.handlers.backup import backup_begin, backup_end
from pyrstmdb.server.handlers.base import Answer, Context, Settings
from pyrstmdb.server.session import Session


class Peer:
    def send_event(self, message: dict[str, Any]) -> None:
        pass

    def writable(self) -> bool:
        return True

    def close(self) -> None:
        pass


@pytest.fixture
def loop() -> Iterator[asyncio.AbstractEventLoop]:
    event_loop = asyncio.new_event_loop()
    yield event_loop
    event_loop.close()


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Database]:
    with Database(tmp_path / "data") as database:
        database.put_machine("m", 1, {"states": ["a"], "initial": "a", "transitions": []})
        yield database


def _context(db: Database, loop: asyncio.AbstractEventLoop) -> Context:
    core = db.core
    waiter = DurabilityWaiter(core, loop)
    session = Session(False, frozenset())
    return Context(core, waiter, session, Settings("test", False), loop, None, Peer())


def _result(loop: asyncio.AbstractEventLoop, answer: Any) -> dict[str, Any]:
    assert isinstance(answer, Answer) and answer.wait is not None
    result: dict[str, Any] = loop.run_until_complete(answer.wait)
    return result


def test_begin_and_end_pause_and_resume_compaction(
    db: Database, loop: asyncio.AbstractEventLoop
) -> None:
    ctx = _context(db, loop)
    begun = _result(loop, backup_begin(ctx, {}))
    assert db.core.compaction_paused and len(ctx.backups) == 1
    assert begun["files"][-1]["name"] == "wal/0000000000000001.wal"
    assert backup_end(ctx, {"backup_id": begun["backup_id"]})["ended"] is True
    assert not db.core.compaction_paused


def test_a_begin_that_finishes_after_its_client_left_is_ended_at_once(
    db: Database, loop: asyncio.AbstractEventLoop
) -> None:
    ctx = _context(db, loop)
    answer = backup_begin(ctx, {})
    ctx.release()  # the connection closes before the pin is handed over on the loop
    _result(loop, answer)
    assert not db.core.compaction_paused and len(ctx.backups) == 0


def test_leaving_ends_every_backup_held(db: Database, loop: asyncio.AbstractEventLoop) -> None:
    ctx = _context(db, loop)
    for _ in range(3):
        _result(loop, backup_begin(ctx, {}))
    assert db.core.compaction_paused
    ctx.release()
    assert not db.core.compaction_paused
