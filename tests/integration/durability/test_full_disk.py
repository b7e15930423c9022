"""A real server on a real, small tmpfs that fills up while clients keep writing.

Four writers (2–4 KB payloads, 1 MiB segments) and a reader run against an ``rstmdb``
process whose data directory is on an 8 MiB tmpfs; a filler file takes most of the space,
so the log soon hits ENOSPC. While the disk is full every write must be answered at once
with ``WAL_IO_ERROR`` (a lone one too), reads of durable state keep being served, and no
pile of empty segments grows. Once the filler is deleted the writes must succeed again by
themselves; a restart must then be clean and hold every acknowledged write and none that
was refused.
"""

from __future__ import annotations

import random
import shutil
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from server_harness import RawClient, ServerProcess

MIB = 1024 * 1024
WRITERS = 4
#: The longest a request may take to be answered, full disk or not ("at once").
PROMPT = 1.5

COUNTER = {
    "states": ["s"],
    "initial": "s",
    "transitions": [{"from": "s", "event": "E", "to": "s"}],
}


@pytest.fixture
def small_tmpfs(tmp_path: Path) -> Iterator[Path]:
    """An 8 MiB tmpfs mounted for this test (root only); the test fails if it cannot be."""
    mount_point = tmp_path / "disk"
    mount_point.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=8m", "tmpfs", str(mount_point)],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        pytest.fail(
            f"this test needs an 8 MiB tmpfs and could not mount one at {mount_point} "
            f"(it must run as root): {done.stderr.strip()}"
        )
    try:
        yield mount_point
    finally:
        if subprocess.run(["umount", str(mount_point)], check=False).returncode != 0:
            subprocess.run(["umount", "-l", str(mount_point)], check=False)


@dataclass
class Outcome:
    started: float
    seconds: float
    code: str  # "OK" or the error code
    k: int = 0
    offset: int = -1


@dataclass
class Traffic:
    """What the writers and the reader saw, request by request."""

    writes: dict[int, list[Outcome]] = field(default_factory=dict)
    reads: list[Outcome] = field(default_factory=list)
    crashes: list[BaseException] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)
    go: threading.Event = field(default_factory=threading.Event)  # writers pause while clear
    idle: list[threading.Event] = field(default_factory=list)

    def acked(self, n: int) -> dict[int, int]:
        return {o.k: o.offset for o in self.writes[n] if o.code == "OK"}

    def refused(self, n: int) -> set[int]:
        return {o.k for o in self.writes[n] if o.code != "OK"}

    def all_writes(self) -> list[Outcome]:
        return [o for outcomes in self.writes.values() for o in outcomes]


def _timed(client: RawClient, op: str, params: dict[str, Any]) -> tuple[Outcome, Any]:
    started = time.monotonic()
    response = client.call(op, params)
    code = "OK" if response.ok else str(response.error["code"])
    return Outcome(started, time.monotonic() - started, code), response


def _writer(server: ServerProcess, n: int, traffic: Traffic) -> None:
    rng = random.Random(n)
    outcomes = traffic.writes[n]
    idle = traffic.idle[n]
    k = 0
    try:
        with server.raw(timeout=30) as client:
            while not traffic.stop.is_set():
                if not traffic.go.is_set():
                    idle.set()
                    traffic.go.wait(0.05)
                    continue
                idle.clear()
                k += 1  # every attempt has its own k, refused or not
                pad = "x" * rng.randint(2000, 4000)
                params = {"instance_id": f"w{n}", "event": "E", "payload": {"k": k, "pad": pad}}
                outcome, response = _timed(client, "APPLY_EVENT", params)
                outcome.k = k
                if response.ok:
                    outcome.offset = response.result["wal_offset"]
                outcomes.append(outcome)
                if not response.ok:
                    time.sleep(0.005)  # a client backing off a little before retrying
    except BaseException as exc:
        traffic.crashes.append(exc)


def _reader(server: ServerProcess, traffic: Traffic) -> None:
    rng = random.Random(99)
    try:
        with server.raw(timeout=30) as client:
            while not traffic.stop.is_set():
                if rng.random() < 0.5:
                    params = {"instance_id": f"w{rng.randrange(WRITERS)}"}
                    outcome, _ = _timed(client, "GET_INSTANCE", params)
                else:
                    outcome, _ = _timed(client, "LIST_INSTANCES", {})
                traffic.reads.append(outcome)
                time.sleep(0.002)
    except BaseException as exc:
        traffic.crashes.append(exc)


def _wait_for(check: Callable[[], bool], timeout: float, what: str) -> float:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"timed out after {timeout} s waiting for {what}"
        time.sleep(0.02)
    return time.monotonic()


def _logged_events(server: ServerProcess) -> dict[str, dict[int, int]]:
    """instance id -> {k: offset} of every apply_event record in the log."""
    found: dict[str, dict[int, int]] = {}
    with server.raw(timeout=30) as client:
        offset = 0
        while True:
            response = client.call("WAL_READ", {"from_offset": offset, "limit": 500})
            assert response.ok, response.error
            for record in response.result["records"]:
                entry = record["entry"]
                if entry["type"] == "apply_event":
                    found.setdefault(entry["instance_id"], {})[entry["payload"]["k"]] = record[
                        "offset"
                    ]
            if response.result["next_offset"] is None:
                return found
            offset = response.result["next_offset"]


