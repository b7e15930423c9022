"""A partition lease as this node sees it (pure; the clock is passed in).

PostgreSQL decides when a lease expires for everyone else (its clock,
``lease_expires``). This node trusts its own lease only until ``lease_ms``
minus a safety margin has passed on its *monotonic* clock since it **sent** the
acquisition or renewal that succeeded: the server extended the lease no
earlier than that, so whatever the delays, this node stops before anyone else
can take over.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Lease:
    partition: int
    epoch: int
    #: Monotonic time (seconds) after which this node must stop serving the partition.
    valid_until: float

    @classmethod
    def granted(
        cls, partition: int, epoch: int, sent_at: float, lease_ms: int, margin_ms: int
    ) -> Lease:
        """The lease of a renewal or acquisition sent at ``sent_at`` that succeeded."""
        return cls(partition, epoch, sent_at + (lease_ms - margin_ms) / 1000)

    def valid(self, now: float) -> bool:
        return now < self.valid_until

    def ms_left(self, now: float) -> int:
        return max(0, int((self.valid_until - now) * 1000))


def safety_margin_ms(lease_ms: int) -> int:
    """The part of a lease this node never uses: a tenth, at least 50 ms (clock rate drift)."""
    return max(50, lease_ms // 10)
