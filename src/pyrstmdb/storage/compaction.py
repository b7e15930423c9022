"""Automatic compaction: when to run it (pure) and the background thread.

A run is due when compaction is enabled, at least ``min_interval_secs`` passed
since the last run (opening counts as a run) and either at least
``events_threshold`` records were appended since then (⚑W5: really counted) or
the WAL's real size on disk reached ``size_threshold_mb`` (⚑W4). A threshold
of 0 disables that trigger. A run is ``COMPACT`` with ``force_snapshot``:
checkpoint the whole state, then delete the segments it covers. While a backup
is in progress a due run is deferred to the next check.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from pyrstmdb.config import CompactionConfig
from pyrstmdb.errors import RstmdbError
from pyrstmdb.results import CompactResult, WalStatsResult
from pyrstmdb.storage.backup import CompactionPaused

log = logging.getLogger("pyrstmdb.compaction")

MIB = 1024 * 1024


@dataclass(frozen=True, slots=True)
class Progress:
    """What happened since the last run."""

    seconds_since_run: float
    records_since_run: int
    wal_bytes: int


def is_due(policy: CompactionConfig, progress: Progress) -> bool:
    if not policy.automatic or progress.seconds_since_run < policy.min_interval_secs:
        return False
    by_events = (
        policy.events_threshold > 0 and progress.records_since_run >= policy.events_threshold
    )
    by_size = policy.size_threshold_mb > 0 and progress.wal_bytes >= policy.size_threshold_mb * MIB
    return by_events or by_size


class AutoCompactor:
    """Checks every ``check_secs`` whether a run is due, in a daemon thread."""

    def __init__(
        self,
        policy: CompactionConfig,
        stats: Callable[[], WalStatsResult],
        compact: Callable[[], CompactResult],
        *,
        check_secs: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._policy = policy
        self._stats = stats
        self._compact = compact
        self._check_secs = check_secs
        self._clock = clock
        self._stop = threading.Event()
        self._last_run = clock()
        self._records_at_last_run = stats().entry_count
        self.runs = 0
        self._thread = threading.Thread(target=self._loop, name="pyrstmdb-compactor", daemon=True)

    def start(self) -> None:
        if self._policy.automatic:
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()

    def _loop(self) -> None:
        while not self._stop.wait(self._check_secs):
            try:
                self.check()
            except RstmdbError as err:
                log.error("automatic compaction failed: %s", err)
            except OSError as err:
                log.error("automatic compaction failed: %s", err)

    def check(self) -> bool:
        """Run a compaction if one is due; returns whether it ran."""
        stats = self._stats()
        progress = Progress(
            self._clock() - self._last_run,
            stats.entry_count - self._records_at_last_run,
            stats.total_size_bytes,
        )
        if not is_due(self._policy, progress):
            return False
        try:
            result = self._compact()
        except CompactionPaused:
            log.info("automatic compaction deferred: a backup is in progress")
            return False
        self._last_run = self._clock()
        self._records_at_last_run = self._stats().entry_count
        self.runs += 1
        log.info(
            "automatic compaction: %d snapshots, %d segments deleted, %d bytes reclaimed",
            result.snapshots_created,
            result.segments_deleted,
            result.bytes_reclaimed,
        )
        return True
