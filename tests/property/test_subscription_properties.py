"""Every subscriber receives exactly the matching applied events at or after its
``from_offset``, in offset order, whatever the interleaving of writers (on the loop
and in threads), subscriptions, blocked sinks and activation."""

from __future__ import annotations

import asyncio
import tempfile
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pyrstmdb import Database
from pyrstmdb.subscriptions import Hub

# Both events are valid in both states, so concurrent writers never conflict.
MACHINE = {
    "states": ["a", "b"],
    "initial": "a",
    "transitions": [
        {"from": "a", "event": "GO", "to": "b"},
        {"from": "b", "event": "GO", "to": "a"},
        {"from": ["a", "b"], "event": "STAY", "to": "b"},
    ],
}
INSTANCES = {"x0": "m1", "x1": "m1", "y0": "m2", "y1": "m2"}
FILTERS: list[dict[str, list[str]]] = [
    {},
    {"machines": ["m1"]},
    {"events": ["GO"]},
    {"from_states": ["b"], "to_states": ["a", "b"]},
    {"machines": ["m2"], "to_states": ["b"]},
]

instance_ids = st.sampled_from(sorted(INSTANCES))
steps = st.one_of(
    st.tuples(st.just("write"), instance_ids, st.integers(1, 12)),
    st.tuples(st.just("thread"), instance_ids, st.integers(1, 40)),
    st.tuples(
        st.just("watch_all"),
        st.sampled_from(["zero", "past", "head", "future"]),
        st.floats(0, 1),
        st.integers(0, len(FILTERS) - 1),
        st.booleans(),  # activate at once
        st.one_of(st.none(), st.integers(1, 15)),  # the sink blocks after this many messages
    ),
    st.tuples(st.just("watch_instance"), instance_ids, st.booleans(), st.floats(0, 1)),
    st.tuples(st.just("block"), st.integers(0, 20)),
    st.tuples(st.just("unblock"), st.integers(0, 20), st.booleans()),
    st.tuples(
        st.just("activate"),
    ),
    st.tuples(st.just("pause"), st.integers(0, 3)),
)


class Sink:
    """Records offsets; with ``burst``, turns unwritable after every ``burst`` messages."""

    def __init__(self, burst: int | None = None) -> None:
        self.offsets: list[int] = []
        self.is_writable = True
        self.burst = burst

    def send_event(self, message: dict[str, Any]) -> None:
        assert message["type"] == "event", message
        self.offsets.append(message["wal_offset"])
        if self.burst and len(self.offsets) % self.burst == 0:
            self.is_writable = False

    def writable(self) -> bool:
        return self.is_writable


@dataclass
class Watcher:
    sink: Sink
    subscription_id: str
    from_offset: int
    filters: dict[str, list[str]] = field(default_factory=dict)
    instance_id: str | None = None
    active: bool = False

    def wants(self, entry: dict[str, Any]) -> bool:
        if self.instance_id is not None:
            return bool(entry["instance_id"] == self.instance_id)
        lists = {
            "machines": INSTANCES[entry["instance_id"]],
            "from_states": entry["from_state"],
            "to_states": entry["to_state"],
            "events": entry["event"],
        }
        return all(not self.filters.get(k) or v in self.filters[k] for k, v in lists.items())


@dataclass
class Run:
    db: Database
    hub: Hub
    written: list[int] = field(default_factory=list)  # offsets, in no particular order
    watchers: list[Watcher] = field(default_factory=list)
    threads: list[threading.Thread] = field(default_factory=list)
    counter: int = 0


def apply_many(run: Run, instance_id: str, count: int) -> None:
    for _ in range(count):
        run.counter += 1
        event = "GO" if run.counter % 3 else "STAY"
        result = run.db.apply_event(instance_id, event, payload={"n": run.counter})
        run.written.append(result.wal_offset)


def pick_from(run: Run, where: str, fraction: float) -> int:
    head = run.db.wal_stats().latest_offset
    if where == "zero":
        return 0
    if where == "head":
        return head
    if where == "future":
        return head + 1 + int(fraction * 10)
    known = sorted(run.written) or [head]
    return known[min(len(known) - 1, int(fraction * len(known)))]


def watch_all(
    run: Run, where: str, fraction: float, which: int, now: bool, burst: int | None
) -> None:
    sink = Sink(burst)
    from_offset = pick_from(run, where, fraction)
    filters = FILTERS[which]
    args = {"machines": [], "from_states": [], "to_states": [], "events": [], **filters}
    result = run.hub.watch_all(sink, from_offset=from_offset, **args)
    watcher = Watcher(sink, result["subscription_id"], from_offset, filters)
    run.watchers.append(watcher)
    if now:
        activate(run, watcher)


