"""DurabilityWaiter: futures kept on the loop, resolved with one wake-up per visibility change."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from typing import Any

from pyrstmdb.aio import RESOLVE_CHUNK, DurabilityWaiter
from pyrstmdb.errors import WalIoError


class FakeCore:
    """What the waiter reads from ``Core``: the visible end, roll-backs and watchers."""

    def __init__(self, visible_end: int = 100) -> None:
        self.visible_end = visible_end
        self.rollbacks = 0
        self.ranges: list[tuple[int, int, WalIoError]] = []
        self.watchers: list[Callable[[int, int], None]] = []
        self.waits_for_disk = True

    def discarded(self, offset: int) -> WalIoError | None:
        for start, end, err in self.ranges:
            if start <= offset < end:
                return err
        return None

    def add_visibility_watcher(self, fn: Callable[[int, int], None]) -> None:
        self.watchers.append(fn)

    def remove_visibility_watcher(self, fn: Callable[[int, int], None]) -> None:
        self.watchers.remove(fn)

    def fsync_offload(self) -> None:
        return None  # rounds stay with "the fsync thread" (this test's advance calls)

    def advance(self, end: int) -> None:
        """What the fsync thread does after a round."""
        self.visible_end = end
        for fn in self.watchers:
            fn(end, self.rollbacks)

    def roll_back(self, head: int, err: WalIoError) -> None:
        """What a failed round does: the records past the visible end are discarded."""
        self.ranges.append((self.visible_end, head, err))
        self.rollbacks += 1
        for fn in self.watchers:
            fn(self.visible_end, self.rollbacks)


def _counting_wakeups(loop: asyncio.AbstractEventLoop) -> list[Any]:
    wakeups: list[Any] = []
    original = loop.call_soon_threadsafe

    def counting(callback: Any, *args: Any, **kwargs: Any) -> Any:
        wakeups.append(callback)
        return original(callback, *args, **kwargs)

    loop.call_soon_threadsafe = counting  # type: ignore[method-assign]
    return wakeups


def test_visible_offsets_need_no_future() -> None:
    async def main() -> None:
        core = FakeCore()
        waiter = DurabilityWaiter(core, asyncio.get_running_loop())  # type: ignore[arg-type]
        assert waiter.wait(-1) is None
        assert waiter.wait(99) is None
        assert waiter.wait(100) is not None
        waiter.close()

    asyncio.run(main())


def test_one_round_wakes_the_loop_once_and_resolves_only_what_it_covers() -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        wakeups = _counting_wakeups(loop)
        core = FakeCore()
        waiter = DurabilityWaiter(core, loop)  # type: ignore[arg-type]
        futures = [waiter.wait(100 + n) for n in range(200)]
        assert all(f is not None for f in futures)
        thread = threading.Thread(target=core.advance, args=(250,))
        thread.start()
        thread.join()
        await asyncio.sleep(0)
        assert len(wakeups) == 1
        # Resolved in chunks, one loop callback each, without further thread wake-ups.
        assert sum(1 for f in futures if f is not None and f.done()) == RESOLVE_CHUNK
        for _ in range(150 // RESOLVE_CHUNK + 1):
            await asyncio.sleep(0)
        assert len(wakeups) == 1
        done = [f for f in futures if f is not None and f.done()]
        assert len(done) == 150  # offsets 100..249
        core.advance(400)
        results = await asyncio.gather(*[f for f in futures if f])
        assert results == [None] * 200
        assert len(wakeups) == 2
        waiter.close()

    asyncio.run(main())


def test_roll_back_fails_only_the_discarded_records() -> None:
    async def main() -> None:
        core = FakeCore()
        waiter = DurabilityWaiter(core, asyncio.get_running_loop())  # type: ignore[arg-type]
        kept = waiter.wait(100)
        lost = [waiter.wait(110), waiter.wait(120)]
        core.advance(105)
        error = WalIoError("disk gone")
        core.roll_back(130, error)
        assert kept is not None and await kept is None
        for future in lost:
            assert future is not None
            try:
                await future
            except WalIoError as err:
                assert err is error
            else:
                raise AssertionError("a discarded record was reported durable")
        # A wait that starts late for a discarded record fails at once, even after the
        # visible end has moved past it (the log never reuses its offset).
        core.advance(1 << 40)
        late = waiter.wait(120)
        assert late is not None and late.done() and late.exception() is error
        waiter.close()

    asyncio.run(main())


def test_close_cancels_pending_and_stops_listening() -> None:
    async def main() -> None:
        core = FakeCore()
        waiter = DurabilityWaiter(core, asyncio.get_running_loop())  # type: ignore[arg-type]
        future = waiter.wait(500)
        waiter.close()
        assert core.watchers == []
        assert future is not None and future.cancelled()

    asyncio.run(main())


def test_change_after_loop_closed_is_ignored() -> None:
    loop = asyncio.new_event_loop()
    core = FakeCore()
    waiter = DurabilityWaiter(core, loop)  # type: ignore[arg-type]
    future = waiter.wait(500)
    assert future is not None
    loop.close()
    core.advance(600)  # must not raise
    assert not future.done()


def test_waits_registered_out_of_log_order_resolve_by_offset() -> None:
    async def main() -> None:
        core = FakeCore()
        waiter = DurabilityWaiter(core, asyncio.get_running_loop())  # type: ignore[arg-type]
        futures = {offset: waiter.wait(offset) for offset in (300, 100, 200, 250, 150)}
        core.advance(220)
        await asyncio.sleep(0)
        done = sorted(offset for offset, f in futures.items() if f is not None and f.done())
        assert done == [100, 150, 200]
        core.advance(301)
        await asyncio.sleep(0)
        assert all(f is not None and f.done() for f in futures.values())
        waiter.close()

    asyncio.run(main())
