"""A process that compacts a sizeable store over and over, for SIGKILL tests.

Usage: python compact_child.py DATA_DIR
The first run fills the store (INSTANCES instances with a 1 KB ctx each, so a checkpoint
is a few MB). Every run then loops: one acknowledged write (``ack <instance> <k>``,
printed after it returns), then a forced compaction (``compacted``). ``ready`` is printed
once the store is open and filled.
"""

from __future__ import annotations

import sys

from pyrstmdb import Database

COUNTER = {
    "states": ["on"],
    "initial": "on",
    "transitions": [{"from": "on", "event": "INC", "to": "on"}],
}
INSTANCES = 3000
PAD = "p" * 1000


def say(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def fill(db: Database) -> None:
    db.put_machine("counter", 1, COUNTER)
    for start in range(0, INSTANCES, 100):
        ops = [
            {
                "op": "CREATE_INSTANCE",
                "params": {
                    "machine": "counter",
                    "version": 1,
                    "instance_id": f"c{n}",
                    "initial_ctx": {"k": 0, "pad": PAD},
                },
            }
            for n in range(start, start + 100)
        ]
        db.batch(ops)


def main(path: str) -> None:
    db = Database(path, wal_segment_size_mb=1)
    if not db.list_machines().items:
        fill(db)
    say("ready")
    n = 0
    while True:
        name = f"c{n % INSTANCES}"
        k = db.get_instance(name).ctx["k"] + 1
        db.apply_event(name, "INC", payload={"k": k})
        say(f"ack {name} {k}")
        db.compact(force_snapshot=True)
        say("compacted")
        n += 1


if __name__ == "__main__":
    main(sys.argv[1])