def watch_instance(run: Run, instance_id: str, replay: bool, fraction: float) -> None:
    sink = Sink()
    from_offset = pick_from(run, "past", fraction) if replay else None
    result = run.hub.watch_instance(sink, instance_id, from_offset=from_offset)
    start = from_offset if from_offset is not None else result["current_wal_offset"] + 1
    watcher = Watcher(sink, result["subscription_id"], start, instance_id=instance_id)
    run.watchers.append(watcher)
    activate(run, watcher)


def activate(run: Run, watcher: Watcher) -> None:
    watcher.active = True
    run.hub.activate(watcher.sink, watcher.subscription_id)


def set_writable(run: Run, index: int, writable: bool, tell: bool = True) -> None:
    if run.watchers:
        sink = run.watchers[index % len(run.watchers)].sink
        sink.is_writable = writable
        if writable and tell:
            run.hub.resume(sink)


def start_thread(run: Run, instance_id: str, count: int) -> None:
    thread = threading.Thread(target=apply_many, args=(run, instance_id, count))
    thread.start()
    run.threads.append(thread)


def activate_next(run: Run) -> None:
    pending = [w for w in run.watchers if not w.active]
    if pending:
        activate(run, pending[0])


ACTIONS: dict[str, Any] = {
    "write": apply_many,
    "thread": start_thread,
    "watch_all": watch_all,
    "watch_instance": watch_instance,
    "block": lambda run, index: set_writable(run, index, False),
    "unblock": lambda run, index, tell: set_writable(run, index, True, tell),
    "activate": activate_next,
    "pause": lambda run, count: None,
}


async def perform(run: Run, step: tuple[Any, ...]) -> None:
    kind, args = step[0], step[1:]
    ACTIONS[kind](run, *args)
    for _ in range(args[0] if kind == "pause" else 1):
        await asyncio.sleep(0)


async def finish(run: Run) -> None:
    while any(t.is_alive() for t in run.threads):
        await asyncio.sleep(0.002)
    for watcher in run.watchers:
        watcher.sink.burst = None
        watcher.sink.is_writable = True
        run.hub.resume(watcher.sink)
        if not watcher.active:
            activate(run, watcher)
    deadline = time.monotonic() + 20
    quiet = 0
    while quiet < 3:
        await asyncio.sleep(0.002)
        stats = run.hub.stats()
        quiet = quiet + 1 if stats["catching_up"] == 0 and not run.db.core._unpublished else 0
        assert time.monotonic() < deadline, stats


def check(run: Run) -> None:
    log = [r for r in run.db.wal_read(0).records if r.entry["type"] == "apply_event"]
    assert sorted(r.offset for r in log) == sorted(run.written)
    for watcher in run.watchers:
        expected = [
            r.offset for r in log if r.offset >= watcher.from_offset and watcher.wants(r.entry)
        ]
        assert watcher.sink.offsets == expected, (watcher.from_offset, watcher.filters)


def open_db(path: str | None) -> Database:
    db = Database(path)
    db.put_machine("m1", 1, MACHINE)
    db.put_machine("m2", 1, MACHINE)
    for instance_id, machine in INSTANCES.items():
        db.create_instance(machine, 1, instance_id=instance_id)
    return db


def scenario(path: str | None, plan: list[tuple[Any, ...]], buffer: int, chunk: int) -> None:
    db = open_db(path)

    async def main() -> None:
        hub = Hub(
            db.core, asyncio.get_running_loop(), buffer_events=buffer, read_chunk_records=chunk
        )
        run = Run(db, hub)
        apply_many(run, "x0", 3)
        try:
            for step in plan:
                await perform(run, step)
            await finish(run)
            check(run)
        finally:
            for thread in run.threads:
                thread.join()
            await hub.close()

    try:
        asyncio.run(main())
    finally:
        db.close()


PLANS = st.lists(steps, min_size=1, max_size=30)


@pytest.mark.slow
@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(PLANS, st.sampled_from([0, 1, 4, 64]), st.sampled_from([1, 3, 50]))
def test_in_memory_subscribers_get_exactly_their_events(
    plan: list[tuple[Any, ...]], buffer: int, chunk: int
) -> None:
    scenario(None, plan, buffer, chunk)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(PLANS, st.sampled_from([0, 2, 64]), st.sampled_from([2, 50]))
def test_durable_subscribers_get_exactly_their_events(
    plan: list[tuple[Any, ...]], buffer: int, chunk: int
) -> None:
    with tempfile.TemporaryDirectory(prefix="pyrstmdb-subs-") as path:
        scenario(path, plan, buffer, chunk)
