"""SQLite in this process: ``journal_mode=WAL``, ``synchronous=FULL``, one connection per writer.

An instance is a row (state, ctx as JSON); each create or event is one
``BEGIN IMMEDIATE`` transaction that reads the row, decides in Python
(:func:`~bench.compare.workload.decide`), updates it and appends a row to ``log``.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path

import orjson

from bench.compare.workload import (
    JsonObject,
    Refused,
    SyncSession,
    Target,
    decide,
    guard_instance,
)

SCHEMA = """
CREATE TABLE IF NOT EXISTS instances (id TEXT PRIMARY KEY, state TEXT NOT NULL, ctx TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS log (
    seq INTEGER PRIMARY KEY, instance_id TEXT NOT NULL, event TEXT,
    from_state TEXT, to_state TEXT NOT NULL, payload TEXT
);
"""


def _connect(path: Path) -> sqlite3.Connection:
    connection = sqlite3.connect(path, isolation_level=None, timeout=120, check_same_thread=False)
    connection.execute("PRAGMA journal_mode=WAL")
    connection.execute("PRAGMA synchronous=FULL")
    return connection


class _Session:
    def __init__(self, path: Path) -> None:
        self._db = _connect(path)

    def _in_transaction(self, write: Callable[[sqlite3.Connection], None]) -> None:
        db = self._db
        db.execute("BEGIN IMMEDIATE")
        try:
            write(db)
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")

    def create(self, instance_id: str, ctx: JsonObject) -> None:
        text = orjson.dumps(ctx).decode()

        def write(db: sqlite3.Connection) -> None:
            try:
                db.execute("INSERT INTO instances VALUES (?, 'created', ?)", (instance_id, text))
            except sqlite3.IntegrityError:
                raise Refused("INSTANCE_EXISTS", instance_id) from None
            db.execute(
                "INSERT INTO log (instance_id, to_state, payload) VALUES (?, 'created', ?)",
                (instance_id, text),
            )

        self._in_transaction(write)

    def apply(self, instance_id: str, event: str, payload: JsonObject | None) -> None:
        def write(db: sqlite3.Connection) -> None:
            row = db.execute(
                "SELECT state, ctx FROM instances WHERE id = ?", (instance_id,)
            ).fetchone()
            if row is None:
                raise Refused("INSTANCE_NOT_FOUND", instance_id)
            ctx = orjson.loads(row[1])
            target = decide(row[0], event, ctx)
            ctx.update(payload or {})
            db.execute(
                "UPDATE instances SET state = ?, ctx = ? WHERE id = ?",
                (target, orjson.dumps(ctx).decode(), instance_id),
            )
            db.execute(
                "INSERT INTO log (instance_id, event, from_state, to_state, payload)"
                " VALUES (?, ?, ?, ?, ?)",
                (instance_id, event, row[0], target, None if payload is None else orjson.dumps(payload).decode()),
            )

        self._in_transaction(write)

    def close(self) -> None:
        self._db.close()


class SqliteTarget(Target):
    label = "SQLite"
    in_process = True

    def __init__(self, root: Path) -> None:
        self.path = root / "sqlite.db"
        self._control = _connect(self.path)
        self._control.executescript(SCHEMA)

    async def prepare(self, prefix: str) -> None:
        over = guard_instance(prefix)
        session = _Session(self.path)
        try:
            session.create(over, {"customer": over, "amount": 5000})
        finally:
            session.close()

    async def record_count(self) -> int:
        (count,) = self._control.execute("SELECT count(*) FROM log").fetchone()
        return int(count)

    async def final_states(self, ids: list[str]) -> dict[str, tuple[str, JsonObject]]:
        rows = self._control.execute("SELECT id, state, ctx FROM instances").fetchall()
        wanted = set(ids)
        return {r[0]: (r[1], orjson.loads(r[2])) for r in rows if r[0] in wanted}

    def open_sync(self, count: int) -> list[SyncSession]:
        return [_Session(self.path) for _ in range(count)]

    async def close(self) -> None:
        self._control.close()
