"""Backup and restore with real processes: ``rstmdb-cli backup`` against a live server
under concurrent writers, ``rstmdb restore`` into a new directory, a new server on it.

Also: compaction and FLUSH_ALL are refused while a backup is held and work after it,
a client that leaves mid-backup ends it, and ``restore`` refuses a non-empty directory
and damaged archives with one line.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import tarfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from server_harness import ServerProcess, clean_env, run_rstmdb

from pyrstmdb.client import Client
from pyrstmdb.errors import Conflict

pytestmark = pytest.mark.slow  # backups and restores with real servers

CLI = Path(sys.executable).parent / "rstmdb-cli"
MACHINE = {
    "states": ["open", "done"],
    "initial": "open",
    "transitions": [{"from": "open", "event": "CLOSE", "to": "done"}],
}
SMALL_SEGMENTS = {"RSTMDB_WAL_SEGMENT_SIZE_MB": "1"}
StartServer = Callable[..., ServerProcess]


@dataclass(frozen=True)
class Write:
    instance_id: str
    sent: float
    acked: float


def run_cli(
    server: ServerProcess, *args: str, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(CLI), "-s", server.address, *args],
        env=clean_env({"NO_COLOR": "1"}),
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )


def preload(client: Client, prefix: str, batches: int, pad: int = 1500) -> list[str]:
    ids: list[str] = []
    for b in range(batches):
        ops = []
        for i in range(100):
            instance_id = f"{prefix}-{b}-{i}"
            ids.append(instance_id)
            params = {"machine": "job", "version": 1, "instance_id": instance_id}
            ops.append(
                {"op": "CREATE_INSTANCE", "params": {**params, "initial_ctx": {"p": "x" * pad}}}
            )
        client.batch(ops)
    return ids


def all_instance_ids(client: Client) -> set[str]:
    found: set[str] = set()
    offset = 0
    while True:
        page = client.list_instances(limit=2000, offset=offset)
        found.update(item.id for item in page.instances)
        offset += len(page.instances)
        if not page.has_more or not page.instances:
            return found


class Writers:
    """Threads that each create instances one after the other, timing every ack."""

    def __init__(self, address: str, count: int) -> None:
        self.address = address
        self.stop = threading.Event()
        self.writes: list[list[Write]] = [[] for _ in range(count)]
        self.errors: list[BaseException] = []
        self.threads = [threading.Thread(target=self._run, args=(n,)) for n in range(count)]

    def _run(self, n: int) -> None:
        try:
            with Client(self.address) as client:
                i = 0
                while not self.stop.is_set():
                    instance_id = f"w{n}-{i}"
                    sent = time.monotonic()
                    client.create_instance("job", 1, instance_id, {"n": i, "p": "y" * 300})
                    self.writes[n].append(Write(instance_id, sent, time.monotonic()))
                    i += 1
        except BaseException as exc:
            self.errors.append(exc)

    def __enter__(self) -> Writers:
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join(timeout=30)

    def all(self) -> list[Write]:
        return [w for per_writer in self.writes for w in per_writer]


@pytest.mark.slow
def test_backup_under_concurrent_writes_restores_a_prefix(
    rstmdb_server: StartServer, tmp_path: Path
) -> None:
    server = rstmdb_server(env=SMALL_SEGMENTS)
    with Client(server.address) as client:
        client.put_machine("job", 1, MACHINE)
        early = preload(client, "early", 40)
        assert client.compact(True).segments_deleted >= 1  # the backup starts from a checkpoint
        later = preload(client, "later", 40)
    archive = tmp_path / "backup.tar"
    with Writers(server.address, 4) as writers:
        time.sleep(0.5)
        started = time.monotonic()
        done = run_cli(server, "--json", "backup", str(archive))
        finished = time.monotonic()
        time.sleep(0.3)
    assert done.returncode == 0, done.stderr
    assert not writers.errors, writers.errors
    manifest = json.loads(done.stdout)
    assert manifest["path"] == str(archive) and archive.exists()
    assert not Path(f"{archive}.tmp").exists()
    assert any(name["name"].startswith("snapshots/checkpoint-") for name in manifest["files"])

    restored_dir = tmp_path / "restored"
    restored = run_rstmdb(["restore", str(archive), "--data-dir", str(restored_dir)])
    assert restored.returncode == 0, restored.stderr
    assert f"restored {archive} into {restored_dir}" in restored.stdout
    check = run_rstmdb(["check", "--data-dir", str(restored_dir)])
    assert check.returncode == 0 and "result: OK" in check.stdout, check.stdout

    copy = rstmdb_server(data_dir=restored_dir)
    with Client(copy.address) as client:
        assert client.wal_stats().latest_offset == manifest["end_offset"]
        present = all_instance_ids(client)
    writes = writers.all()
    before = [w for w in writes if w.acked < started]
    during = [w for w in writes if started <= w.acked <= finished]
    assert before and during, "writers must have been acknowledged before and during the backup"
    assert set(early) | set(later) <= present
    missing_before = [w.instance_id for w in before if w.instance_id not in present]
    assert not missing_before, f"acknowledged before the backup but lost: {missing_before[:5]}"
    # A prefix: whatever a restored write was sent after, had been acknowledged, is there.
    restored_writes = [w for w in writes if w.instance_id in present]
    horizon = max(w.sent for w in restored_writes)
    gaps = [w.instance_id for w in writes if w.acked < horizon and w.instance_id not in present]
    assert not gaps, f"writes missing before a restored later one: {gaps[:5]}"
    for per_writer in writers.writes:
        kept = [w.instance_id in present for w in per_writer]
        assert kept == sorted(kept, reverse=True), "each writer's restored writes are a prefix"
    # Nothing written after the backup ended is in it, and writes went on during it.
    assert all(w.sent < finished for w in restored_writes)
    assert len(present) - len(early) - len(later) < len(writes)


def _error_code(response: Any) -> str | None:
    return None if response.ok else response.error["code"]


def test_compaction_and_flush_wait_for_the_backup_and_run_after(
    rstmdb_server: StartServer,
) -> None:
    server = rstmdb_server(env={**SMALL_SEGMENTS, "RSTMDB_ALLOW_FLUSH_ALL": "true"})
    with Client(server.address) as client:
        client.put_machine("job", 1, MACHINE)
        preload(client, "a", 10)
    with server.raw() as holder, server.raw() as other:
        begun = holder.call("BACKUP_BEGIN")
        assert begun.ok, begun.error
        backup_id = begun.result["backup_id"]
        refused = other.call("COMPACT", {"force_snapshot": True})
        assert _error_code(refused) == "CONFLICT"
        assert "backup" in refused.error["message"]
        assert _error_code(other.call("FLUSH_ALL")) == "CONFLICT"
        # writes are not paused
        assert other.call("CREATE_INSTANCE", {"machine": "job", "version": 1}).ok
        first = begun.result["files"][0]
        chunk = holder.call(
            "BACKUP_READ", {"backup_id": backup_id, "file": first["name"], "offset": 0}
        )
        assert chunk.ok and chunk.result["length"] == min(first["size"], 4 * 1024 * 1024)
        # another connection cannot read or end this backup
        foreign = other.call(
            "BACKUP_READ", {"backup_id": backup_id, "file": first["name"], "offset": 0}
        )
        assert _error_code(foreign) == "NOT_FOUND"
        assert other.call("BACKUP_END", {"backup_id": backup_id}).result["ended"] is False
        ended = holder.call("BACKUP_END", {"backup_id": backup_id})
        assert ended.result == {"backup_id": backup_id, "ended": True}
        compacted = other.call("COMPACT", {"force_snapshot": True})
        assert compacted.ok, compacted.error
        assert compacted.result["segments_deleted"] >= 1


def test_a_client_that_leaves_mid_backup_unpauses_compaction(
    rstmdb_server: StartServer,
) -> None:
    server = rstmdb_server(env=SMALL_SEGMENTS)
    with Client(server.address) as client:
        client.put_machine("job", 1, MACHINE)
        preload(client, "a", 10)
    holder = server.raw()
    begun = holder.call("BACKUP_BEGIN")
    first = begun.result["files"][0]
    params = {
        "backup_id": begun.result["backup_id"],
        "file": first["name"],
        "offset": 0,
        "length": 1000,
    }
    assert holder.call("BACKUP_READ", params).result["length"] == 1000
    with server.raw() as other:
        assert _error_code(other.call("COMPACT", {"force_snapshot": True})) == "CONFLICT"
        holder.close()  # mid-backup, without BACKUP_END
        deadline = time.monotonic() + 10
        while True:
            answer = other.call("COMPACT", {"force_snapshot": True})
            if answer.ok or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        assert answer.ok, answer.error
    assert "ended: its client left" in server.log()


def test_restore_refuses_a_non_empty_directory(rstmdb_server: StartServer, tmp_path: Path) -> None:
    server = rstmdb_server()
    with Client(server.address) as client:
        client.put_machine("job", 1, MACHINE)
    archive = tmp_path / "b.tar"
    assert run_cli(server, "backup", str(archive)).returncode == 0
    target = tmp_path / "busy"
    target.mkdir()
    (target / "keep.txt").write_text("mine")
    refused = run_rstmdb(["restore", str(archive), "--data-dir", str(target)])
    assert refused.returncode == 1
    assert refused.stdout == ""
    lines = refused.stderr.strip().splitlines()
    assert len(lines) == 1 and "not empty" in lines[0] and str(target) in lines[0], lines
    assert sorted(p.name for p in target.iterdir()) == ["keep.txt"]


def _damaged_copies(archive: Path, tmp_path: Path) -> dict[str, Path]:
    data = archive.read_bytes()
    with tarfile.open(archive) as tar:
        wal = next(m for m in tar.getmembers() if m.name.startswith("wal/") and m.size > 100)
        data_start = wal.offset_data
    flipped = bytearray(data)
    flipped[data_start + wal.size // 2] ^= 0xFF
    copies = {
        "flipped": bytes(flipped),
        "truncated": data[: data_start + wal.size // 2],
        "not an archive": b"hello, this is not a tar file\n" * 40,
    }
    paths = {}
    for name, blob in copies.items():
        path = tmp_path / f"{name.replace(' ', '-')}.tar"
        path.write_bytes(blob)
        paths[name] = path
    return paths


@pytest.mark.slow
def test_restore_refuses_a_damaged_archive(rstmdb_server: StartServer, tmp_path: Path) -> None:
    server = rstmdb_server(env=SMALL_SEGMENTS)
    with Client(server.address) as client:
        client.put_machine("job", 1, MACHINE)
        preload(client, "a", 5)
    archive = tmp_path / "good.tar"
    assert run_cli(server, "backup", str(archive)).returncode == 0
    for kind, path in _damaged_copies(archive, tmp_path).items():
        target = tmp_path / f"into-{path.stem}"
        refused = run_rstmdb(["restore", str(path), "--data-dir", str(target)])
        assert refused.returncode == 1, (kind, refused.stdout)
        lines = refused.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("rstmdb: cannot restore"), (kind, lines)
        assert "Traceback" not in refused.stderr
        assert not target.exists(), kind  # created for the restore, removed again
    assert (
        "checksum"
        in run_rstmdb(
            ["restore", str(tmp_path / "flipped.tar"), "--data-dir", str(tmp_path / "x")]
        ).stderr
    )
    good = run_rstmdb(["restore", str(archive), "--data-dir", str(tmp_path / "fine")])
    assert good.returncode == 0, good.stderr
    assert "state: 1 machines, 500 instances" in good.stdout


@pytest.mark.slow
def test_interrupted_cli_backup_leaves_no_file_and_unpauses_compaction(
    rstmdb_server: StartServer, tmp_path: Path
) -> None:
    server = rstmdb_server(env=SMALL_SEGMENTS)
    with Client(server.address) as client:
        client.put_machine("job", 1, MACHINE)
        preload(client, "a", 100)  # about 16 MB: several chunks
    archive = tmp_path / "b.tar"
    archive.write_bytes(b"the previous backup")
    tmp_file = Path(f"{archive}.tmp")
    proc = subprocess.Popen(
        [str(CLI), "-s", server.address, "backup", str(archive)],
        env=clean_env({"NO_COLOR": "1"}),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        text=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    deadline = time.monotonic() + 30
    while not tmp_file.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.005)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 130, (out, err)
    assert "Traceback" not in err
    assert archive.read_bytes() == b"the previous backup"
    assert not tmp_file.exists()
    with Client(server.address) as client:
        deadline = time.monotonic() + 10
        while True:
            try:
                assert client.compact(True).segments_deleted >= 1
                break
            except Conflict:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
