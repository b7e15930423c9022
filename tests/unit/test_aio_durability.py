"""DurabilityWaiter: futures resolved from another thread, one loop wake-up per batch."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from typing import Any

import pytest

from pyrstmdb.aio import DurabilityWaiter
from pyrstmdb.errors import WalIoError

Callback = Callable[[WalIoError | None], None]


class FakeStore:
    visible_end = 100


class FakeCore:
    def __init__(self) -> None:
        self.store = FakeStore()
        self.callbacks: list[tuple[int, Callback]] = []

    def when_visible(self, offset: int, callback: Callback) -> None:
        self.callbacks.append((offset, callback))


def test_visible_offsets_need_no_future() -> None:
    async def main() -> None:
        core = FakeCore()
        waiter = DurabilityWaiter(core, asyncio.get_running_loop())  # type: ignore[arg-type]
        assert waiter.wait(-1) is None
        assert waiter.wait(99) is None
        assert core.callbacks == []

    asyncio.run(main())


def test_batch_of_completions_wakes_the_loop_once() -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        wakeups: list[Any] = []
        original = loop.call_soon_threadsafe

        def counting(callback: Any, *args: Any, **kwargs: Any) -> Any:
            wakeups.append(callback)
            return original(callback, *args, **kwargs)

        loop.call_soon_threadsafe = counting  # type: ignore[method-assign]
        core = FakeCore()
        waiter = DurabilityWaiter(core, loop)  # type: ignore[arg-type]
        futures = [waiter.wait(100 + n) for n in range(200)]
        assert all(f is not None for f in futures)

        def fsync_thread() -> None:
            for n, (_, callback) in enumerate(core.callbacks):
                callback(WalIoError("disk gone") if n == 7 else None)

        thread = threading.Thread(target=fsync_thread)
        thread.start()
        thread.join()
        results = await asyncio.gather(*[f for f in futures if f], return_exceptions=True)
        assert len(wakeups) == 1
        assert isinstance(results[7], WalIoError)
        assert [r for n, r in enumerate(results) if n != 7] == [None] * 199

    asyncio.run(main())


def test_completion_after_loop_closed_is_ignored() -> None:
    loop = asyncio.new_event_loop()
    core = FakeCore()
    waiter = DurabilityWaiter(core, loop)  # type: ignore[arg-type]
    future = waiter.wait(500)
    assert future is not None
    loop.close()
    core.callbacks[0][1](None)  # must not raise
    with pytest.raises(asyncio.InvalidStateError):
        future.result()
