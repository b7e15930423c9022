"""``every_write`` fsync rounds run by an asyncio loop, the ``fdatasync`` in a helper process.

Why (see ``storage/wal/offload.py``): with the flusher thread, a round can only start and
finish when the loop goes idle, so the loop waits for every fsync. Here the loop starts a
round itself (the queued bytes are written, the segment's descriptor goes to the helper),
keeps processing the next writes while the helper syncs, and ends the round when the
answer arrives on a socket it watches: at most one round is in flight, and the next one
takes everything written meanwhile.

:class:`LoopRounds` lives on one loop. Writes from any thread kick it (once per round);
blocked waiters in other threads are served by the same rounds. If the helper process
dies, the round in flight fails like a failed fsync (its writes get ``WAL_IO_ERROR`` and
are rolled back, since nothing is known about that sync) and a new helper serves the next
round; if no helper can be started, the flusher thread takes the rounds back. ``close``
hands them back as well; the flusher then covers a round still in flight.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import os
import threading
from collections.abc import Callable

from pyrstmdb.errors import WalIoError
from pyrstmdb.storage.wal.fsync_helper import FsyncHelper, HelperGone
from pyrstmdb.storage.wal.offload import Round, RoundOffload

log = logging.getLogger("pyrstmdb.wal")

HelperFactory = Callable[[], FsyncHelper]


class LoopRounds:
    """Runs the log's ``every_write`` rounds from the event loop it was created on."""

    def __init__(
        self,
        offload: RoundOffload,
        loop: asyncio.AbstractEventLoop,
        helper_factory: HelperFactory = FsyncHelper,
    ) -> None:
        """Use :meth:`start`, which also attaches to the log."""
        self._offload = offload
        self._loop = loop
        self._factory = helper_factory
        self._loop_thread = threading.get_ident()
        self._helper: FsyncHelper | None = None
        self._in_flight: Round | None = None
        self._closed = False
        self._kick_fn = self._kick  # one bound method: attach and detach compare it

    @classmethod
    def start(
        cls,
        offload: RoundOffload,
        loop: asyncio.AbstractEventLoop,
        helper_factory: HelperFactory = FsyncHelper,
    ) -> LoopRounds | None:
        """Attach to the log and start a helper (call on the loop's thread).

        ``None`` when no helper can be started or the log already has an owner: the
        flusher thread then keeps running the rounds.
        """
        rounds = cls(offload, loop, helper_factory)
        if not rounds._ensure_helper():
            return None
        if not offload.attach(rounds._kick_fn):
            rounds._stop_helper()
            return None
        loop.call_soon(rounds._pump)  # writes made before attaching
        return rounds

    @property
    def helper_pid(self) -> int | None:
        return None if self._helper is None else self._helper.pid

    def close(self) -> None:
        """Hand the rounds back to the flusher thread and stop the helper. Idempotent."""
        if self._closed:
            return
        self._closed = True
        self._offload.detach(self._kick_fn)
        self._stop_helper()

    # -- from the write path ------------------------------------------------------------
    def _kick(self) -> bool:
        """A write left unsynced data (any thread, the log's lock held): schedule a look."""
        if self._closed:
            return False
        if threading.get_ident() == self._loop_thread:
            self._loop.call_soon(self._pump)
            return True
        try:
            self._loop.call_soon_threadsafe(self._pump)
        except RuntimeError:  # the loop is closed: the flusher thread takes over
            return False
        return True

    # -- on the loop ------------------------------------------------------------------------
    def _pump(self) -> None:
        """Start a round unless one is in flight (its end looks again) or nothing waits."""
        if self._closed or self._in_flight is not None:
            return
        if not self._offload.arm():
            return  # the next write kicks
        if not self._ensure_helper():
            return
        # A failed round has told its writers; the next write starts another.
        with contextlib.suppress(WalIoError):
            self._in_flight = self._offload.begin(self._submit)

    def _submit(self, fd: int) -> None:
        helper = self._helper
        if helper is None:
            raise HelperGone(errno.EPIPE, "no fsync helper")
        try:
            helper.submit(fd)
        except HelperGone:
            self._stop_helper()  # nothing is in flight: a new helper can take this round
            if not self._ensure_helper() or self._helper is None:
                raise
            self._helper.submit(fd)

    def _on_answer(self) -> None:
        helper = self._helper
        if helper is None:
            return
        try:
            answers = helper.answers()
        except HelperGone as gone:
            log.error("WAL fsync helper (pid %d) is gone: %s", helper.pid, gone)
            self._stop_helper()
            self._end(gone)
            self._pump()
            return
        if not answers:
            return
        code = answers[0]
        self._end(None if code == 0 else OSError(code, os.strerror(code)))
        self._pump()

    def _end(self, failure: OSError | None) -> None:
        plan, self._in_flight = self._in_flight, None
        if plan is None:
            return
        with contextlib.suppress(WalIoError):  # a failed round has told its writers
            self._offload.end(plan, failure)

    # -- the helper process ------------------------------------------------------------------
    def _ensure_helper(self) -> bool:
        if self._helper is not None:
            return True
        if self._closed:
            return False
        try:
            helper = self._factory()
        except OSError as exc:
            log.warning("cannot start the WAL fsync helper (%s); the flusher thread syncs", exc)
            self.close()
            return False
        self._loop.add_reader(helper.fileno(), self._on_answer)
        self._helper = helper
        return True

    def _stop_helper(self) -> None:
        helper, self._helper = self._helper, None
        if helper is None:
            return
        self._loop.remove_reader(helper.fileno())
        helper.close()
