"""What ``rstmdb check --repair`` and ``--salvage`` change, each step reported on ``out``.

``repair_directory`` does what opening the database would: cut a torn tail of
the log (kept in a ``.broken`` copy) and remove the temporary files interrupted
checkpoint or snapshot writes left. ``salvage_directory`` keeps the log's
longest consistent prefix and moves the rest aside (``storage.salvage``);
``offer_salvage`` only says what that would keep and drop. The caller holds the
data directory's lock for the two that write.
"""

from __future__ import annotations

import os
from typing import TextIO

from pyrstmdb.errors import CorruptionError
from pyrstmdb.storage import salvage
from pyrstmdb.storage.snapshot import load_latest_checkpoint, remove_leftovers
from pyrstmdb.storage.wal import repair_torn_tail


def human_size(size: int) -> str:
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{size} B"


def repair_directory(data_dir: str, out: TextIO) -> None:
    """Cut a torn tail and remove leftover temporary files, as opening would.

    Raises ``CorruptionError`` when the log is damaged beyond a torn tail.
    """
    repaired = repair_torn_tail(os.path.join(data_dir, "wal"))
    if repaired.torn_bytes:
        out.write(
            f"repaired: cut {repaired.torn_bytes} bytes from {repaired.torn_segment} "
            f"(saved in {repaired.broken_copy})\n"
        )
    snapshot_dir = os.path.join(data_dir, "snapshots")
    if os.path.isdir(snapshot_dir):
        for name, size in remove_leftovers(snapshot_dir):
            out.write(
                f"repaired: removed {os.path.join(snapshot_dir, name)} ({human_size(size)})\n"
            )


def checkpoint_offset(data_dir: str) -> int | None:
    snapshot_dir = os.path.join(data_dir, "snapshots")
    if not os.path.isdir(snapshot_dir):
        return None
    checkpoint = load_latest_checkpoint(snapshot_dir)
    return None if checkpoint is None else checkpoint.offset


def offer_salvage(data_dir: str, out: TextIO) -> None:
    """Say what ``--salvage`` would keep and drop (read-only)."""
    try:
        found = salvage.plan(os.path.join(data_dir, "wal"), checkpoint_offset(data_dir))
    except salvage.SalvageRefused as err:
        out.write(f"salvage: not possible: {err}\n")
        return
    except (CorruptionError, OSError):
        return  # the damage is elsewhere (a checkpoint, say): a salvage of the log won't help
    if found is not None:
        out.write(
            f"salvage: --salvage would keep the first {_count(found.kept_records, 'record')} "
            f"({_count(found.kept_bytes, 'byte')}) and move {_dropped(found)} aside\n"
        )


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}" if number == 1 else f"{number} {noun}s"


def _dropped(found: salvage.Plan) -> str:
    return (
        f"{_count(found.dropped_records, 'record')} ({_count(found.dropped_bytes, 'byte')}, "
        f"{_count(found.dropped_files, 'file')})"
    )


def salvage_directory(data_dir: str, out: TextIO) -> None:
    """Keep the log's longest consistent prefix and move the rest aside, reporting each step.

    Raises ``SalvageRefused`` when that would contradict the checkpoint.
    """
    wal_dir = os.path.join(data_dir, "wal")
    found = salvage.plan(wal_dir, checkpoint_offset(data_dir))
    if found is None:
        out.write("salvage: nothing to do, the log is consistent\n")
        return
    out.write(f"salvage: the log is consistent up to the first problem: {found.reason}\n")
    for what, where in salvage.apply(found, wal_dir):
        out.write(f"salvage: moved {what} to {where}\n")
    out.write(
        f"salvage: kept {_count(found.kept_records, 'record')} "
        f"({_count(found.kept_bytes, 'byte')}); "
        f"dropped {_dropped(found)}\n"
    )
