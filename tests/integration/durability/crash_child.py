"""A writer process for the crash tests: prints every acknowledged write, then keeps going.

Usage: python crash_child.py DATA_DIR MODE SEED
MODE: plain | compact | batch | loop. Each acknowledged write is printed as
``ack <instance> <k> <offset>`` (batch: ``ackb <group> <b> <offsets>``) and flushed
before the next one starts; the parent SIGKILLs this process at a random moment.
``loop`` writes as the server does: asyncio tasks awaiting durability, with the event loop
running the fsync rounds and a helper process doing the fdatasync, while a thread compacts.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import sys
import threading
import time

from pyrstmdb import Database, InstanceExists, aio
from pyrstmdb.aio import DurabilityWaiter
from pyrstmdb.engine.commands import ApplyEvent

COUNTER = {
    "states": ["on"],
    "initial": "on",
    "transitions": [{"from": "on", "event": "INC", "to": "on"}],
}
INSTANCES = 8
GROUPS = 3
PAD = "p" * 300

_print_lock = threading.Lock()


def say(line: str) -> None:
    with _print_lock:
        sys.stdout.write(line + "\n")
        sys.stdout.flush()


def prepare(db: Database) -> None:
    db.put_machine("counter", 1, COUNTER)
    for n in range(INSTANCES):
        with contextlib.suppress(InstanceExists):
            db.create_instance("counter", 1, instance_id=f"c{n}", initial_ctx={"k": 0})
    for g in range(GROUPS):
        for member in "abc":
            with contextlib.suppress(InstanceExists):
                db.create_instance("counter", 1, instance_id=f"g{g}{member}", initial_ctx={"b": 0})


def writer(db: Database, names: list[str], rng: random.Random) -> None:
    while True:
        name = rng.choice(names)
        current = db.get_instance(name).ctx["k"]
        result = db.apply_event(
            name, "INC", payload={"k": current + 1, "pad": PAD}, expected_state="on"
        )
        say(f"ack {name} {current + 1} {result.wal_offset}")


def batcher(db: Database, group: int) -> None:
    members = [f"g{group}{m}" for m in "abc"]
    while True:
        b = db.get_instance(members[0]).ctx["b"] + 1
        ops = [
            {"op": "APPLY_EVENT", "params": {"instance_id": m, "event": "INC", "payload": {"b": b}}}
            for m in members
        ]
        result = db.batch(ops, mode="atomic")
        offsets = ",".join(str(item.result.wal_offset) for item in result.results)  # type: ignore[union-attr]
        say(f"ackb {group} {b} {offsets}")


def compactor(db: Database) -> None:
    while True:
        time.sleep(0.05)
        db.compact(force_snapshot=True)


async def loop_writers(db: Database) -> None:
    core = db.core
    waiter = DurabilityWaiter(core, asyncio.get_running_loop())
    if not waiter.runs_fsync_rounds:
        raise SystemExit("the loop does not run the fsync rounds")

    async def one(name: str) -> None:
        while True:
            current = core.live_instance(name).ctx["k"]
            cmd = ApplyEvent(name, "INC", {"k": current + 1, "pad": PAD}, expected_state="on")
            result, offset = core.apply_event(cmd)
            await waiter.visible(offset)
            say(f"ack {name} {current + 1} {result.wal_offset}")

    await asyncio.gather(*(one(f"c{n}") for n in range(INSTANCES)))


def main() -> None:
    path, mode, seed = sys.argv[1], sys.argv[2], int(sys.argv[3])
    db = Database(path, wal_segment_size_mb=1)
    prepare(db)
    say("ready")
    if mode == "loop":
        threading.Thread(target=compactor, args=(db,), daemon=True).start()
        aio.run(loop_writers(db))
        return
    threads = []
    if mode == "batch":
        threads = [
            threading.Thread(target=batcher, args=(db, g), daemon=True) for g in range(GROUPS)
        ]
    else:
        for n in range(4):
            names = [f"c{i}" for i in range(n, INSTANCES, 4)]
            rng = random.Random(seed * 10 + n)
            threads.append(threading.Thread(target=writer, args=(db, names, rng), daemon=True))
    if mode == "compact":
        threads.append(threading.Thread(target=compactor, args=(db,), daemon=True))
    for thread in threads:
        thread.start()
    time.sleep(3600)


if __name__ == "__main__":
    main()
