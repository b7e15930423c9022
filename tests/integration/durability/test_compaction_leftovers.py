"""Compaction that dies or fails leaves no temporary checkpoint behind.

* A child process compacts a store of a few MB in a loop and is SIGKILLed while its
  ``checkpoint-*.ckpt.tmp`` is being written, several times. ``rstmdb check`` lists the
  leftover; opening the directory removes it (and logs it); every acknowledged write is
  there.
* On a full disk (a real tmpfs, mounted in a private mount namespace for the server),
  COMPACT answers ``WAL_IO_ERROR`` naming the step, the file and the OS error, removes its
  partial ``.tmp``, and the server keeps serving; once space is free, compaction works.
"""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path

import pytest
from line_child import LineChild
from server_harness import ServerProcess, run_rstmdb

from pyrstmdb import Database

CHILD = Path(__file__).with_name("compact_child.py")
KILLS = 4


class CompactingChild(LineChild):
    def __init__(self, path: Path) -> None:
        super().__init__(CHILD, [str(path)], "compacting")

    def wait_ready(self, timeout: float = 120) -> None:
        super().wait_ready(timeout)

    def kill_while_writing_a_checkpoint(self, snapshots: Path) -> list[str]:
        """SIGKILL as soon as a temporary checkpoint exists; returns the ones left."""
        deadline = time.monotonic() + 60
        while not any(n.endswith(".ckpt.tmp") for n in os.listdir(snapshots)):
            assert self.proc.poll() is None, "compacting process died"
            assert time.monotonic() < deadline, "no checkpoint was ever written"
            time.sleep(0.0005)
        self.kill()
        return sorted(n for n in os.listdir(snapshots) if n.endswith(".tmp"))


def _acked(lines: list[str]) -> dict[str, int]:
    acked: dict[str, int] = {}
    for line in lines:
        parts = line.split()
        if parts[0] == "ack":
            acked[parts[1]] = max(acked.get(parts[1], 0), int(parts[2]))
    return acked


@pytest.mark.slow
def test_sigkill_during_compaction_leaves_no_temporary_checkpoint(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    data_dir = tmp_path / "data"
    snapshots = data_dir / "snapshots"
    acked: dict[str, int] = {}
    kills = 0
    attempts = 0
    left: list[str] = []
    while kills < KILLS:
        attempts += 1
        assert attempts <= 4 * KILLS, f"only {kills} kills landed inside a checkpoint write"
        child = CompactingChild(data_dir)
        child.wait_ready()
        left = child.kill_while_writing_a_checkpoint(snapshots)
        for name, k in _acked(child.lines).items():
            acked[name] = max(acked.get(name, 0), k)
        if left:
            kills += 1  # the kill landed mid-write: a leftover exists until the next open
    assert len(left) == 1 and left[0].startswith("checkpoint-"), left
    leftover = snapshots / left[0]

    check = run_rstmdb(["check", "--data-dir", str(data_dir)])
    assert check.returncode == 0, check.stdout
    assert f"leftover temporary file: {leftover}" in check.stdout

    with caplog.at_level(logging.WARNING, logger="pyrstmdb.storage"):
        db = Database(data_dir)
    try:
        assert not leftover.exists()
        assert [n for n in os.listdir(snapshots) if n.endswith(".tmp")] == []
        assert any(str(leftover) in r.getMessage() for r in caplog.records)
        assert db.list_instances(limit=10_000).total == 3000
        for name, k in acked.items():
            assert db.get_instance(name).ctx["k"] >= k, f"{name}: acknowledged k={k} lost"
    finally:
        db.close()
    assert acked, "no write was acknowledged"
    again = run_rstmdb(["check", "--data-dir", str(data_dir)])
    assert again.returncode == 0 and "leftover" not in again.stdout


# -- a full disk ----------------------------------------------------------------------------

TMPFS_SIZE = 6 * 1024 * 1024
PAD = "q" * 1000


class NamespacedServer(ServerProcess):
    """``rstmdb`` in its own mount namespace, with its data on a fresh small tmpfs.

    The tmpfs is seen only by the server (and through ``/proc/<pid>/root``); it goes away
    with the process.
    """

    def __init__(self, mount_point: Path, log_path: Path, env: dict[str, str]) -> None:
        super().__init__(mount_point / "data", log_path, env=env)
        self.mount_point = mount_point

    def command(self) -> list[str]:
        script = f'mount -t tmpfs -o size={TMPFS_SIZE} tmpfs "$0" && exec "$@"'
        return ["unshare", "-m", "sh", "-c", script, str(self.mount_point), *super().command()]

    def seen(self, path: Path) -> Path:
        """``path`` (under the mount point) as this process sees it."""
        assert self.proc is not None
        return Path(f"/proc/{self.proc.pid}/root{path}")


def _create_many(server: ServerProcess, count: int) -> None:
    with server.raw() as client:
        assert client.call(
            "PUT_MACHINE",
            {
                "machine": "m",
                "version": 1,
                "definition": {"states": ["s"], "initial": "s", "transitions": []},
            },
        ).ok
        for start in range(0, count, 100):
            ops = [
                {
                    "op": "CREATE_INSTANCE",
                    "params": {
                        "machine": "m",
                        "version": 1,
                        "instance_id": f"i{n}",
                        "initial_ctx": {"pad": PAD},
                    },
                }
                for n in range(start, start + 100)
            ]
            reply = client.call("BATCH", {"mode": "atomic", "ops": ops})
            assert reply.ok, reply.error


def test_compaction_on_a_full_disk_says_what_failed_and_cleans_up(tmp_path: Path) -> None:
    mount_point = tmp_path / "mnt"
    mount_point.mkdir()
    env = {"RSTMDB_WAL_SEGMENT_SIZE_MB": "1", "RSTMDB_COMPACT_ENABLED": "false"}
    server = NamespacedServer(mount_point, tmp_path / "server.log", env)
    try:
        server.start()
        _create_many(server, 1500)
        data = server.seen(server.data_dir)
        room = os.statvfs(data)
        assert room.f_blocks * room.f_frsize == TMPFS_SIZE  # really the small tmpfs
        filler = data / "filler"
        free = room.f_bavail * room.f_frsize
        filler.write_bytes(b"\0" * (free - 256 * 1024))  # less room than a checkpoint needs

        with server.raw() as client:
            failed = client.call("COMPACT", {"force_snapshot": True})
            assert failed.error is not None
            assert failed.error["code"] == "WAL_IO_ERROR"
            message = failed.error["message"]
            assert "compaction failed writing its checkpoint: cannot write " in message
            assert ".ckpt.tmp: [Errno 28] No space left on device" in message
            assert str(server.data_dir / "snapshots" / "checkpoint-") in message
            assert [p.name for p in (data / "snapshots").iterdir()] == []
            got = client.call("GET_INSTANCE", {"instance_id": "i1499"})
            assert got.ok and got.result is not None and got.result["ctx"] == {"pad": PAD}

            filler.unlink()
            compacted = client.call("COMPACT", {"force_snapshot": True})
            assert compacted.ok, compacted.error
            assert compacted.result is not None and compacted.result["segments_deleted"] >= 1
            created = client.call(
                "CREATE_INSTANCE", {"machine": "m", "version": 1, "instance_id": "after"}
            )
            assert created.ok, created.error
        names = sorted(p.name for p in (data / "snapshots").iterdir())
        assert len(names) == 1 and names[0].endswith(".ckpt"), names
    finally:
        server.kill()
