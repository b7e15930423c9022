"""The storage port and its in-memory twin.

A ``Store`` keeps the log of records for a ``Database``: it appends records and
returns their encoded offsets, tells which of them are *visible* (durable, or
simply written when the policy does not wait for the disk), reads ranges back
for WAL_READ and for subscribers catching up, and keeps checkpoints so that
compaction can drop old log segments. ``MemoryStore`` (here) and
``DiskStore`` (``storage.disk``) implement the same protocol; the engine never
sees either.

Visibility contract: every record with ``offset < visible_end`` is visible.
``wait_visible(offset)`` blocks until the record at ``offset`` is visible and
raises ``WalIoError`` if making it durable failed. Listeners added with
``add_visible_listener`` are called with the new ``visible_end`` every time it
advances (an event loop waits through them, see ``aio``).
"""

from __future__ import annotations

import hashlib
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol

import orjson

from pyrstmdb.engine.records import Record
from pyrstmdb.errors import CorruptionError, WalIoError
from pyrstmdb.results import CompactResult, IoStats, WalReadResult, WalRecord, WalStatsResult

if TYPE_CHECKING:
    from pyrstmdb.storage.wal.offload import RoundOffload

FIRST_OFFSET = 1 << 40
_new_logged = tuple.__new__
MAX_FRAME_BYTES = 16 * 1024 * 1024
# Room kept for the response envelope around WAL_READ records.
READ_BUDGET_BYTES = MAX_FRAME_BYTES - 64 * 1024
# JSON around each WAL_READ record: {"sequence":…,"offset":…,"entry":…},
RECORD_OVERHEAD = 64


class Logged(NamedTuple):
    sequence: int
    offset: int
    record: Record


#: ``apply(type_code, entry, offset)``: replay one logged entry (its JSON object);
#: raises ``ValueError`` for an entry it cannot read.
ReplayFn = Callable[[int, Any, int], None]


class CheckpointData(NamedTuple):
    """Everything needed to rebuild the state as of ``offset`` (exclusive end)."""

    offset: int
    machines: list[dict[str, Any]]
    instances: list[list[Any]]
    idempotency: list[list[Any]]
    #: ``[instance_id, [entry fields, ...]]`` per instance; ``None`` in checkpoints
    #: written before instance history existed
    history: list[list[Any]] | None = None


class Store(Protocol):
    @property
    def head(self) -> int: ...

    @property
    def visible_end(self) -> int: ...

    @property
    def history_start(self) -> int: ...

    @property
    def waits_for_disk(self) -> bool: ...

    def load_checkpoint(self) -> CheckpointData | None:
        """The newest checkpoint (``None``: replay the whole log)."""
        ...

    def replay(self, apply: ReplayFn, start: int, end: int | None) -> int:
        """Feed every logged entry with ``start <= offset < end`` to ``apply``, in order.

        Returns how many were applied; raises ``CorruptionError`` for unreadable ones.
        """
        ...

    def append(self, records: Sequence[Record], atomic: bool = False) -> list[int]: ...

    def unreadable(self, offset: int, err: Exception) -> CorruptionError: ...

    def append_one(self, record: Record) -> int: ...

    def wait_visible(self, offset: int) -> None: ...

    def add_visible_listener(self, fn: Callable[[int], None]) -> None: ...

    def set_failure_handler(self, fn: Callable[[WalIoError], None]) -> None: ...

    def recover_after_failure(self) -> None: ...

    @property
    def failed(self) -> bool:
        """True from a failed fsync until ``recover_after_failure`` succeeds."""
        ...

    def read(self, from_offset: int, limit: int | None) -> WalReadResult: ...

    def logged_from(self, from_offset: int, end: int) -> Iterator[Logged]: ...

    def stats(self) -> WalStatsResult: ...

    def sync(self) -> None: ...

    def fsync_offload(self) -> RoundOffload | None:
        """A handle for running durability rounds from an event loop, where supported."""
        ...

    def compact(self, data: CheckpointData, force: bool) -> CompactResult: ...

    def write_instance_snapshot(self, body: dict[str, Any]) -> tuple[str, int, str]: ...

    def reset(self, record: Record) -> int: ...

    def close(self) -> None: ...


