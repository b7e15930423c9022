"""``rstmdb check``: verify a data directory offline and print a summary.

Every WAL segment, the checkpoint and every instance snapshot are read and
verified, the log is checked to reach back to the checkpoint (or to its start),
and the state is rebuilt in memory to count machines and instances. The first
problem is reported with its file and byte position. Leftover temporary files
of interrupted writes are listed. A directory a running process holds may be
checked (the summary says so, and whose PID).

Nothing is written unless asked. ``repair`` does what opening the database
would: it cuts a torn tail of the last segment (keeping the cut bytes in a
``.broken`` copy) and removes leftover temporary files. ``salvage_log`` first
keeps the log's longest consistent prefix and moves the rest aside
(``storage.salvage``); when the log is inconsistent, a plain check says what a
salvage would keep and drop. Both take the directory's lock, so they refuse a
directory a running process holds (``DataDirectoryLocked``).

Exit status: 0 healthy (a torn tail is reported but is not damage), 1 damaged
or unreadable.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from typing import TextIO

import orjson

from pyrstmdb.core import restore_checkpoint
from pyrstmdb.engine import machine
from pyrstmdb.engine.records import CHECKPOINT, from_entry
from pyrstmdb.engine.state import State
from pyrstmdb.errors import CorruptionError, RstmdbError, WalIoError
from pyrstmdb.storage import dirlock, salvage
from pyrstmdb.storage.coverage import LogSpan, history_gap
from pyrstmdb.storage.repair import (
    human_size,
    offer_salvage,
    repair_directory,
    salvage_directory,
)
from pyrstmdb.storage.snapshot import (
    INDEX_NAME,
    checkpoint_files,
    leftover_temporaries,
    load_latest_checkpoint,
)
from pyrstmdb.storage.wal import (
    FileIO,
    VerifyReport,
    WalEntry,
    encode_offset,
    segment_name,
    verify,
)
from pyrstmdb.storage.wal.recovery import segment_ids
from pyrstmdb.storage.wal.segment import ReadSpan, read_entries


class CheckFailed(Exception):
    """The first problem found, already phrased for the summary.

    ``salvageable``: the log itself is inconsistent, so ``--salvage`` may help.
    """

    def __init__(self, message: str, salvageable: bool = False) -> None:
        super().__init__(message)
        self.salvageable = salvageable


def _rebuild(wal_dir: str, snapshot_dir: str, report: VerifyReport) -> tuple[State, int]:
    state = State()
    checkpoint = load_latest_checkpoint(snapshot_dir)
    start = 0
    if checkpoint is not None:
        restore_checkpoint(state, checkpoint)
        start = checkpoint.offset
    fileio = FileIO()
    first_id, first_position = start >> 40, start & ((1 << 40) - 1)
    for segment_id in segment_ids(fileio, wal_dir):
        if segment_id < first_id:
            continue  # covered by the checkpoint
        path = os.path.join(wal_dir, segment_name(segment_id))
        stop = os.path.getsize(path)
        if report.torn_segment == path and report.torn_position is not None:
            stop = report.torn_position
        skip = first_position if segment_id == first_id else 0
        for entry in read_entries(fileio, ReadSpan(segment_id, path, 0, stop, skip)):
            try:
                record = from_entry(entry.type_code, orjson.loads(entry.payload))
            except (orjson.JSONDecodeError, ValueError) as err:
                position = entry.offset & ((1 << 40) - 1)
                raise CorruptionError(
                    f"unreadable record payload ({err})", path, position
                ) from None
            if record is not None:
                machine.apply(state, record, entry.offset)
    return state, 0 if checkpoint is None else len(checkpoint.instances)


def _check_instance_snapshots(snapshot_dir: str) -> int:
    index_path = os.path.join(snapshot_dir, INDEX_NAME)
    if not os.path.exists(index_path):
        return 0
    with open(index_path, "rb") as handle:
        try:
            index = orjson.loads(handle.read())
        except orjson.JSONDecodeError as err:
            raise CorruptionError(f"unreadable snapshot index ({err})", index_path, 0) from None
    for instance_id, entry in index.items():
        path = os.path.join(snapshot_dir, f"{entry['snapshot_id']}.snap")
        try:
            with open(path, "rb") as handle:
                blob = handle.read()
        except FileNotFoundError:
            raise CorruptionError(f"snapshot of {instance_id} is missing", path, 0) from None
        if hashlib.sha256(blob).hexdigest() != entry.get("checksum"):
            raise CorruptionError(f"snapshot of {instance_id} fails its checksum", path, 0)
    return len(index)


def _report_leftovers(snapshot_dir: str, out: TextIO) -> None:
    for name, size in leftover_temporaries(snapshot_dir):
        out.write(
            f"leftover temporary file: {os.path.join(snapshot_dir, name)} ({human_size(size)}) "
            "from an interrupted checkpoint or snapshot write (removed when the database "
            "opens, or with --repair)\n"
        )


def _check_history(wal_dir: str, snapshot_dir: str, report: VerifyReport) -> None:
    """Refuse a log that no longer reaches back to the checkpoint (or to its start)."""
    fileio = FileIO()
    ids = segment_ids(fileio, wal_dir)
    checkpoint = load_latest_checkpoint(snapshot_dir) if os.path.isdir(snapshot_dir) else None
    end = 0
    if ids:
        last = os.path.join(wal_dir, segment_name(ids[-1]))
        size = os.path.getsize(last)
        if report.torn_segment == last and report.torn_position is not None:
            size = report.torn_position
        end = encode_offset(ids[-1], size)

    def starts_with_reset() -> bool:
        first = next(_first_entries(fileio, wal_dir, ids), None)
        return first is not None and first.type_code == CHECKPOINT

    gap = history_gap(
        LogSpan(ids[0] if ids else None, end),
        starts_with_reset,
        None if checkpoint is None else checkpoint.offset,
    )
    if gap is not None:
        raise CorruptionError(gap.message, os.path.join(wal_dir, segment_name(gap.segment_id)), 0)


def _first_entries(fileio: FileIO, wal_dir: str, ids: list[int]) -> Iterator[WalEntry]:
    for segment_id in ids:
        path = os.path.join(wal_dir, segment_name(segment_id))
        size = os.path.getsize(path)
        if size:
            yield from read_entries(fileio, ReadSpan(segment_id, path, 0, size, 0))
            return


def _summarise(data_dir: str, out: TextIO) -> None:
    wal_dir = os.path.join(data_dir, "wal")
    snapshot_dir = os.path.join(data_dir, "snapshots")
    if not os.path.isdir(wal_dir):
        raise CheckFailed(f"no WAL directory at {wal_dir}")
    report = verify(wal_dir)
    out.write(
        f"WAL: {report.segments} segments, {report.records} records, "
        f"{human_size(report.total_bytes)}, last sequence {report.last_sequence}\n"
    )
    if report.torn_segment is not None:
        out.write(
            f"torn tail: {report.torn_bytes} bytes at {report.torn_segment} byte "
            f"{report.torn_position} (cut when the database opens, or with --repair)\n"
        )
    if os.path.isdir(snapshot_dir):
        _report_leftovers(snapshot_dir, out)
    if report.problem is not None:
        raise CheckFailed(
            f"{report.problem} ({report.problem_path} at byte {report.problem_position})",
            salvageable=True,
        )
    _check_history(wal_dir, snapshot_dir, report)
    checkpoints = checkpoint_files(snapshot_dir) if os.path.isdir(snapshot_dir) else []
    state, covered = _rebuild(wal_dir, snapshot_dir, report)
    if checkpoints:
        out.write(f"checkpoint: {checkpoints[-1][1]} ({covered} instances)\n")
    snapshots = _check_instance_snapshots(snapshot_dir) if os.path.isdir(snapshot_dir) else 0
    out.write(f"instance snapshots: {snapshots} verified\n")
    out.write(
        f"state: {len(state.machines)} machines ({state.machine_versions} versions), "
        f"{state.live_instances} instances ({state.deleted_count} deleted)\n"
    )


def _repair(data_dir: str, out: TextIO) -> None:
    try:
        repair_directory(data_dir, out)
    except CorruptionError as err:  # more than a torn tail
        raise CheckFailed(str(err), salvageable=True) from None


def _salvage(data_dir: str, out: TextIO) -> None:
    try:
        salvage_directory(data_dir, out)
    except salvage.SalvageRefused as err:
        raise CheckFailed(f"cannot salvage: {err}") from None


def _live_note(data_dir: str, out: TextIO) -> None:
    holder = dirlock.probe(data_dir) if os.path.isdir(data_dir) else None
    if holder is not None:
        pid = "unknown" if holder.pid is None else str(holder.pid)
        out.write(
            f"live: the directory is open in a running process (pid {pid}); a write in "
            "progress may show as a torn tail\n"
        )


def run_check(data_dir: str, repair: bool, out: TextIO, salvage_log: bool = False) -> int:
    """Check ``data_dir``; returns the exit status.

    ``repair`` cuts a torn tail and removes leftover temporary files; ``salvage_log``
    first keeps the log's longest consistent prefix. Both take the directory's lock:
    ``DataDirectoryLocked`` when a running process holds it.
    """
    lock: dirlock.DirLock | None = None
    if (repair or salvage_log) and os.path.isdir(data_dir):
        lock = dirlock.DirLock.acquire(data_dir)
    try:
        return _run(data_dir, repair, salvage_log, out)
    finally:
        if lock is not None:
            lock.release()


def _run(data_dir: str, repair: bool, salvage_log: bool, out: TextIO) -> int:
    out.write(f"data directory: {data_dir}\n")
    try:
        if salvage_log:
            _salvage(data_dir, out)
        if repair or salvage_log:
            _repair(data_dir, out)
        else:
            _live_note(data_dir, out)
        _summarise(data_dir, out)
    except CheckFailed as err:
        out.write(f"problem: {err}\nresult: DAMAGED\n")
        if err.salvageable:
            offer_salvage(data_dir, out)
        return 1
    except CorruptionError as err:  # an unreadable entry may be salvageable too
        out.write(f"problem: {err}\nresult: DAMAGED\n")
        offer_salvage(data_dir, out)
        return 1
    except (WalIoError, RstmdbError, OSError) as err:
        out.write(f"problem: cannot read the data directory: {err}\nresult: DAMAGED\n")
        return 1
    out.write("result: OK\n")
    return 0
