"""The mutable state of an open log, shared by the modules that act on it.

:class:`LogState` holds the segment list, the active segment's descriptor, the finished
segments still awaiting their fsync, positions, counters, flags and the two locks:

* ``lock`` guards every field here and is held only briefly, never across a system call
  that may block on the disk; ``wake`` (a condition on the same lock) wakes the flusher.
* ``round_lock`` serialises fsync rounds and every operation that closes descriptors or
  deletes files, so an fsync never meets a closed or reused descriptor. It is reentrant:
  durability callbacks and listeners run while a round holds it, and may call back into
  the log from that thread.

* ``write_lock`` serialises the operations that move the head (append, reset, recovery
  after a failure), so a recovery started from the flusher thread cannot interleave with
  an append even if the caller forgot to serialise them.

Lock order: ``write_lock``, then ``round_lock``, then ``lock``. Raises nothing.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field

from pyrstmdb.errors import WalIoError
from pyrstmdb.storage.policy import FsyncPolicy

from .durability import Durability
from .fileio import FileIO
from .layout import POSITION_BITS
from .segment import Segment

log = logging.getLogger("pyrstmdb.wal")


@dataclass(slots=True)
class Counters:
    """I/O counters since the log was opened (STORAGE §7)."""

    writes: int = 0
    bytes_written: int = 0
    fsyncs: int = 0
    reads: int = 0
    bytes_read: int = 0


@dataclass(eq=False, slots=True)
class LogState:
    """Everything an open log knows and changes; see the module docstring for locking."""

    directory: str
    io: FileIO
    policy: FsyncPolicy
    segment_size: int
    segments: list[Segment]
    fd: int
    durability: Durability
    next_sequence: int
    head: int = 0
    unsynced_fds: list[tuple[int, int]] = field(default_factory=list)  # (segment id, fd)
    dir_dirty: bool = False
    dirty_since: float | None = None  # monotonic time of the oldest unsynced write
    retry_at: float | None = None  # after a failed background fsync (lax policies)
    broken_tail: bool = False  # bytes of a failed write could not be removed yet
    fresh_next: bool = False  # after discarding records: start a new segment, reuse no offset
    #: Set when a round failed for lack of space (every_write): until a probe write finds
    #: room again, appends are refused at once, handing out no offset; the next probe
    #: runs no earlier than this monotonic time. ``None`` while space is not known short.
    space_probe_at: float | None = None
    #: Under every_write appends only queue their bytes here, (fd, bytes) in log order; the
    #: next fsync round writes them just before its fdatasync (see ``appender``).
    pending: list[tuple[int, bytearray]] = field(default_factory=list)
    defer_writes: bool = False
    last_round: tuple[int, float, float] = (0, 0.0, 0.0)  # records, seconds, finished at
    closed: bool = False
    #: While the flusher sleeps: how many unsynced records should wake it; ``None`` while
    #: it works or once woken (writers notify it only then, and only once per sleep).
    flusher_wake_at: int | None = None
    failure_handler: Callable[[WalIoError], None] | None = None
    #: While an event loop runs the every_write rounds (``offload``): called (lock held,
    #: at most once until re-armed) when a write leaves unsynced data; returns False when
    #: it can no longer run rounds, which hands them back to the flusher.
    kick: Callable[[], bool] | None = None
    kick_armed: bool = False
    rewinds: int = 0  # how many times the head was moved back (records discarded)
    kick_thread: int = 0  # the thread that runs those rounds (its own blocking waits sync)
    counters: Counters = field(default_factory=Counters)
    lock: threading.Lock = field(default_factory=threading.Lock)
    round_lock: threading.RLock = field(default_factory=threading.RLock)
    write_lock: threading.RLock = field(default_factory=threading.RLock)
    wake: threading.Condition = field(init=False)

    def __post_init__(self) -> None:
        self.wake = threading.Condition(self.lock)
        self.head = self.active_head()
        self.defer_writes = self.policy.waits_for_disk

    def set_flusher_wake_at(self, records: int | None) -> None:
        """Called by the flusher (holding ``lock``) as it goes to sleep and wakes up."""
        self.flusher_wake_at = records

    def queue(self, fd: int, data: bytes) -> None:
        """Queue bytes for ``fd`` behind everything queued before (lock held)."""
        pending = self.pending
        if pending and pending[-1][0] == fd:
            pending[-1][1].extend(data)
        else:
            pending.append((fd, bytearray(data)))

    @property
    def active(self) -> Segment:
        return self.segments[-1]

    def active_head(self) -> int:
        active = self.segments[-1]
        return (active.segment_id << POSITION_BITS) | active.size

    def take_unsynced_fd(self, segment_id: int) -> int | None:
        """Remove and return the descriptor kept open for a finished segment, if any."""
        for item in self.unsynced_fds:
            if item[0] == segment_id:
                self.unsynced_fds.remove(item)
                return item[1]
        return None

    def close_quietly(self, fd: int) -> None:
        quietly(self.io.close, fd)


def quietly(call: Callable[..., object], *args: object) -> None:
    """Run a clean-up call whose failure can only be logged."""
    try:
        call(*args)
    except OSError as exc:
        name = getattr(call, "__name__", repr(call))
        log.debug("WAL clean-up call %s%r failed: %s", name, args, exc)
