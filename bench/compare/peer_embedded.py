"""pyrstmdb embedded: ``Database(path)`` (``every_write``) in this process, one thread per writer."""

from __future__ import annotations

from pathlib import Path

from bench.compare.workload import (
    MACHINE,
    VERSION,
    JsonObject,
    Refused,
    SyncSession,
    Target,
    definition,
    guard_instance,
)
from pyrstmdb import Database, RstmdbError


class _Session:
    def __init__(self, db: Database) -> None:
        self._db = db

    def create(self, instance_id: str, ctx: JsonObject) -> None:
        try:
            self._db.create_instance(MACHINE, VERSION, instance_id, ctx)
        except RstmdbError as err:
            raise Refused(err.code.value, err.message) from None

    def apply(self, instance_id: str, event: str, payload: JsonObject | None) -> None:
        try:
            self._db.apply_event(instance_id, event, payload)
        except RstmdbError as err:
            raise Refused(err.code.value, err.message) from None

    def close(self) -> None:
        pass


class EmbeddedTarget(Target):
    label = "pyrstmdb embedded"
    in_process = True

    def __init__(self, root: Path) -> None:
        self.db = Database(root / "embedded", fsync_policy="every_write")

    async def prepare(self, prefix: str) -> None:
        self.db.put_machine(MACHINE, VERSION, definition())
        over = guard_instance(prefix)
        self.db.create_instance(MACHINE, VERSION, over, {"customer": over, "amount": 5000})

    async def record_count(self) -> int:
        return self.db.wal_stats().entry_count

    async def fsyncs(self) -> int | None:
        return self.db.wal_stats().io_stats.fsyncs

    async def final_states(self, ids: list[str]) -> dict[str, tuple[str, JsonObject]]:
        found: dict[str, tuple[str, JsonObject]] = {}
        for instance_id in ids:
            result = self.db.get_instance(instance_id)
            found[instance_id] = (result.state, result.ctx)
        return found

    def open_sync(self, count: int) -> list[SyncSession]:
        return [_Session(self.db) for _ in range(count)]

    async def close(self) -> None:
        self.db.close()
