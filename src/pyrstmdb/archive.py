"""The backup archive: one file holding a backup's data-directory files and a manifest.

``rstmdb-cli backup FILE`` writes it, ``rstmdb restore FILE`` reads it. An
uncompressed POSIX tar (PAX headers), readable with ``tar tvf``::

    snapshots/checkpoint-<16 hex>.ckpt   the checkpoint the log starts from (if any)
    wal/<16 hex>.wal …                   the segments from there on, the last one cut
                                         at the backup's end offset
    backup.json                          the manifest, written last:
        {"format": "pyrstmdb-backup", "version": 1, "backup_id", "created_at",
         "end_offset", "checkpoint_offset",
         "files": [{"name", "size", "crc32c"}, …]}

Writing goes to ``FILE.tmp``, which is fsynced and renamed over ``FILE`` only when
complete, so ``FILE`` is always either the previous file or a whole archive.
Reading checks every member against the manifest (name, type, size, CRC-32C) while
copying it out; member names are checked against the two patterns above, so
nothing is ever written outside the destination. Raises :class:`ArchiveError`
(one line, naming the member) for anything that does not fit, ``OSError`` for I/O.
"""

from __future__ import annotations

import contextlib
import errno
import io
import os
import re
import tarfile
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import orjson
from crc32c import crc32c

from pyrstmdb.storage.snapshot import fsync_dir

FORMAT = "pyrstmdb-backup"
VERSION = 1
MANIFEST_NAME = "backup.json"
MAX_MANIFEST_BYTES = 16 * 1024 * 1024
COPY_BUFFER = 1024 * 1024
_MEMBER_NAME = re.compile(r"wal/[0-9a-f]{16}\.wal|snapshots/checkpoint-[0-9a-f]{16}\.ckpt")


class ArchiveError(Exception):
    """The file is not a complete, intact backup archive."""


@dataclass(frozen=True, slots=True)
class ArchiveEntry:
    name: str
    size: int
    crc32c: int


@dataclass(frozen=True, slots=True)
class Manifest:
    backup_id: str
    created_at: int
    end_offset: int
    checkpoint_offset: int | None
    files: tuple[ArchiveEntry, ...]

    @property
    def total_bytes(self) -> int:
        return sum(entry.size for entry in self.files)

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "version": VERSION,
            "backup_id": self.backup_id,
            "created_at": self.created_at,
            "end_offset": self.end_offset,
            "checkpoint_offset": self.checkpoint_offset,
            "files": [{"name": e.name, "size": e.size, "crc32c": e.crc32c} for e in self.files],
        }

    @classmethod
    def from_json(cls, blob: bytes) -> Manifest:
        try:
            obj = orjson.loads(blob)
            if obj.get("format") != FORMAT:
                raise ArchiveError(f"not a backup archive ({MANIFEST_NAME} has another format)")
            if obj.get("version") != VERSION:
                raise ArchiveError(f"unsupported backup archive version {obj.get('version')!r}")
            checkpoint = obj["checkpoint_offset"]
            files = tuple(
                ArchiveEntry(_member_name(str(f["name"])), _uint(f["size"]), _uint(f["crc32c"]))
                for f in obj["files"]
            )
            return cls(
                str(obj["backup_id"]),
                _uint(obj["created_at"]),
                _uint(obj["end_offset"]),
                None if checkpoint is None else _uint(checkpoint),
                files,
            )
        except (orjson.JSONDecodeError, AttributeError, KeyError, TypeError, ValueError) as err:
            raise ArchiveError(f"unreadable {MANIFEST_NAME} ({err})") from None


def _uint(value: Any) -> int:
    if type(value) is not int or value < 0:
        raise ValueError(f"expected a non-negative integer, got {value!r}")
    return value


def _member_name(name: str) -> str:
    if _MEMBER_NAME.fullmatch(name) is None:
        raise ArchiveError(f"unexpected file {name!r} in the archive")
    return name


# -- writing ---------------------------------------------------------------------------------


class _Stream:
    """A file-like view of an iterator of chunks, for ``TarFile.addfile``; sums a CRC."""

    def __init__(self, chunks: Iterator[bytes]) -> None:
        self._chunks = chunks
        self._buffer = memoryview(b"")
        self.count = 0
        self.crc = 0

    def read(self, size: int = -1) -> bytes:
        parts: list[bytes] = []
        wanted = size if size >= 0 else 1 << 62
        while wanted > 0:
            if not self._buffer:
                chunk = next(self._chunks, None)
                if chunk is None:
                    break
                self._buffer = memoryview(chunk)
                continue
            part = bytes(self._buffer[:wanted])
            self._buffer = self._buffer[len(part) :]
            parts.append(part)
            wanted -= len(part)
        data = b"".join(parts)
        self.count += len(data)
        self.crc = crc32c(data, self.crc)
        return data


