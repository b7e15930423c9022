"""In-memory engine throughput: ``Database.apply_event`` with a guard and a 5-key ctx."""

from __future__ import annotations

import time

from pyrstmdb import Database

GUARDED = {
    "states": ["a", "b"],
    "initial": "a",
    "transitions": [
        {"from": "a", "event": "GO", "to": "b", "guard": "ctx.amount > 100 && ctx.ok"},
        {"from": "b", "event": "GO", "to": "a", "guard": "ctx.amount > 100 && ctx.ok"},
    ],
}
CTX = {"amount": 500, "ok": True, "customer": "alice", "rate": 1.5, "note": None}


def _best_rate(fn: object, count: int, rounds: int) -> float:
    best = 0.0
    for _ in range(rounds):
        start = time.perf_counter()
        fn(count)  # type: ignore[operator]
        best = max(best, count / (time.perf_counter() - start))
    return best


def _reference(count: int) -> None:
    """A fixed pure-Python workload: its rate shows how fast this machine is right now."""
    table: dict[int, int] = {}
    for n in range(count):
        table[n & 1023] = table.get(n & 1023, 0) + n


def run(tmpdir: str) -> list[tuple[str, float, str]]:
    db = Database()
    db.put_machine("m", 1, GUARDED)
    db.create_instance("m", 1, instance_id="i", initial_ctx=CTX)

    def apply_loop(count: int) -> None:
        apply = db.apply_event
        for n in range(count):
            apply("i", "GO", {"n": n})

    def get_loop(count: int) -> None:
        get = db.get_instance
        for _ in range(count):
            get("i")

    rows = [
        (
            "machine speed reference (fixed Python loop), best of 7",
            _best_rate(_reference, 500_000, 7),
            "loops/s",
        ),
        (
            "in-memory apply_event (guard, 5-key ctx), best of 15",
            _best_rate(apply_loop, 50_000, 15),
            "ops/s",
        ),
        ("in-memory get_instance, best of 7", _best_rate(get_loop, 50_000, 7), "ops/s"),
    ]
    db.close()
    return rows
