"""``rstmdb check``: verify a data directory offline and print a summary.

Every WAL segment, the checkpoint and every instance snapshot are read and
verified; the state is rebuilt in memory to count machines and instances. The
first problem is reported with its file and byte position. Nothing is written
unless ``repair`` is set, and repairing only ever cuts a torn tail of the last
segment (keeping the cut bytes in a ``.broken`` copy), exactly as opening the
database would.

Exit status: 0 healthy (a torn tail is reported but is not damage), 1 damaged
or unreadable.
"""

from __future__ import annotations

import hashlib
import os
from typing import TextIO

import orjson

from pyrstmdb.core import restore_checkpoint
from pyrstmdb.engine import machine
from pyrstmdb.engine.records import from_entry
from pyrstmdb.engine.state import State
from pyrstmdb.errors import CorruptionError, RstmdbError, WalIoError
from pyrstmdb.storage.snapshot import (
    INDEX_NAME,
    checkpoint_files,
    load_latest_checkpoint,
)
from pyrstmdb.storage.wal import FileIO, VerifyReport, repair_torn_tail, segment_name, verify
from pyrstmdb.storage.wal.recovery import segment_ids
from pyrstmdb.storage.wal.segment import ReadSpan, read_entries


class CheckFailed(Exception):
    """The first problem found, already phrased for the summary."""


def _human(size: int) -> str:
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{size} B"


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


def _summarise(data_dir: str, out: TextIO) -> None:
    wal_dir = os.path.join(data_dir, "wal")
    snapshot_dir = os.path.join(data_dir, "snapshots")
    if not os.path.isdir(wal_dir):
        raise CheckFailed(f"no WAL directory at {wal_dir}")
    report = verify(wal_dir)
    out.write(
        f"WAL: {report.segments} segments, {report.records} records, "
        f"{_human(report.total_bytes)}, last sequence {report.last_sequence}\n"
    )
    if report.torn_segment is not None:
        out.write(
            f"torn tail: {report.torn_bytes} bytes at {report.torn_segment} byte "
            f"{report.torn_position} (cut when the database opens, or with --repair)\n"
        )
    if report.problem is not None:
        raise CheckFailed(
            f"{report.problem} ({report.problem_path} at byte {report.problem_position})"
        )
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


def run_check(data_dir: str, repair: bool, out: TextIO) -> int:
    """Check (and with ``repair`` cut a torn tail of) ``data_dir``; returns the exit status."""
    out.write(f"data directory: {data_dir}\n")
    try:
        if repair:
            repaired = repair_torn_tail(os.path.join(data_dir, "wal"))
            if repaired.torn_bytes:
                out.write(
                    f"repaired: cut {repaired.torn_bytes} bytes from {repaired.torn_segment} "
                    f"(saved in {repaired.broken_copy})\n"
                )
        _summarise(data_dir, out)
    except CheckFailed as err:
        out.write(f"problem: {err}\nresult: DAMAGED\n")
        return 1
    except CorruptionError as err:
        out.write(f"problem: {err}\nresult: DAMAGED\n")
        return 1
    except (WalIoError, RstmdbError, OSError) as err:
        out.write(f"problem: cannot read the data directory: {err}\nresult: DAMAGED\n")
        return 1
    out.write("result: OK\n")
    return 0
