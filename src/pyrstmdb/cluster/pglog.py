"""The log of one partition in PostgreSQL, written by its owner in group-commit rounds.

``append(records)`` queues the records and waits for the round that carries
them: while one round's transaction is in flight, every record appended
meanwhile waits, and the next round takes them all (:mod:`.rounds`). Offsets
come from the partition's sequence numbers (:mod:`.offsets`).

After a fence the log refuses every write. After any other failed round it
re-reads its head from PostgreSQL before the next one (waiting for a round
still in doubt to end, within ``lock_timeout``), so after an unknown commit
outcome its head is whatever PostgreSQL actually holds.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, NamedTuple

import asyncpg
import orjson

from pyrstmdb.cluster.errors import Fenced, OutcomeUnknown
from pyrstmdb.cluster.offsets import first_sequence_at, offset_of
from pyrstmdb.cluster.rounds import Row, commit_round
from pyrstmdb.engine.records import Record, from_entry, type_code
from pyrstmdb.errors import BadRequest, CorruptionError, WalIoError
from pyrstmdb.storage.store import Logged

_DB_ERRORS = (asyncpg.PostgresError, asyncpg.InterfaceError, OSError, TimeoutError)

# FOR SHARE waits for a transaction still holding the row (a round whose outcome is
# unknown, on a connection the server has not closed yet), so the head read is final.
_HEAD = "SELECT epoch, head FROM rstmdb.partitions WHERE partition = $1 FOR SHARE"
_READ = """
SELECT sequence, type, entry FROM rstmdb.log
 WHERE partition = $1 AND sequence >= $2 AND sequence <= $3
 ORDER BY sequence LIMIT $4
"""
_OURS = "SELECT 1 FROM rstmdb.partitions WHERE partition = $1 AND epoch = $2 FOR SHARE"
_SAVE_CHECKPOINT = """
INSERT INTO rstmdb.checkpoints (partition, end_offset, data, epoch)
VALUES ($1, $2, $3, $4)
ON CONFLICT (partition) DO UPDATE
   SET end_offset = EXCLUDED.end_offset, data = EXCLUDED.data, epoch = EXCLUDED.epoch,
       created_at = clock_timestamp()
