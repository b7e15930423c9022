"""Snapshot files: whole-state checkpoints and per-instance snapshots.

``<data_dir>/snapshots/`` holds

* ``checkpoint-<16 hex offset>.ckpt``: the whole state (machine catalogue,
  every instance including deleted ones, idempotency keys) as of a WAL
  position; compaction writes one before deleting the segments it covers, and
  recovery loads the newest one before replaying the rest of the log. Only
  the newest is kept. Layout::

      PYRSTMDB-CHECKPOINT 1 <sha256 hex of body>\\n
      <body: compact JSON {"offset", "created_at", "machines", "instances", "idempotency",
             "history"}>

  (``history``, the kept instance histories, is absent from older checkpoints,
  which still load.)

* ``snap-<uuid>.snap`` + ``index.json``: SNAPSHOT_INSTANCE's per-instance
  snapshots (pretty JSON, STORAGE §6.3) and the index of the latest one per
  instance. A newer snapshot of an instance replaces the older file.

Every file is written atomically: temporary file, fsync, rename, directory
fsync. Raises ``CorruptionError`` for a damaged checkpoint, ``OSError`` for
I/O failures.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Iterable
from typing import Any

import orjson

from pyrstmdb.errors import CorruptionError
from pyrstmdb.storage.store import CheckpointData

CHECKPOINT_MAGIC = b"PYRSTMDB-CHECKPOINT 1 "
_CHECKPOINT_NAME = re.compile(r"^checkpoint-([0-9a-f]{16})\.ckpt$")
INDEX_NAME = "index.json"


def fsync_dir(directory: str) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_atomic(path: str, data: bytes) -> None:
    """Replace ``path`` with ``data`` so that a crash leaves the old or the new file."""
    tmp = f"{path}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        view = memoryview(data)
        while view:
            written = os.write(fd, view)
            view = view[written:]
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)
    fsync_dir(os.path.dirname(path) or ".")


def remove_files(directory: str, names: Iterable[str]) -> int:
    """Delete files (missing ones are fine); returns how many were removed."""
    removed = 0
    for name in names:
        try:
            os.unlink(os.path.join(directory, name))
            removed += 1
        except FileNotFoundError:
            continue
    if removed:
        fsync_dir(directory)
    return removed


# -- checkpoints -----------------------------------------------------------------


def checkpoint_name(offset: int) -> str:
    return f"checkpoint-{offset:016x}.ckpt"


def checkpoint_files(directory: str) -> list[tuple[int, str]]:
    """``(offset, name)`` of every checkpoint file, oldest first."""
    found = []
    for name in os.listdir(directory):
        match = _CHECKPOINT_NAME.match(name)
        if match:
            found.append((int(match.group(1), 16), name))
    return sorted(found)


def encode_checkpoint(data: CheckpointData, created_at: int) -> bytes:
    body = orjson.dumps(
        {
            "offset": data.offset,
            "created_at": created_at,
            "machines": data.machines,
            "instances": data.instances,
            "idempotency": data.idempotency,
            "history": data.history or [],
        }
    )
    digest = hashlib.sha256(body).hexdigest().encode("ascii")
    return CHECKPOINT_MAGIC + digest + b"\n" + body


def decode_checkpoint(blob: bytes, path: str) -> CheckpointData:
    header, newline, body = blob.partition(b"\n")
    if not newline or not header.startswith(CHECKPOINT_MAGIC):
        raise CorruptionError("not a checkpoint file", path, 0)
    digest = header[len(CHECKPOINT_MAGIC) :].decode("ascii", "replace")
    if hashlib.sha256(body).hexdigest() != digest:
        raise CorruptionError("checkpoint checksum mismatch", path, len(header) + 1)
    try:
        obj = orjson.loads(body)
        history = obj.get("history")
        return CheckpointData(
            int(obj["offset"]), obj["machines"], obj["instances"], obj["idempotency"], history
        )
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError) as err:
        raise CorruptionError(f"unreadable checkpoint ({err})", path, len(header) + 1) from None


def write_checkpoint(directory: str, data: CheckpointData, created_at: int) -> int:
    """Write the checkpoint, then delete older ones; returns the new file's size."""
    blob = encode_checkpoint(data, created_at)
    name = checkpoint_name(data.offset)
    write_atomic(os.path.join(directory, name), blob)
    older = [n for _, n in checkpoint_files(directory) if n != name]
    remove_files(directory, older)
    return len(blob)


def load_latest_checkpoint(directory: str) -> CheckpointData | None:
    files = checkpoint_files(directory)
    if not files:
        return None
    path = os.path.join(directory, files[-1][1])
    with open(path, "rb") as handle:
        return decode_checkpoint(handle.read(), path)


# -- per-instance snapshots ---------------------------------------------------------


class InstanceSnapshots:
    """``snap-<uuid>.snap`` files and ``index.json`` (latest snapshot per instance)."""

    def __init__(self, directory: str) -> None:
        self.directory = directory
        self.index: dict[str, dict[str, Any]] = self._load_index()

    def _load_index(self) -> dict[str, dict[str, Any]]:
        path = os.path.join(self.directory, INDEX_NAME)
        try:
            with open(path, "rb") as handle:
                loaded = orjson.loads(handle.read())
        except FileNotFoundError:
            return {}
        except orjson.JSONDecodeError as err:
            raise CorruptionError(f"unreadable snapshot index ({err})", path, 0) from None
        if not isinstance(loaded, dict):
            raise CorruptionError("snapshot index is not a JSON object", path, 0)
        return loaded

    def _save_index(self) -> None:
        path = os.path.join(self.directory, INDEX_NAME)
        write_atomic(path, orjson.dumps(self.index, option=orjson.OPT_INDENT_2))

    def write(self, body: dict[str, Any]) -> tuple[int, str]:
        """Write one instance snapshot; returns ``(size_bytes, sha256 hex)``."""
        blob = orjson.dumps(body, option=orjson.OPT_INDENT_2)
        snapshot_id = body["snapshot_id"]
        write_atomic(os.path.join(self.directory, f"{snapshot_id}.snap"), blob)
        checksum = hashlib.sha256(blob).hexdigest()
        previous = self.index.get(body["instance_id"])
        self.index[body["instance_id"]] = {
            "snapshot_id": snapshot_id,
            "instance_id": body["instance_id"],
            "wal_offset": body["wal_offset"],
            "created_at": body["created_at"],
            "size_bytes": len(blob),
            "checksum": checksum,
        }
        self._save_index()
        if previous is not None:
            remove_files(self.directory, [f"{previous['snapshot_id']}.snap"])
        return len(blob), checksum

    def forget(self, instance_ids: Iterable[str]) -> int:
        """Drop the snapshots of these instances (e.g. deleted ones)."""
        names = []
        for instance_id in instance_ids:
            entry = self.index.pop(instance_id, None)
            if entry is not None:
                names.append(f"{entry['snapshot_id']}.snap")
        if names:
            self._save_index()
            remove_files(self.directory, names)
        return len(names)

    def clear(self) -> None:
        names = [f"{entry['snapshot_id']}.snap" for entry in self.index.values()]
        self.index = {}
        remove_files(self.directory, [*names, INDEX_NAME])
