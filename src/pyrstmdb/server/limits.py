"""Server-wide limits on what clients can make the server hold, and how refusals are logged.

* :class:`BufferBudget`: the bytes all connections together may hold in
  unfinished incoming messages (``network.frame_buffer_mb``). A connection
  reserves the size its unfinished message announces (a frame header states it
  before the payload arrives); a reservation that would go over the budget is
  refused and the connection is closed, so memory is bounded before it is spent.
* :data:`PRE_AUTH_MAX_MESSAGE`: while a connection must still authenticate, a
  message may not announce more than this (HELLO and AUTH are small).
* :class:`RefusalLog`: one warning for the first refused connection, then at
  most one line per interval saying how many more were refused.

No I/O besides logging; raises nothing.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

PRE_AUTH_MAX_MESSAGE = 64 * 1024
"""Largest message (frame or JSON line, in bytes) accepted before a required AUTH."""

REFUSAL_LOG_INTERVAL = 10.0
"""Seconds between two warnings about refused connections."""


class BufferBudget:
    """Bytes reserved by unfinished incoming messages, across all connections."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.held = 0

    def change(self, old: int, new: int) -> bool:
        """Move one connection's reservation from ``old`` to ``new`` bytes.

        A growth that would take the total over the limit is refused (``False``) and
        the reservation stays at ``old``; shrinking always succeeds.
        """
        if new > old and self.held - old + new > self.limit:
            return False
        self.held += new - old
        return True


class RefusalLog:
    """Warns about refused connections without one line per refusal."""

    def __init__(
        self,
        logger: logging.Logger,
        interval: float = REFUSAL_LOG_INTERVAL,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._log = logger
        self._interval = interval
        self._clock = clock
        self._last: float | None = None  # when the last line was written
        self._unreported = 0

    def refused(self, peer: str, limit: int) -> None:
        now = self._clock()
        if self._last is None or now - self._last >= self._interval:
            self.flush(limit, now)
            self._log.warning(
                "connection from %s refused: limit of %d connections reached", peer, limit
            )
            self._last = now
        else:
            self._unreported += 1

    def flush(self, limit: int, now: float | None = None) -> None:
        """Report the refusals not yet logged once the interval has passed (call it often)."""
        if not self._unreported:
            return
        now = self._clock() if now is None else now
        assert self._last is not None
        if now - self._last < self._interval:
            return
        self._log.warning(
            "%d more connections refused in the last %.0f s: limit of %d connections reached",
            self._unreported,
            now - self._last,
            limit,
        )
        self._unreported = 0
        self._last = now
