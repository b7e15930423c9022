"""Letting an event loop run the ``every_write`` fsync rounds instead of the flusher thread.

Why: the flusher thread needs the interpreter (the GIL) to start and to finish every
round, and it only gets it when the event loop goes idle; so while a round's
``fdatasync`` runs, the loop has nothing to do, and the next group of writes cannot be
processed until the round has finished. When the loop runs the rounds itself and a
separate process does the ``fdatasync`` (``fsync_helper``), the loop keeps processing
writes while the disk works: rounds overlap with the work that fills the next one.

:class:`RoundOffload` is the log's side. One owner at a time ``attach``es with a ``kick``
callback; from then on a write that leaves unsynced data calls ``kick()`` once (it is
re-armed when the owner next looks), and the flusher thread leaves data rounds alone (it
still syncs finished segments and the directory after a rotation). The owner calls
``begin(submit)`` to start a round: the queued bytes are written and ``submit(fd)`` hands
the active segment to whoever syncs it; the owner reports the outcome with ``end``.
``detach`` hands the rounds back to the flusher thread. A blocking wait for durability made
on the owner's own thread runs a round there (``Wal.wait_durable``) instead of waiting for
rounds that thread would have to run.

Correctness does not depend on the owner: any round (flusher, ``sync``) still covers
everything written before it, a durable end only moves forward, and a failed offloaded
sync fails its writes exactly like a failed flusher round.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from . import syncing
from .state import LogState

Round = syncing.Round


class RoundOffload:
    """The log's side of loop-driven fsync rounds (``every_write`` only)."""

    def __init__(self, state: LogState) -> None:
        self._state = state

    def attach(self, kick: Callable[[], bool]) -> bool:
        """Take over data rounds; ``False`` when another owner has them or the log is closed."""
        state = self._state
        with state.lock:
            if state.kick is not None or state.closed or not state.policy.waits_for_disk:
                return False
            state.kick = kick
            state.kick_armed = False
            state.kick_thread = threading.get_ident()
        return True

    def arm(self) -> bool:
        """Let the next write kick again; ``True`` when unsynced data already waits."""
        state = self._state
        with state.lock:
            state.kick_armed = True
            return state.head > state.durability.end  # queued bytes moved the head too

    def begin(self, submit: Callable[[int], None]) -> Round | None:
        """Start a round (see ``syncing.begin_offloaded``); raises ``WalIoError`` if it failed."""
        return syncing.begin_offloaded(self._state, submit)

    def end(self, plan: Round, failure: OSError | None) -> None:
        """Report the outcome of the round's sync; raises ``WalIoError`` for a failure."""
        syncing.end_offloaded(self._state, plan, failure)

    def detach(self, kick: Callable[[], bool]) -> None:
        """Give data rounds back to the flusher thread (which is woken to take them)."""
        state = self._state
        with state.lock:
            if state.kick != kick:  # (bound methods are equal, not identical)
                return
            state.kick = None
            state.kick_armed = False
            state.flusher_wake_at = None
            state.wake.notify()
