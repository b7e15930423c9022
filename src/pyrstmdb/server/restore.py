"""``rstmdb restore FILE --data-dir DIR``: turn a backup archive into a data directory.

::

    rstmdb restore FILE [--data-dir DIR]      (DIR defaults to the configured one)

Nothing is written unless ``DIR`` is missing or empty. The archive is copied into
a staging directory inside ``DIR``, where every file is checked against the
manifest (size, CRC-32C), the log is verified record by record (no torn tail, no
damage) and opened exactly as the server opens it (checkpoint + replay). Only
then are ``wal/`` and ``snapshots/`` moved into ``DIR``; on any failure ``DIR`` is
left as it was (removed again if this command created it).

Exit status 0 with a summary on standard output; 1 with one line
``rstmdb: cannot restore …`` on standard error.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TextIO

from pyrstmdb.archive import ArchiveError, Manifest, extract, read_manifest
from pyrstmdb.database import Database
from pyrstmdb.errors import CorruptionError, RstmdbError
from pyrstmdb.storage.snapshot import fsync_dir
from pyrstmdb.storage.wal import VerifyReport, verify

_INSTALLED = ("wal", "snapshots")


class RestoreFailed(Exception):
    """Why nothing was restored, phrased for one line."""


@dataclass(frozen=True, slots=True)
class Restored:
    manifest: Manifest
    log: VerifyReport
    machines: int
    instances: int
    deleted: int


def _refuse_unless_empty(data_dir: str) -> bool:
    """True if ``data_dir`` exists (and is empty); raises if it cannot be used."""
    if not os.path.exists(data_dir):
        return False
    if not os.path.isdir(data_dir):
        raise RestoreFailed(f"cannot restore into {data_dir}: it is not a directory")
    entries = sorted(os.listdir(data_dir))
    if entries:
        shown = ", ".join(entries[:3]) + (", …" if len(entries) > 3 else "")
        raise RestoreFailed(
            f"cannot restore into {data_dir}: the directory is not empty ({shown}); "
            "restore into a new or empty directory"
        )
    return True


def _check_log(staging: str) -> VerifyReport:
    report = verify(os.path.join(staging, "wal"))
    if report.problem is not None:
        raise RestoreFailed(
            f"the log in the archive is damaged: {report.problem} "
            f"({os.path.basename(report.problem_path or '')} at byte {report.problem_position})"
        )
    if report.torn_segment is not None:
        raise RestoreFailed(
            f"the log in the archive ends with a torn record "
            f"({os.path.basename(report.torn_segment)} at byte {report.torn_position})"
        )
    return report


def _open_restored(staging: str, manifest: Manifest, log: VerifyReport) -> Restored:
    """Open the staged directory as the server would; count what it holds."""
    db = Database(staging)
    try:
        state = db.core.state
        return Restored(
            manifest, log, len(state.machines), state.live_instances, state.deleted_count
        )
    finally:
        db.close()


def _install(staging: str, data_dir: str) -> None:
    for name in _INSTALLED:
        source = os.path.join(staging, name)
        if os.path.isdir(source):
            os.rename(source, os.path.join(data_dir, name))
    fsync_dir(data_dir)


def restore(archive: str, data_dir: str) -> Restored:
    """Restore ``archive`` into the missing or empty ``data_dir`` (see the module doc)."""
    existed = _refuse_unless_empty(data_dir)
    try:
        read_manifest(archive)  # refuse what is not an archive before creating anything
    except OSError as err:
        raise RestoreFailed(f"cannot read {archive}: {err.strerror or err}") from None
    os.makedirs(data_dir, exist_ok=True)
    staging = tempfile.mkdtemp(prefix=".restore-", dir=data_dir)
    try:
        manifest = extract(archive, staging)
        restored = _open_restored(staging, manifest, _check_log(staging))
        _install(staging, data_dir)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        if not existed:
            shutil.rmtree(data_dir, ignore_errors=True)
        raise
    shutil.rmtree(staging, ignore_errors=True)
    return restored


def _summary(archive: str, data_dir: str, restored: Restored) -> str:
    manifest = restored.manifest
    taken = datetime.fromtimestamp(manifest.created_at / 1000, UTC).isoformat(timespec="seconds")
    checkpoint = next((e.name for e in manifest.files if e.name.startswith("snapshots/")), "none")
    log = restored.log
    return "\n".join(
        [
            f"restored {archive} into {data_dir}",
            f"backup: {manifest.backup_id}, taken {taken}",
            f"checkpoint: {checkpoint}",
            f"log: {log.segments} segments, {log.records} records, {log.total_bytes} bytes, "
            f"up to offset {manifest.end_offset}",
            f"state: {restored.machines} machines, {restored.instances} instances "
            f"({restored.deleted} deleted)",
        ]
    )


def run_restore(archive: str, data_dir: str, out: TextIO, err: TextIO) -> int:
    """The ``rstmdb restore`` command; returns the exit status."""
    try:
        restored = restore(archive, data_dir)
    except RestoreFailed as exc:
        message = str(exc)
    except ArchiveError as exc:
        message = f"cannot restore {archive}: {exc}"
    except (CorruptionError, RstmdbError) as exc:
        message = f"cannot restore {archive}: the restored log does not open: {exc}"
    except OSError as exc:
        message = f"cannot restore {archive} into {data_dir}: {exc}"
    else:
        print(_summary(archive, data_dir, restored), file=out, flush=True)
        return 0
    print(f"rstmdb: {message}", file=err, flush=True)
    return 1
