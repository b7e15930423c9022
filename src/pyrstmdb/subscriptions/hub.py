"""The subscription hub: committed applied events to the connections watching them.

::

    fsync thread ── commit listener ── call_soon_threadsafe (one per batch)
                                                   │
    event loop:  _on_batch ─▶ live subscriptions (send, or buffer ≤ buffer_events)
                     │
                     └─▶ published_end advances
    worker:      read_chunk(next, published_end) ─▶ catching-up subscriptions

``published_end``: every record with a smaller offset has been handed to the
hub. A subscription with ``from_offset`` starts *catching up* at it: its past
comes from the log (``[next, published_end)``, in chunks, in a worker thread)
while later records keep arriving live; when a read reaches the published end
the subscription turns live on the loop, between two batches, so nothing is
missed or sent twice. A live subscription whose sink stays unwritable until
its buffer is full drops the buffer, remembers the first offset it owes and
catches up the same way once the sink drains (``resume``, or any batch that
finds the sink writable). Reads starting at the same offset are shared.

If the history a subscription owes was compacted away it gets a
``HISTORY_LOST`` notice naming the range and continues after it; a WATCH with
``from_offset`` below the oldest record says so in its result instead.

All methods run on the event loop thread. ``watch_instance`` raises
``InstanceNotFound`` (also for a deleted instance); nothing else raises.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from typing import Any

from pyrstmdb.core import Core, Published
from pyrstmdb.engine.records import EventApplied
from pyrstmdb.storage.store import FIRST_OFFSET

from .filters import (
    AllFilter,
    Filter,
    InstanceFilter,
    Target,
    event_message,
    history_lost_notice,
    resolve,
)
from .history import Chunk, HistoryReader
from .registry import Registry
from .subscription import Sink, Subscription

log = logging.getLogger("pyrstmdb.subscriptions")

RETRY_SECONDS = 0.05  # history moved during every attempt of a read
FAILED_READ_RETRY_SECONDS = 1.0  # the store failed to read


class Hub:
    """Subscriptions of every connection over one ``Core``.

    Create it before the server accepts writes: a record written before the hub
    registers its commit listener and made durable only afterwards may be missed
    by live subscribers (subscribers catching up read it from the log).
    """

    def __init__(
        self,
        core: Core,
        loop: asyncio.AbstractEventLoop,
        *,
        buffer_events: int = 1024,
        read_chunk_records: int = 1024,
    ) -> None:
        if buffer_events < 0 or read_chunk_records < 1:
            raise ValueError("buffer_events must be >= 0 and read_chunk_records >= 1")
        self._core = core
        self._loop = loop
        self._buffer_limit = buffer_events
        self._subs = Registry()
        self._idle: set[Subscription] = set()  # catching up, no read in flight
        self._reader = HistoryReader(core, loop, read_chunk_records, self._on_chunk)
        self._sent = {"instance": 0, "all": 0}
        self._fell_behind = 0
        self._lost_notices = 0
        self._closed = False
        # Everything from this offset on reaches the listener; older records come from the log.
        self._published_end = core.add_commit_listener(self._on_commit)

    # -- from the write path ---------------------------------------------------------
    def _on_commit(self, batch: list[Published]) -> None:
        """Commit listener (any thread): hand the batch to the loop with one call."""
        with contextlib.suppress(RuntimeError):  # a closed loop has nobody left to deliver to
            self._loop.call_soon_threadsafe(self._on_batch, batch)

    def _on_batch(self, batch: list[Published]) -> None:
        floor = self._published_end
        if self._closed or not batch or batch[-1][0] < floor:
            return
        self._published_end = batch[-1][0] + 1
        if self._subs.empty:  # nobody to deliver to (later subscriptions read the log)
            return
        instances = self._core.state.instances
        targets = [
            target
            for offset, record in batch
            if offset >= floor
            and type(record) is EventApplied
            and (target := resolve(instances, offset, record)) is not None
        ]
        if targets:
            self._dispatch(targets)
        for sub in list(self._idle):
            self._catch_up(sub)

    def _dispatch(self, targets: list[Target]) -> None:
        for sub in self._subs.watching_all():
            if not sub.live:
                continue
            if sub.filter.everything:
                self._offer(sub, targets)
            else:
                matches = sub.filter.matches
                matching = [t for t in targets if matches(t)]
                if matching:
                    self._offer(sub, matching)
        if self._subs.any_instance_watchers:
            per_instance: dict[str, list[Target]] = {}
            for target in targets:
                per_instance.setdefault(target.record.instance_id, []).append(target)
            for instance_id, events in per_instance.items():
                for sub in self._subs.watching(instance_id):
                    if sub.live:
                        self._offer(sub, events)

    # -- live delivery -----------------------------------------------------------------
    def _offer(self, sub: Subscription, targets: list[Target]) -> None:
        if sub.buffer:
            self._flush(sub)
        for target in targets:
            if target.offset < sub.next or sub.closed:
                continue
            if not sub.buffer and sub.ready():
                self._send(sub, target)
            elif len(sub.buffer) < self._buffer_limit:
                sub.buffer.append(target)
            else:
                self._fall_behind(sub, sub.buffer[0].offset if sub.buffer else target.offset)
                return

    def _flush(self, sub: Subscription) -> None:
        buffer = sub.buffer
        while buffer and sub.ready():
            self._send(sub, buffer.popleft())

    def _fall_behind(self, sub: Subscription, owed: int) -> None:
        """Switch to catching up from ``owed``: the buffer is dropped, the log has it all."""
        sub.buffer.clear()
        sub.live = False
        sub.next = owed
        self._fell_behind += 1
        self._idle.add(sub)
        log.debug("subscription %s fell behind at offset %d; it will catch up", sub.id, owed)

    def _send(self, sub: Subscription, target: Target) -> None:
        try:
            sub.sink.send_event(event_message(sub.id, target, sub.include_ctx))
        except Exception:
            self._broken(sub.sink)
            return
        self._sent[sub.kind] += 1

    def _emit(self, sub: Subscription, message: dict[str, Any]) -> None:
        try:
            sub.sink.send_event(message)
        except Exception:
            self._broken(sub.sink)

    def _broken(self, sink: Sink) -> None:
        log.exception("sending to a subscriber failed; dropping its subscriptions")
        self.drop(sink)

    # -- catching up from the log ------------------------------------------------------
    def _catch_up(self, sub: Subscription) -> None:
        """Start the next log read for ``sub``, or turn it live once it has caught up."""
        if sub.live or sub.reading or sub.closed or self._closed:
            self._idle.discard(sub)
        elif sub.next >= self._published_end:
            sub.live = True
            self._idle.discard(sub)
        elif not sub.ready():
            self._idle.add(sub)
        else:
            self._idle.discard(sub)
            self._reader.request(sub, self._published_end)

    def _on_chunk(self, sub: Subscription, chunk: Chunk | None) -> None:
        if sub.closed or self._closed:
            return
        if chunk is None or not chunk.settled:
            self._idle.add(sub)
            delay = FAILED_READ_RETRY_SECONDS if chunk is None else RETRY_SECONDS
            self._loop.call_later(delay, self._catch_up, sub)
            return
        if chunk.history_start > sub.next:
            self._history_lost(sub, min(chunk.history_start, chunk.end))
        for target in chunk.events:
            if target.offset < sub.next or not sub.filter.matches(target):
                continue
            if not sub.ready():
                sub.next = target.offset
                break
            self._send(sub, target)
        else:
            sub.next = max(sub.next, chunk.end)
        self._catch_up(sub)

    def _history_lost(self, sub: Subscription, resumed_at: int) -> None:
        log.warning(
            "subscription %s: history %d..%d was compacted before delivery",
            sub.id,
            sub.next,
            resumed_at,
        )
        self._lost_notices += 1
        self._emit(sub, history_lost_notice(sub.id, sub.next, resumed_at))
        sub.next = resumed_at

    # -- requests ------------------------------------------------------------------------
    def watch_instance(
        self,
        sink: Sink,
        instance_id: str,
        include_ctx: bool = True,
        from_offset: int | None = None,
    ) -> dict[str, Any]:
        """Subscribe to one instance; without ``from_offset``, events after its current state."""
        instance = self._core.live_instance(instance_id)
        flt = InstanceFilter(instance_id)
        after = instance.last_wal_offset + 1
        sub, history = self._add(sink, flt, "instance", include_ctx, from_offset, after)
        result: dict[str, Any] = {
            "subscription_id": sub.id,
            "instance_id": instance_id,
            "current_state": instance.state,
            "current_wal_offset": instance.last_wal_offset,
        }
        result.update(history)
        return result

    def watch_all(
        self,
        sink: Sink,
        machines: list[str],
        from_states: list[str],
        to_states: list[str],
        events: list[str],
        include_ctx: bool = True,
        from_offset: int | None = None,
    ) -> dict[str, Any]:
        """Subscribe to every applied event passing the filter lists."""
        flt = AllFilter.of(machines, from_states, to_states, events)
        sub, history = self._add(sink, flt, "all", include_ctx, from_offset, 0)
        result: dict[str, Any] = {"subscription_id": sub.id, "wal_offset": self._core.store.head}
        result.update(history)
        return result

    def _add(
        self,
        sink: Sink,
        flt: Filter,
        kind: str,
        include_ctx: bool,
        from_offset: int | None,
        after: int,
    ) -> tuple[Subscription, dict[str, Any]]:
        history: dict[str, Any] = {}
        if from_offset is None:
            start = max(self._published_end, after)
        else:
            oldest = self._core.store.history_start
            start = max(from_offset, oldest)
            truncated = from_offset < oldest and oldest > FIRST_OFFSET
            history = {"history_start": oldest, "history_truncated": truncated}
        live = start >= self._published_end
        sub = Subscription(f"sub-{uuid.uuid4()}", sink, flt, kind, include_ctx, start, live)
        self._subs.add(sub)
        return sub, history

    def activate(self, sink: Sink, subscription_id: str) -> None:
        """The WATCH response has been written: delivery may start."""
        sub = self._subs.owned(sink, subscription_id)
        if sub is not None and not sub.active:
            sub.active = True
            self._continue(sub)

    def _continue(self, sub: Subscription) -> None:
        if sub.live:
            self._flush(sub)
        else:
            self._catch_up(sub)

    def unwatch(self, sink: Sink, subscription_id: str) -> bool:
        """Remove one of ``sink``'s subscriptions; nothing is sent for it afterwards."""
        sub = self._subs.owned(sink, subscription_id)
        if sub is None:
            return False
        self._remove(sub)
        return True

    def _remove(self, sub: Subscription) -> None:
        self._subs.remove(sub)
        self._idle.discard(sub)

    def drop(self, sink: Sink) -> None:
        """Remove every subscription of ``sink`` (disconnect, BYE, idle timeout, shutdown)."""
        for sub in self._subs.of_sink(sink):
            self._remove(sub)

    def resume(self, sink: Sink) -> None:
        """``sink`` drained below its low-water mark: continue delivering to it."""
        for sub in self._subs.of_sink(sink):
            if not sub.closed:
                self._continue(sub)

    async def close(self) -> None:
        """Stop listening, drop every subscription and wait for reads in flight."""
        if self._closed:
            return
        self._closed = True
        self._core.remove_commit_listener(self._on_commit)
        for sink in self._subs.sinks():
            self.drop(sink)
        await self._reader.close()

    def stats(self) -> dict[str, int]:
        """Active subscriptions per kind, events sent per kind, and catch-up figures."""
        subs = self._subs.all()
        instance, watch_all = self._subs.counts()
        return {
            "instance": instance,
            "all": watch_all,
            "events_instance": self._sent["instance"],
            "events_all": self._sent["all"],
            "catching_up": sum(1 for sub in subs if not sub.live),
            "buffered": sum(len(sub.buffer) for sub in subs),
            "buffer_max": max((len(sub.buffer) for sub in subs), default=0),
            "reads_in_flight": self._reader.in_flight,
            "fell_behind": self._fell_behind,
            "history_lost": self._lost_notices,
            "published_end": self._published_end,
        }
