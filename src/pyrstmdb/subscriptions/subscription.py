"""One subscription's delivery state, and the ``Sink`` a connection provides.

A subscription is a cursor over the log, in one of two modes::

    live ──(buffer full while the sink is not writable)──▶ catching up
     ▲                                                          │
     └────────────(log read reaches the published end)──────────┘

* **live**: every matching event below the hub's published end has been sent
  or waits in ``buffer`` (at most ``buffer_events`` of them); new events are
  sent at once while the sink is writable and the subscription is active.
  ``next`` is the lowest offset it accepts.
* **catching up**: every matching event below ``next`` has been sent and none
  above; the rest comes from the log, one chunk at a time, while the sink is
  writable. ``buffer`` is empty, so memory stays bounded however far behind
  the subscriber is.

Owns no I/O and raises nothing.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Any, Protocol

from .filters import Filter, Target


class Sink(Protocol):
    """Where a connection's subscription messages go (one per connection)."""

    def send_event(self, message: dict[str, Any]) -> None:
        """Encode and write ``message`` now."""

    def writable(self) -> bool:
        """True while the transport's buffer is below its high-water mark."""


@dataclass(eq=False, slots=True)
class Subscription:
    id: str
    sink: Sink
    filter: Filter
    kind: str  # "instance" or "all"
    include_ctx: bool
    next: int
    live: bool
    active: bool = False
    closed: bool = False
    reading: bool = False
    buffer: deque[Target] = field(default_factory=deque)

    def ready(self) -> bool:
        """Allowed to send now: activated, not removed, and the sink has room."""
        return self.active and not self.closed and self.sink.writable()
