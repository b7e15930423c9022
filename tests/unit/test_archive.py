"""The backup archive: written atomically, read back only when every member checks out."""

from __future__ import annotations

import io
import tarfile
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest
from crc32c import crc32c

from pyrstmdb.archive import MANIFEST_NAME, ArchiveError, ArchiveWriter, extract, read_manifest

WAL = "wal/0000000000000001.wal"
CKPT = "snapshots/checkpoint-0000010000000000.ckpt"


def _chunks(data: bytes, size: int) -> Iterator[bytes]:
    for start in range(0, len(data), size):
        yield data[start : start + size]


def _write(path: Path, files: dict[str, bytes]) -> None:
    writer = ArchiveWriter(str(path))
    for name, data in files.items():
        writer.add(name, len(data), _chunks(data, 7777))
    writer.finish("b-1", 1_700_000_000_000, (1 << 40) + 5, None)


def test_round_trip(tmp_path: Path) -> None:
    files = {CKPT: b"checkpoint" * 1000, WAL: bytes(range(256)) * 900}
    archive = tmp_path / "a.tar"
    _write(archive, files)
    assert not (tmp_path / "a.tar.tmp").exists()
    manifest = read_manifest(str(archive))
    assert [e.name for e in manifest.files] == [CKPT, WAL]
    assert manifest.end_offset == (1 << 40) + 5 and manifest.total_bytes == 240_400
    dest = tmp_path / "out"
    dest.mkdir()
    extract(str(archive), str(dest))
    for name, data in files.items():
        assert (dest / name).read_bytes() == data


def test_short_chunks_abort_and_leave_the_old_file(tmp_path: Path) -> None:
    archive = tmp_path / "a.tar"
    archive.write_bytes(b"previous backup")
    writer = ArchiveWriter(str(archive))
    with pytest.raises(OSError):
        writer.add(WAL, 100, iter([b"only ten b"]))
    writer.abort()
    assert archive.read_bytes() == b"previous backup"
    assert not (tmp_path / "a.tar.tmp").exists()


def _tar(path: Path, members: dict[str, bytes]) -> None:
    with tarfile.open(path, "w") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))


def _manifest(files: dict[str, bytes], crc: int | None = None) -> bytes:
    return orjson.dumps(
        {
            "format": "pyrstmdb-backup",
            "version": 1,
            "backup_id": "x",
            "created_at": 0,
            "end_offset": 0,
            "checkpoint_offset": None,
            "files": [
                {"name": n, "size": len(d), "crc32c": crc32c(d) if crc is None else crc}
                for n, d in files.items()
            ],
        }
    )


@pytest.mark.parametrize(
    ("members", "reason"),
    [
        ({WAL: b"abc"}, "no backup.json"),
        ({WAL: b"abc", MANIFEST_NAME: b"{not json"}, "unreadable backup.json"),
        ({WAL: b"abc", MANIFEST_NAME: _manifest({WAL: b"abc"}, crc=1)}, "fails its checksum"),
        ({WAL: b"abcd", MANIFEST_NAME: _manifest({WAL: b"abc"})}, "holds 4 bytes"),
        ({MANIFEST_NAME: _manifest({WAL: b"abc"})}, "missing from the archive"),
        (
            {"../escape.wal": b"abc", MANIFEST_NAME: _manifest({WAL: b"abc"})},
            "unexpected file '../escape.wal'",
        ),
        (
            {WAL: b"abc", MANIFEST_NAME: _manifest({"/etc/passwd": b"abc"})},
            "unexpected file '/etc/passwd'",
        ),
    ],
)
def test_damage_is_refused_naming_what(
    tmp_path: Path, members: dict[str, bytes], reason: str
) -> None:
    archive = tmp_path / "bad.tar"
    _tar(archive, members)
    dest = tmp_path / "out"
    dest.mkdir()
    with pytest.raises(ArchiveError, match=reason.replace("(", r"\(")):
        extract(str(archive), str(dest))
    assert not (tmp_path / "escape.wal").exists()


def test_not_a_tar_file(tmp_path: Path) -> None:
    path = tmp_path / "x.tar"
    path.write_bytes(b"\x00garbage" * 100)
    with pytest.raises(ArchiveError):
        read_manifest(str(path))