class ArchiveWriter:
    """Builds an archive in ``path + ".tmp"``; :meth:`finish` puts it in place."""

    def __init__(self, path: str) -> None:
        if os.path.isdir(path):
            raise IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR), path)
        self.path = path
        self.tmp_path = f"{path}.tmp"
        self._file = open(self.tmp_path, "wb")  # noqa: SIM115 - closed by finish/abort
        self._tar = tarfile.TarFile(
            fileobj=self._file, mode="w", format=tarfile.PAX_FORMAT, copybufsize=COPY_BUFFER
        )
        self._entries: list[ArchiveEntry] = []

    def add(self, name: str, size: int, chunks: Iterable[bytes]) -> ArchiveEntry:
        """Append one file of ``size`` bytes, taken from ``chunks``."""
        info = tarfile.TarInfo(_member_name(name))
        info.size = size
        info.mode = 0o644
        info.mtime = int(time.time())
        stream = _Stream(iter(chunks))
        self._tar.addfile(info, stream)  # raises OSError if the chunks end early
        entry = ArchiveEntry(name, size, stream.crc)
        self._entries.append(entry)
        return entry

    def finish(
        self, backup_id: str, created_at: int, end_offset: int, checkpoint_offset: int | None
    ) -> Manifest:
        """Write the manifest, fsync, rename over ``path`` and fsync the directory."""
        manifest = Manifest(
            backup_id, created_at, end_offset, checkpoint_offset, tuple(self._entries)
        )
        blob = orjson.dumps(manifest.to_dict(), option=orjson.OPT_INDENT_2)
        info = tarfile.TarInfo(MANIFEST_NAME)
        info.size = len(blob)
        info.mode = 0o644
        info.mtime = int(time.time())
        self._tar.addfile(info, io.BytesIO(blob))
        self._tar.close()
        self._file.flush()
        os.fsync(self._file.fileno())
        self._file.close()
        os.replace(self.tmp_path, self.path)
        fsync_dir(os.path.dirname(os.path.abspath(self.path)))
        return manifest

    def abort(self) -> None:
        """Drop the unfinished archive (``FILE`` is left as it was)."""
        with contextlib.suppress(OSError, tarfile.TarError):
            self._tar.close()
        self._file.close()
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.tmp_path)


# -- reading ---------------------------------------------------------------------------------


def _open(path: str) -> tarfile.TarFile:
    try:
        return tarfile.open(path, mode="r:")
    except tarfile.ReadError as err:
        raise ArchiveError(f"not a backup archive ({err})") from None


def read_manifest(path: str) -> Manifest:
    """The archive's manifest (checks only the manifest itself)."""
    try:
        with _open(path) as tar:
            member = tar.getmember(MANIFEST_NAME)
            if not member.isreg() or member.size > MAX_MANIFEST_BYTES:
                raise ArchiveError(f"{MANIFEST_NAME} is not a plain file of sensible size")
            handle = tar.extractfile(member)
            assert handle is not None
            blob = handle.read()
    except KeyError:
        raise ArchiveError(f"not a backup archive (no {MANIFEST_NAME}; incomplete?)") from None
    except (tarfile.TarError, EOFError) as err:
        raise ArchiveError(f"damaged archive ({err})") from None
    return Manifest.from_json(blob)


def extract(path: str, dest: str) -> Manifest:
    """Copy every file of the archive under ``dest``, checking each against the manifest.

    Files are fsynced, then their directories. On ``ArchiveError`` some files may
    already be under ``dest``: the caller removes it.
    """
    manifest = read_manifest(path)
    expected = {entry.name: entry for entry in manifest.files}
    seen: set[str] = set()
    try:
        with _open(path) as tar:
            for member in tar:
                if member.name == MANIFEST_NAME:
                    continue
                entry = expected.get(_member_name(member.name))
                if entry is None or member.name in seen:
                    raise ArchiveError(f"{member.name} is not listed in {MANIFEST_NAME}")
                _copy_member(tar, member, entry, dest)
                seen.add(member.name)
    except (tarfile.TarError, EOFError) as err:
        raise ArchiveError(f"damaged archive ({err})") from None
    missing = sorted(set(expected) - seen)
    if missing:
        raise ArchiveError(f"{missing[0]} is missing from the archive")
    for directory in {os.path.dirname(name) for name in seen}:
        fsync_dir(os.path.join(dest, directory))
    fsync_dir(dest)
    return manifest


def _copy_member(
    tar: tarfile.TarFile, member: tarfile.TarInfo, entry: ArchiveEntry, dest: str
) -> None:
    if not member.isreg():
        raise ArchiveError(f"{member.name} is not a plain file")
    if member.size != entry.size:
        raise ArchiveError(
            f"{member.name} holds {member.size} bytes, the manifest says {entry.size}"
        )
    source = tar.extractfile(member)
    assert source is not None
    target = os.path.join(dest, member.name)
    os.makedirs(os.path.dirname(target), exist_ok=True)
    crc = 0
    copied = 0
    with open(target, "wb") as out:
        while chunk := source.read(COPY_BUFFER):
            crc = crc32c(chunk, crc)
            copied += len(chunk)
            out.write(chunk)
        out.flush()
        os.fsync(out.fileno())
    if copied != entry.size:
        raise ArchiveError(f"{member.name} is cut short ({copied} of {entry.size} bytes)")
    if crc != entry.crc32c:
        raise ArchiveError(f"{member.name} fails its checksum: the archive is damaged")
