"""The background fsync thread: when to sync under each policy, and the loop that does it.

:func:`due` is the pure decision (is an fsync round needed now, and if not, how long
until one may be). :class:`Flusher` is the thread that waits on the log's condition
variable and runs rounds. Under ``every_write`` a round takes everything written so far,
so all writers waiting meanwhile share one ``fdatasync`` (group commit).

The thread never raises: a failed round is reported by the round itself (waiters failed,
failure handler called, or a warning logged and a retry scheduled).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import NamedTuple

from pyrstmdb.errors import WalIoError
from pyrstmdb.storage.policy import FsyncPolicy

log = logging.getLogger("pyrstmdb.wal")

#: Pause after an unexpected error in the loop, so a persistent bug cannot spin.
_ERROR_PAUSE = 0.05
#: How long closing the log waits for the flusher to finish its round.
STOP_TIMEOUT = 2.0


class Backlog(NamedTuple):
    """What is waiting to be synced, as seen under the log's lock (built a few times per
    round, hence a tuple)."""

    unsynced_records: int  # records written after the durable end
    unsynced: bool  # bytes written after the durable end
    chores: bool  # finished segments or the directory need an fsync
    dirty_since: float | None  # monotonic time of the oldest unsynced write
    failed: bool  # an fsync failed under every_write; nothing more until recovery
    retry_at: float | None  # after a failed background fsync: not before this time
    last_round: tuple[int, float, float] = (0, 0.0, 0.0)  # records, seconds, finished at


def due(policy: FsyncPolicy, backlog: Backlog, now: float) -> tuple[bool, float | None]:
    """Whether a round should run now; if not, the longest sensible wait (None: until woken)."""
    if backlog.failed:
        return False, None
    if backlog.retry_at is not None and now < backlog.retry_at:
        return False, backlog.retry_at - now
    if backlog.chores:
        return True, None
    kind = policy.kind
    if kind == "every_write":
        if not backlog.unsynced:
            return False, None
        return _gathered(backlog, now)
    if kind == "every_n":
        return backlog.unsynced_records >= max(1, policy.amount), None
    if kind == "every_ms" and backlog.dirty_since is not None:
        deadline = backlog.dirty_since + max(1, policy.amount) / 1000.0
        if now >= deadline:
            return True, None
        return False, deadline - now
    return False, None


#: Longest pause for more writers to join a round (group commit).
GATHER_LIMIT = 0.002


def _gathered(backlog: Backlog, now: float) -> tuple[bool, float | None]:
    """Under every_write: sync now, or pause briefly while more writers are on their way.

    After a round that carried many records, the writers it woke usually come back
    together; starting the next round on the first of them would split them over two
    fsyncs. So while fewer records wait than the last round carried, the flusher waits
    up to half the last round's duration (at most ``GATHER_LIMIT``). A lone writer never
    waits: its last round carried one record.
    """
    records, seconds, finished = backlog.last_round
    if records <= 1 or backlog.unsynced_records >= records:
        return True, None
    deadline = finished + min(seconds / 2, GATHER_LIMIT)
    if now >= deadline:
        return True, None
    return False, deadline - now


def wake_threshold(policy: FsyncPolicy, backlog: Backlog, timeout: float | None) -> int:
    """How many unsynced records should cut a sleep short (writers notify only then).

    During a gathering pause (every_write, timed) that is as many as the last round
    carried: waking on each write would only make the thread look and sleep again.
    """
    if policy.kind == "every_write" and timeout is not None and not backlog.failed:
        return max(1, backlog.last_round[0])
    return 1


class Flusher:
    """A daemon thread running fsync rounds whenever :func:`due` says so."""

    def __init__(
        self,
        policy: FsyncPolicy,
        wake: threading.Condition,
        backlog: Callable[[], Backlog],
        sync_round: Callable[[], None],
        set_wake_at: Callable[[int | None], None],
    ) -> None:
        self._policy = policy
        self._wake = wake
        self._backlog = backlog
        self._sync_round = sync_round
        #: Publishes, under the condition's lock, how many unsynced records should wake the
        #: sleeping thread (1: any write); ``None`` while it works (a running round
        #: re-checks before sleeping) or once a writer has woken it.
        self._set_wake_at = set_wake_at
        self._stopping = False
        self._worker = threading.Thread(target=self._run, name="pyrstmdb-wal-flusher", daemon=True)

    def start(self) -> None:
        self._worker.start()

    def stop(self, timeout: float = STOP_TIMEOUT) -> None:
        """Ask the thread to finish its current round and exit; wait for it a while.

        The wait is bounded: a failure handler blocked on a lock its owner holds while
        closing the log must not hang the close.
        """
        with self._wake:
            self._stopping = True
            self._wake.notify_all()
        if self._worker.is_alive() and self._worker is not threading.current_thread():
            self._worker.join(timeout)
            if self._worker.is_alive():
                log.warning("WAL flusher still busy after %.1f s; closing anyway", timeout)

    def _run(self) -> None:
        while self._await_work():
            try:
                self._sync_round()
            except WalIoError:
                pass  # the round has already failed its waiters or scheduled a retry
            except Exception:
                log.exception("unexpected error in the WAL flusher")
                time.sleep(_ERROR_PAUSE)

    def _await_work(self) -> bool:
        with self._wake:
            while not self._stopping:
                backlog = self._backlog()
                ready, timeout = due(self._policy, backlog, time.monotonic())
                if ready:
                    return True
                self._set_wake_at(wake_threshold(self._policy, backlog, timeout))
                self._wake.wait(timeout)
                self._set_wake_at(None)
            return False
