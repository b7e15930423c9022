"""Errors of the PostgreSQL log and of joining a cluster.

``Fenced`` and ``OutcomeUnknown`` are retryable ``WAL_IO_ERROR``s whose
``details`` carry the reason CLUSTER §2 names. The start-up errors are plain
exceptions whose text is the one line ``rstmdb: …`` prints.
"""

from __future__ import annotations

from pyrstmdb.errors import WalIoError


class Fenced(WalIoError):
    """Another node took the partition over (the epoch moved): nothing was written."""

    def __init__(self, partition: int, epoch: int) -> None:
        super().__init__(
            f"partition {partition}: fenced, epoch {epoch} is no longer the owner's",
            {"reason": "fenced", "partition": partition},
        )
        self.partition = partition
        self.epoch = epoch


class OutcomeUnknown(WalIoError):
    """The connection was lost during COMMIT: the round may or may not be in the log."""

    def __init__(self, partition: int, cause: BaseException) -> None:
        super().__init__(
            f"partition {partition}: commit outcome unknown ({type(cause).__name__}: {cause})",
            {"reason": "outcome_unknown", "partition": partition},
        )
        self.partition = partition


class HeadMoved(WalIoError):
    """The head is not where this node thought, under its own epoch: a round whose outcome
    was unknown committed after all. Nothing was written; the head must be re-read."""

    def __init__(self, partition: int, expected: int) -> None:
        super().__init__(
            f"partition {partition}: the log head moved past sequence {expected} "
            "(an earlier round with an unknown outcome committed); nothing written",
            {"reason": "postgres", "partition": partition},
        )
        self.partition = partition


class ClusterStartupError(Exception):
    """A node cannot join the cluster; the message is one line for the operator."""


class SchemaTooNew(ClusterStartupError):
    def __init__(self, found: int, supported: int) -> None:
        super().__init__(
            f"the cluster schema is version {found}, this node supports up to version "
            f"{supported}; upgrade this node"
        )
        self.found = found
        self.supported = supported


class PartitionCountMismatch(ClusterStartupError):
    def __init__(self, existing: int, configured: int) -> None:
        super().__init__(
            f"the cluster has {existing} partitions but this node is configured with "
            f"cluster.partitions = {configured}; partitions are fixed when a cluster is created"
        )
        self.existing = existing
        self.configured = configured
