"""Taking a backup from a server into an archive file (``rstmdb-cli backup``).

:func:`write_backup` runs BACKUP_BEGIN, one BACKUP_READ per chunk of every file
it lists (each chunk's CRC-32C checked on arrival) and BACKUP_END over a
blocking :class:`~pyrstmdb.client.Client`, streaming the bytes into an archive
(:mod:`pyrstmdb.archive`): ``FILE.tmp`` first, renamed over ``FILE`` once it is
complete and on disk. On any failure the temporary file is removed and the
backup is ended on the server (closing the connection ends it too).

Raises what the client raises (``RstmdbError``, ``ClientConnectionError``) and
``OSError`` when the archive cannot be written.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator

from pyrstmdb.archive import ArchiveWriter, Manifest
from pyrstmdb.client.api import BackupFile, BackupManifest, ProtocolViolation
from pyrstmdb.client.sync import Client
from pyrstmdb.errors import ClientConnectionError, RstmdbError

#: Called with (bytes copied so far, bytes in the whole backup) after every chunk.
Progress = Callable[[int, int], None]


class _Copy:
    """The chunks of the backup's files, in order, counting what has been copied."""

    def __init__(self, client: Client, begun: BackupManifest, progress: Progress | None) -> None:
        self._client = client
        self._begun = begun
        self._progress = progress
        self.copied = 0

    def chunks(self, file: BackupFile) -> Iterator[bytes]:
        begun = self._begun
        offset = 0
        while offset < file.size:
            chunk = self._client.backup_read(
                begun.backup_id, file.name, offset, min(begun.chunk_bytes, file.size - offset)
            )
            if not chunk.data or chunk.offset != offset:
                raise ProtocolViolation(f"backup read of {file.name} at {offset} went wrong")
            offset += len(chunk.data)
            self.copied += len(chunk.data)
            if self._progress is not None:
                self._progress(self.copied, begun.total_bytes)
            yield chunk.data


def write_backup(client: Client, path: str, progress: Progress | None = None) -> Manifest:
    """Back the server up into the archive ``path``; returns the archive's manifest."""
    begun = client.backup_begin()
    writer: ArchiveWriter | None = None
    try:
        writer = ArchiveWriter(path)
        copy = _Copy(client, begun, progress)
        for file in begun.files:
            writer.add(file.name, file.size, copy.chunks(file))
        manifest = writer.finish(
            begun.backup_id, begun.created_at, begun.end_offset, begun.checkpoint_offset
        )
    except Exception:
        if writer is not None:
            writer.abort()
        with contextlib.suppress(RstmdbError, ClientConnectionError):
            client.backup_end(begun.backup_id)
        raise
    except BaseException:  # interrupted: leaving closes the connection, which ends it
        if writer is not None:
            writer.abort()
        raise
    client.backup_end(begun.backup_id)
    return manifest