"""
_LOAD_CHECKPOINT = "SELECT end_offset, data FROM rstmdb.checkpoints WHERE partition = $1"
_DROP = "DELETE FROM rstmdb.log WHERE partition = $1 AND sequence < $2"


def _row(record: Record) -> Row:
    """The record as the local WAL stores it: type code and compact STORAGE §3.3 JSON."""
    try:
        return type_code(record), orjson.dumps(record.to_entry()).decode()
    except TypeError as err:
        raise BadRequest(f"invalid request: value is not JSON: {err}") from None


class Checkpoint(NamedTuple):
    offset: int  # the state covers every entry before this offset
    data: bytes


class _Pending(NamedTuple):
    rows: list[Row]
    future: asyncio.Future[list[int]]


class PartitionLog:
    """The owner's handle on one partition's log, valid for one epoch."""

    def __init__(
        self,
        pool: Any,
        partition: int,
        partitions: int,
        epoch: int,
        last_sequence: int,
        *,
        retention: int = 100_000,
        timeout: float = 5.0,
    ) -> None:
        self._pool = pool
        self.partition = partition
        self.partitions = partitions
        self.epoch = epoch
        self._last = last_sequence
        self._retention = retention
        self._timeout = timeout
        self._queue: list[_Pending] = []
        self._flusher: asyncio.Task[None] | None = None
        self._fenced: Fenced | None = None
        self._stale = False
        self._closed = False
        #: Rounds committed so far (each one PostgreSQL transaction).
        self.rounds = 0

    @classmethod
    async def open(
        cls, pool: Any, partition: int, partitions: int, epoch: int, **options: Any
    ) -> PartitionLog:
        """The log of ``partition`` for the owner of ``epoch`` (Fenced if not the epoch now)."""
        log = cls(pool, partition, partitions, epoch, 0, **options)
        await log.reload_head()
        return log

    @property
    def head(self) -> int:
        """The offset the next entry will get."""
        return self._offset(self._last + 1)

    @property
    def last_sequence(self) -> int:
        return self._last

    @property
    def fenced(self) -> bool:
        return self._fenced is not None

    async def append(self, records: Sequence[Record]) -> list[int]:
        """Append ``records`` in one round (with whatever else is waiting); their offsets."""
        self._check_writable()
        rows = [_row(record) for record in records]
        if not rows:
            return []
        future: asyncio.Future[list[int]] = asyncio.get_running_loop().create_future()
        self._queue.append(_Pending(rows, future))
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.create_task(self._flush())
        return await future

    async def reload_head(self) -> None:
        """Read the head from PostgreSQL (Fenced when the epoch moved on)."""
        try:
            row = await self._pool.fetchrow(_HEAD, self.partition, timeout=self._timeout)
        except _DB_ERRORS as exc:
            raise self._io_error("cannot read the head", exc) from exc
        if row is None or row["epoch"] != self.epoch:
            raise self._fence()
        self._last = row["head"]
        self._stale = False

    async def read_from(self, offset: int, limit: int) -> list[Logged]:
        """Up to ``limit`` committed entries from ``offset`` (inclusive), in order."""
        start = first_sequence_at(offset, self.partition, self.partitions)
        try:
            rows = await self._pool.fetch(
                _READ, self.partition, start, self._last, limit, timeout=self._timeout
            )
        except _DB_ERRORS as exc:
            raise self._io_error("cannot read the log", exc) from exc
        return [self._logged(row["sequence"], row["type"], row["entry"]) for row in rows]

    async def save_checkpoint(self, offset: int, data: bytes) -> None:
        """Store the state as of ``offset`` (exclusive), replacing the previous checkpoint."""
        if offset > self.head:
            raise ValueError(f"checkpoint offset {offset} is past the head {self.head}")
        key = (self.partition, offset, data, self.epoch)
        await self._owned(lambda conn: conn.execute(_SAVE_CHECKPOINT, *key))

    async def load_checkpoint(self) -> Checkpoint | None:
        try:
            row = await self._pool.fetchrow(_LOAD_CHECKPOINT, self.partition, timeout=self._timeout)
        except _DB_ERRORS as exc:
            raise self._io_error("cannot read the checkpoint", exc) from exc
        return None if row is None else Checkpoint(row["end_offset"], bytes(row["data"]))

    async def drop_before(self, offset: int) -> int:
        """Delete entries before ``offset`` that the checkpoint covers, keeping the last
        ``retention`` entries; the number deleted."""
        checkpoint = await self.load_checkpoint()
        if checkpoint is None:
            return 0
        end = min(offset, checkpoint.offset)
        keep_from = min(
            first_sequence_at(end, self.partition, self.partitions),
            self._last + 1 - self._retention,
        )
        if keep_from <= 1:
            return 0
        status: str = await self._owned(lambda conn: conn.execute(_DROP, self.partition, keep_from))
        return int(status.rsplit(" ", 1)[-1])

    async def close(self) -> None:
        """Finish the rounds in flight; further appends fail."""
        self._closed = True
        if self._flusher is not None:
            with contextlib.suppress(Exception):
                await self._flusher

    async def _flush(self) -> None:
        while self._queue:
            batch, self._queue = self._queue, []
            await self._round(batch)

    async def _round(self, batch: list[_Pending]) -> None:
        rows = [row for pending in batch for row in pending.rows]
        try:
            if self._stale:
                await self.reload_head()
            first = self._last + 1
            await commit_round(
                self._pool, self.partition, self.epoch, self._last, rows, self._timeout
            )
        except WalIoError as exc:
            await self._failed(batch, exc)
            return
        except Exception as exc:  # never leave an appender waiting
            await self._failed(batch, self._io_error("round failed", exc))
            return
        self._last = first + len(rows) - 1
        self.rounds += 1
        sequence = first
        for pending in batch:
            count = len(pending.rows)
            offsets = [self._offset(s) for s in range(sequence, sequence + count)]
            sequence += count
            if not pending.future.done():
                pending.future.set_result(offsets)

    async def _failed(self, batch: list[_Pending], exc: WalIoError) -> None:
        if isinstance(exc, Fenced):
            self._fence()
        else:
            self._stale = True
        for pending in batch:
            if not pending.future.done():
                pending.future.set_exception(exc)
        if isinstance(exc, OutcomeUnknown):
            with contextlib.suppress(WalIoError):
                await self.reload_head()  # else again before the next round

    async def _owned(self, action: Callable[[Any], Awaitable[Any]]) -> Any:
        """Run ``action(conn)`` in a transaction that holds our epoch (Fenced otherwise)."""
        self._check_writable()
        try:
            async with self._pool.acquire(timeout=self._timeout) as conn, conn.transaction():
                if await conn.fetchval(_OURS, self.partition, self.epoch) is None:
                    raise self._fence()
                return await action(conn)
        except _DB_ERRORS as exc:
            raise self._io_error("PostgreSQL write failed", exc) from exc

    def _check_writable(self) -> None:
        if self._fenced is not None:
            raise self._fenced
        if self._closed:
            raise WalIoError(f"partition {self.partition}: the log is closed")

    def _fence(self) -> Fenced:
        if self._fenced is None:
            self._fenced = Fenced(self.partition, self.epoch)
        return self._fenced

    def _offset(self, sequence: int) -> int:
        return offset_of(sequence, self.partition, self.partitions)

    def _logged(self, sequence: int, code: int, entry: str) -> Logged:
        offset = self._offset(sequence)
        record = from_entry(code, orjson.loads(entry))
        if record is None:
            raise CorruptionError("unreadable log entry", f"rstmdb.log[{self.partition}]", offset)
        return Logged(sequence, offset, record)

    def _io_error(self, what: str, exc: BaseException) -> WalIoError:
        return WalIoError(
            f"partition {self.partition}: {what} ({type(exc).__name__}: {exc})",
            {"reason": "postgres", "partition": self.partition},
        )
