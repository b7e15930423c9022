"""Crash safety with a real process: SIGKILL a writer at random moments, then reopen.

The child appends under ``every_write`` from several threads and prints each offset only
after ``wait_durable`` returned. Every printed (acknowledged) record must be present and
intact after the kill, across many kills of the same directory.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from pyrstmdb.storage.wal import Wal

CHILD = r"""
import sys, threading
from pyrstmdb.storage.wal import Wal

directory, run = sys.argv[1], int(sys.argv[2])
log = Wal.open(directory, segment_size=16 * 1024)
append_lock = threading.Lock()
print_lock = threading.Lock()

def writer(thread):
    i = 0
    while True:
        body = b'{"run":%d,"thread":%d,"i":%d,"pad":"%s"}' % (run, thread, i, b"p" * (i % 50))
        with append_lock:
            (offset,) = log.append([(3, body)])
        log.wait_durable(offset)
        with print_lock:
            sys.stdout.write("%d %s\n" % (offset, body.decode()))
            sys.stdout.flush()
        i += 1

for t in range(4):
    threading.Thread(target=writer, args=(t,), daemon=True).start()
sys.stdout.write("ready\n")
sys.stdout.flush()
threading.Event().wait()
"""

KILLS = 12


def _run_and_kill(directory: Path, run: int, rng: random.Random) -> list[tuple[int, bytes]]:
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(directory), str(run)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert child.stdout is not None
    lines: list[bytes] = []
    ready = threading.Event()

    def read() -> None:
        assert child.stdout is not None
        for line in child.stdout:
            if line == b"ready\n":
                ready.set()
            lines.append(line)

    reader = threading.Thread(target=read)
    reader.start()
    try:
        assert ready.wait(30), child.stderr.read() if child.stderr else b""
        time.sleep(rng.uniform(0.01, 0.25))
    finally:
        os.kill(child.pid, signal.SIGKILL)
        child.wait(30)
        reader.join(30)
    acknowledged = []
    for line in lines:
        if line.endswith(b"\n") and line != b"ready\n":
            offset, body = line.rstrip(b"\n").split(b" ", 1)
            acknowledged.append((int(offset), body))
    return acknowledged


@pytest.mark.slow
def test_acknowledged_records_survive_sigkill(tmp_path: Path) -> None:
    rng = random.Random(20240611)
    directory = tmp_path / "wal"
    acknowledged: dict[int, bytes] = {}
    for run in range(KILLS):
        for offset, body in _run_and_kill(directory, run, rng):
            assert acknowledged.setdefault(offset, body) == body
        with Wal.open(directory, segment_size=16 * 1024) as log:
            found = {entry.offset: entry.payload for entry in log.entries()}
            sequences = [entry.sequence for entry in log.entries()]
        missing = [off for off, body in acknowledged.items() if found.get(off) != body]
        assert missing == [], f"run {run}: {len(missing)} acknowledged records lost"
        assert sequences == sorted(set(sequences))
    assert len(acknowledged) > KILLS  # the children really wrote
    assert len({off >> 40 for off in acknowledged}) > 1  # and rotated segments