class MemoryStore:
    """The in-memory twin: records kept in a bounded deque, always visible.

    Offsets start at ``1 << 40`` and grow by one per record. Only the most
    recent ``retain`` records stay readable (older history counts as
    compacted), so memory stays bounded on long runs.
    """

    waits_for_disk = False

    def __init__(self, retain: int = 100_000) -> None:
        self._log: deque[Logged] = deque(maxlen=retain)
        self._next_offset = FIRST_OFFSET
        self._next_sequence = 1
        self._io = IoStats()

    @property
    def head(self) -> int:
        return self._next_offset

    @property
    def visible_end(self) -> int:
        return self._next_offset

    @property
    def history_start(self) -> int:
        try:
            return self._log[0].offset
        except IndexError:
            return self._next_offset

    def load_checkpoint(self) -> CheckpointData | None:
        return None

    def replay(self, apply: ReplayFn, start: int, end: int | None) -> int:
        return 0  # nothing outlives the process

    def append(self, records: Sequence[Record], atomic: bool = False) -> list[int]:
        return [self.append_one(record) for record in records]

    def unreadable(self, offset: int, err: Exception) -> CorruptionError:
        return CorruptionError(f"unreadable record ({err})", "memory", offset)

    def append_one(self, record: Record) -> int:
        # Callers serialise appends (the database lock); readers need no lock (see
        # ``logged_from``).
        offset = self._next_offset
        self._log.append(_new_logged(Logged, (self._next_sequence, offset, record)))
        self._next_offset = offset + 1
        self._next_sequence += 1
        self._io.writes += 1
        return offset

    def wait_visible(self, offset: int) -> None:
        return None

    def add_visible_listener(self, fn: Callable[[int], None]) -> None:
        return None  # records are visible when appended; nothing ever advances later

    def set_failure_handler(self, fn: Callable[[WalIoError], None]) -> None:
        return None

    def recover_after_failure(self) -> None:
        return None

    @property
    def failed(self) -> bool:
        return False

    def logged_from(self, from_offset: int, end: int) -> Iterator[Logged]:
        # Offsets are consecutive, so the record for an offset is found by arithmetic and
        # checked by its own offset: an append evicting old records in between shows up as
        # a mismatch and the lookup is repeated, so no held record is ever skipped.
        wanted = from_offset
        while True:
            item = self._record_at(wanted)
            if item is None or item.offset >= end:
                return
            yield item
            wanted = item.offset + 1

    def _record_at(self, wanted: int) -> Logged | None:
        """The record at ``wanted``, or the oldest held one if it was dropped; None at the end."""
        log = self._log
        while True:
            try:
                first = log[0].offset
                item = log[max(0, wanted - first)]
            except IndexError:
                return None
            if item.offset == max(wanted, first):
                return item
            # the log moved between the two reads: look again

    def read(self, from_offset: int, limit: int | None) -> WalReadResult:
        records: list[WalRecord] = []
        used = 0
        if limit != 0:
            for item in self.logged_from(from_offset, self._next_offset):
                entry = item.record.to_entry()
                used += len(orjson.dumps(entry)) + RECORD_OVERHEAD
                if records and used > READ_BUDGET_BYTES:
                    break
                records.append(WalRecord(item.sequence, item.offset, entry))
                if limit is not None and len(records) >= limit:
                    break
        self._io.reads += 1
        next_offset = records[-1].offset + 1 if records else None
        return WalReadResult(records, next_offset)

    def stats(self) -> WalStatsResult:
        io = self._io
        return WalStatsResult(
            self._next_sequence - 1,
            0,
            0,
            self._next_offset,
            IoStats(0, 0, io.writes, io.reads, 0),
        )

    def sync(self) -> None:
        return None

    def fsync_offload(self) -> RoundOffload | None:
        return None  # nothing to sync

    def compact(self, data: CheckpointData, force: bool) -> CompactResult:
        """Forget the records the state already covers (there are no files)."""
        while self._log and self._log[0].offset < data.offset:
            self._log.popleft()
        return CompactResult(0, 0, 0, 0, 0)

    def write_instance_snapshot(self, body: dict[str, Any]) -> tuple[str, int, str]:
        """Nothing is written in memory; size and checksum are those of the document."""
        blob = orjson.dumps(body, option=orjson.OPT_INDENT_2)
        return body["snapshot_id"], len(blob), hashlib.sha256(blob).hexdigest()

    def reset(self, record: Record) -> int:
        self._log.clear()
        return self.append_one(record)

    def close(self) -> None:
        return None
