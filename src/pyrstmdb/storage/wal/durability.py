"""Who is waiting for which record to become durable, and telling them.

:class:`Durability` owns ``durable_end`` (every record at a lower offset is on disk), the
waiters registered with ``when_durable``/``wait_durable``, the durability listeners and the
failed state entered when an fsync under ``every_write`` fails. Callbacks run outside its
lock; an exception raised by one is logged and does not affect the others.

``wait`` raises ``WalIoError`` when the fsync that should have covered the record failed,
or when the timeout expires.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import threading
from collections.abc import Callable

from pyrstmdb.errors import WalIoError

Callback = Callable[[WalIoError | None], None]
Listener = Callable[[int], None]

log = logging.getLogger("pyrstmdb.wal")


class Durability:
    """Durable end, waiters ordered by offset, listeners and the failed state."""

    def __init__(self, end: int, sequence: int, waits_for_disk: bool) -> None:
        self._lock = threading.Lock()
        self.end = end
        self.sequence = sequence
        self.error: WalIoError | None = None
        self._waits = waits_for_disk
        self._heap: list[tuple[int, int, Callback]] = []
        self._tiebreak = itertools.count()
        self._listeners: tuple[Listener, ...] = ()

    def when(self, offset: int, callback: Callback) -> None:
        """Call ``callback(None)`` once ``offset`` is durable, ``callback(error)`` on failure."""
        with self._lock:
            if offset < self.end or not self._waits:
                outcome = None
            elif self.error is not None:
                outcome = self.error
            else:
                heapq.heappush(self._heap, (offset, next(self._tiebreak), callback))
                return
        _run(callback, outcome)

    def wait(self, offset: int, timeout: float | None) -> None:
        """Block until ``offset`` is durable; raise ``WalIoError`` if it cannot become so."""
        if offset < self.end or not self._waits:
            return
        gate = _Gate()
        gate.lock.acquire()
        self.when(offset, gate)
        if not gate.lock.acquire(timeout=-1 if timeout is None else timeout):
            raise WalIoError(f"timed out after {timeout} s waiting for WAL offset {offset}")
        error = gate.error
        if error is not None:
            raise WalIoError(error.message) from error

    def add_listener(self, listener: Listener) -> None:
        with self._lock:
            self._listeners = (*self._listeners, listener)

    def advance(self, end: int, sequence: int) -> None:
        """Declare every record below ``end`` durable and tell listeners, then waiters.

        Does nothing in the failed state: what lies past the end will be discarded.
        """
        with self._lock:
            if end <= self.end or self.error is not None:
                return
            self.end = end
            self.sequence = sequence
            heap = self._heap
            due: list[Callback] = []
            while heap and heap[0][0] < end:
                due.append(heapq.heappop(heap)[2])
            listeners = self._listeners
        for listener in listeners:
            try:
                listener(end)
            except Exception:
                log.exception("WAL durability listener failed")
        for callback in due:
            _run(callback, None)

    def fail(self, error: WalIoError, *, enter_failed_state: bool) -> None:
        """Fail every pending waiter; optionally refuse later waits until cleared."""
        notify(self.detach(error, enter_failed_state=enter_failed_state), error)

    def detach(self, error: WalIoError, *, enter_failed_state: bool) -> list[Callback]:
        """Remove and return every pending waiter (to be told of ``error`` by the caller)."""
        with self._lock:
            if enter_failed_state:
                self.error = error
            due = [entry[2] for entry in self._heap]
            self._heap.clear()
        return due

    def rewind(self, end: int, sequence: int) -> None:
        """Move the durable end back after records were discarded; fail their waiters."""
        with self._lock:
            self.end = min(self.end, end)
            self.sequence = min(self.sequence, sequence)
            kept = [entry for entry in self._heap if entry[0] < end]
            due = [entry[2] for entry in self._heap if entry[0] >= end]
            heapq.heapify(kept)
            self._heap = kept
        error = WalIoError(f"WAL records from offset {end} were discarded")
        for callback in due:
            _run(callback, error)

    def settle(self, end: int) -> None:
        """After a cut-back: nothing lies between the durable end and ``end`` (the start of
        an emptied segment), so move the end there, telling nobody (no record became
        durable)."""
        with self._lock:
            self.end = max(self.end, end)

    def clear_failure(self) -> None:
        with self._lock:
            self.error = None

    @property
    def pending(self) -> int:
        """How many waiters are registered."""
        return len(self._heap)


class _Gate:
    """A blocked waiter: calling it records the outcome and lets the waiter go."""

    __slots__ = ("error", "lock")

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.error: WalIoError | None = None

    def __call__(self, error: WalIoError | None) -> None:
        self.error = error
        self.lock.release()


def notify(callbacks: list[Callback], outcome: WalIoError | None) -> None:
    """Call each callback with the outcome; a failing callback is logged."""
    for callback in callbacks:
        _run(callback, outcome)


def _run(callback: Callback, outcome: WalIoError | None) -> None:
    try:
        callback(outcome)
    except Exception:
        log.exception("WAL durability callback failed")