def _segments(wal: Path) -> list[tuple[str, int]]:
    return sorted((p.name, p.stat().st_size) for p in wal.glob("*.wal"))


@pytest.mark.slow
def test_a_full_disk_refuses_writes_at_once_serves_reads_and_recovers_by_itself(
    small_tmpfs: Path, rstmdb_server: Callable[..., ServerProcess]
) -> None:  # (the tmpfs first: it is unmounted after the server is gone)
    data = small_tmpfs / "data"
    server = rstmdb_server(env={"RSTMDB_WAL_SEGMENT_SIZE_MB": "1"}, data_dir=data)
    with server.raw() as client:
        assert client.call("PUT_MACHINE", {"machine": "c", "version": 1, "definition": COUNTER}).ok
        for n in range(WRITERS):
            params = {"machine": "c", "version": 1, "instance_id": f"w{n}", "initial_ctx": {}}
            assert client.call("CREATE_INSTANCE", params).ok
    # Leave about 1.5 MiB for the log, so the writers fill it within a second or two.
    filler = small_tmpfs / "filler"
    filler.write_bytes(b"\1" * (shutil.disk_usage(small_tmpfs).free - 3 * MIB // 2))

    traffic = Traffic(writes={n: [] for n in range(WRITERS)})
    traffic.idle = [threading.Event() for _ in range(WRITERS)]
    traffic.go.set()
    threads = [threading.Thread(target=_writer, args=(server, n, traffic)) for n in range(WRITERS)]
    threads.append(threading.Thread(target=_reader, args=(server, traffic)))
    for thread in threads:
        thread.start()
    try:
        full = _wait_for(
            lambda: any(o.code != "OK" for o in traffic.all_writes()), 30, "the disk to fill up"
        )
        time.sleep(2.0)  # writers keep writing into the full disk

        # A lone write (nobody else writing) is answered at once as well.
        traffic.go.clear()
        _wait_for(
            lambda: all(idle.is_set() for idle in traffic.idle),
            10,
            "every writer to get its answer and pause",
        )
        with server.raw(timeout=30) as client:
            for k in range(3):
                params = {"instance_id": "w0", "event": "E", "payload": {"lone": k}}
                lone, response = _timed(client, "APPLY_EVENT", params)
                assert lone.code == "WAL_IO_ERROR", response
                assert lone.seconds < PROMPT, f"a lone write waited {lone.seconds:.1f} s"
        traffic.go.set()
        time.sleep(0.3)
        files_while_full = _segments(data / "wal")

        filler.unlink()  # space is freed: nobody tells the server
        freed = time.monotonic()
        resumed = _wait_for(
            lambda: all(
                sum(1 for o in traffic.writes[n] if o.started > freed and o.code == "OK") >= 5
                for n in range(WRITERS)
            ),
            10,
            "writes to succeed again after space was freed",
        )
    finally:
        traffic.stop.set()
        traffic.go.set()
        for thread in threads:
            thread.join(30)
    assert not traffic.crashes, traffic.crashes

    writes = traffic.all_writes()
    while_full = [o for o in writes if full <= o.started < freed]
    assert len(while_full) > 20
    assert {o.code for o in while_full} == {"WAL_IO_ERROR"}
    slowest = max(o.seconds for o in writes)
    assert slowest < PROMPT, f"a write waited {slowest:.2f} s for its answer"
    # Reads of durable state were served throughout, at once.
    assert len([o for o in traffic.reads if full <= o.started < freed]) > 20
    assert {o.code for o in traffic.reads} == {"OK"}
    assert max(o.seconds for o in traffic.reads) < PROMPT
    assert resumed - freed < 5.0

    # No pile of empty segments: a full disk costs at most a couple of them.
    files = _segments(data / "wal")
    empty = [name for name, size in files if size == 0]
    assert len(empty) <= 3, files
    assert len(files) <= len(files_while_full) + 3, (files_while_full, files)

    print(  # the figures, for a run with -s
        f"full disk: {len(while_full)} writes refused, slowest answer {slowest * 1000:.0f} ms; "
        f"{len(traffic.reads)} reads, all OK; writes resumed {resumed - freed:.2f} s after "
        f"space was freed; segments {len(files_while_full)} while full, {len(files)} after "
        f"({len(empty)} empty)"
    )
    assert server.stop() == 0
    server.start()
    log = server.log()
    assert "Traceback" not in log and "CorruptionError" not in log, log[-3000:]
    logged = _logged_events(server)
    with server.raw() as client:
        for n in range(WRITERS):
            acked, refused = traffic.acked(n), traffic.refused(n)
            on_disk = logged.get(f"w{n}", {})
            assert {k: on_disk.get(k) for k in acked} == acked  # every acknowledged write
            assert not refused & on_disk.keys()  # and none that was refused
            got = client.call("GET_INSTANCE", {"instance_id": f"w{n}"})
            assert got.ok and got.result["ctx"]["k"] == max(acked)
