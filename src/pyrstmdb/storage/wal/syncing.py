"""Fsync rounds: take everything written so far, make it durable, then tell the waiters.

A round snapshots (under the state lock) the head, the bytes queued by deferred appends,
the finished segments awaiting their fsync and whether the directory changed; then,
holding only the round lock, it writes the queued bytes and fsyncs the finished segments,
the directory and the active segment, in that order, so a record is
never declared durable before the segments and directory entries it depends on. Finally
it advances the durable end, which wakes every waiter the round covered. Concurrent
writers therefore share one ``fdatasync`` (group commit).

A failed round raises ``WalIoError``. Under ``every_write`` it puts the log in the failed
state (in which no round runs and the durable end does not move: the failed write may have
left its bytes unwritten, so nothing up to the head may be declared durable before the log
is cut back), notes a lack of space for ``appender``'s space gate, calls the failure
handler (flusher rounds only, outside the round lock, so the handler may take its owner's
locks and recover the log at once) and only then fails every pending waiter, so a writer
that hears of the failure sees its owner already recovered.
Under the other policies it logs a warning and schedules a retry.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

from pyrstmdb.errors import WalIoError

from .appender import SPACE_PROBE_INTERVAL
from .durability import Callback, notify
from .fileio import NO_SPACE_ERRORS, write_fully
from .flusher import Backlog
from .state import LogState

log = logging.getLogger("pyrstmdb.wal")

#: Wait before retrying a failed background fsync under the lax policies.
RETRY_DELAY: Final = 0.5


@dataclass(slots=True)
class Round:
    """One round's snapshot: what to sync and what it will make durable."""

    target: int
    sequence: int
    active_fd: int | None
    finished: list[tuple[int, int]]
    directory: bool
    dirty_since: float | None
    writes: list[tuple[int, bytearray]]
    rewinds: int = 0  # the log's cut-back count when planned


def backlog(state: LogState) -> Backlog:
    """What awaits an fsync; called by the flusher with the state lock held."""
    durability = state.durability
    return Backlog(
        unsynced_records=state.next_sequence - 1 - durability.sequence,
        unsynced=state.head > durability.end and state.kick is None,  # else a loop syncs
        chores=bool(state.unsynced_fds) or state.dir_dirty,
        dirty_since=state.dirty_since,
        failed=durability.error is not None or state.closed,
        retry_at=state.retry_at,
        last_round=state.last_round,
    )


def sync_round(state: LogState, *, background: bool, force: bool) -> None:
    """Run one round; ``force`` fsyncs the active segment even with nothing new."""
    with state.round_lock:
        plan = _plan(state, force)
        if plan is None:
            return
        started = time.monotonic()
        try:
            _run(state, plan)
        except OSError as exc:
            error, waiters = _failed(state, plan, exc)
        else:
            carried = plan.sequence - state.durability.sequence
            _finish(state, plan)
            finished = time.monotonic()
            state.last_round = (carried, finished - started, finished)
            return
    _report(state, error, waiters, background=background)
    raise error


def _report(
    state: LogState, error: WalIoError, waiters: list[Callback], *, background: bool
) -> None:
    """Run the failure handler, then fail the waiters (outside the round lock).

    The handler may take its owner's locks and recover the log at once; the waiters hear
    of the failure only after it has run.
    """
    handler = state.failure_handler
    if background and state.policy.waits_for_disk and handler is not None:
        try:
            handler(error)
        except Exception:
            log.exception("WAL failure handler failed")
    notify(waiters, error)


# -- rounds whose fdatasync runs elsewhere (see ``offload``) ----------------------------


def begin_offloaded(state: LogState, submit: Callable[[int], None]) -> Round | None:
    """Start a round whose final ``fdatasync`` is done by ``submit(fd)``'s receiver.

    Under the round lock: write the queued bytes, fsync finished segments and the
    directory here (rare: after a rotation), then hand the active segment's descriptor to
    ``submit`` before anyone can close it. Returns the round to pass to
    :func:`end_offloaded` once its sync has an outcome, or ``None`` when nothing was
    pending or the round already ended here. A failure here fails the round at once
    (waiters, failure handler) and raises ``WalIoError``.
    """
    with state.round_lock:
        if state.durability.error is not None:
            return None  # failed: nothing is declared durable until the log is recovered
        plan = _plan(state, force=False)
        if plan is None:
            return None
        try:
            _run_chores(state, plan)
            if plan.active_fd is not None:
                submit(plan.active_fd)
        except OSError as exc:
            error, waiters = _failed(state, plan, exc)
        else:
            if plan.active_fd is not None:
                return plan
            _finish(state, plan)
            return None
    _report(state, error, waiters, background=True)
    raise error


def end_offloaded(state: LogState, plan: Round, failure: OSError | None) -> None:
    """Finish a round begun by :func:`begin_offloaded` with its sync's outcome.

    Raises ``WalIoError`` after failing the round's writes when ``failure`` is given.
    """
    with state.round_lock:
        if state.closed:
            return  # closing synced (or discarded) everything itself
        if failure is None:
            state.counters.fsyncs += 1
            if plan.rewinds == state.rewinds:  # else the log was cut back meanwhile: what
                _finish(state, plan)  # survived was durable already, the rest is gone
            return
        error, waiters = _failed(state, plan, failure)
    _report(state, error, waiters, background=True)
    raise error


def fsync_directory(state: LogState) -> None:
    """Fsync the log's directory now (callers hold the round lock)."""
    state.io.fsync_dir(state.directory)
    state.counters.fsyncs += 1


def _plan(state: LogState, force: bool) -> Round | None:
    with state.lock:
        if state.closed or state.durability.error is not None:
            # Failed: the failed round's bytes may never have reached the file, so nothing
            # up to the head may be declared durable until the log has been cut back.
            return None
        target = state.head
        unsynced = target > state.durability.end
        plan = Round(
            target=target,
            sequence=state.next_sequence - 1,
            active_fd=state.fd if unsynced or force else None,
            finished=list(state.unsynced_fds),
            directory=state.dir_dirty,
            dirty_since=state.dirty_since,
            writes=state.pending,
            rewinds=state.rewinds,
        )
        if plan.active_fd is None and not plan.finished and not plan.directory:
            return None
        state.dir_dirty = False
        state.dirty_since = None
        state.pending = []
        return plan


def _run(state: LogState, plan: Round) -> None:
    _run_chores(state, plan)
    if plan.active_fd is not None:
        state.io.fdatasync(plan.active_fd)
        state.counters.fsyncs += 1


def _run_chores(state: LogState, plan: Round) -> None:
    """Everything a round does before the active segment's fdatasync."""
    io = state.io
    counters = state.counters
    for fd, data in plan.writes:
        write_fully(io, fd, data)
    for _segment_id, fd in plan.finished:
        io.fdatasync(fd)
        counters.fsyncs += 1
    if plan.directory:
        io.fsync_dir(state.directory)
        counters.fsyncs += 1


def _finish(state: LogState, plan: Round) -> None:
    closing: list[int] = []
    with state.lock:
        for item in plan.finished:
            # A round running beside an offloaded one may have synced and closed it already.
            if item in state.unsynced_fds:
                state.unsynced_fds.remove(item)
                closing.append(item[1])
        state.retry_at = None
    for fd in closing:
        state.close_quietly(fd)
    state.durability.advance(plan.target, plan.sequence)


def _failed(state: LogState, plan: Round, exc: OSError) -> tuple[WalIoError, list[Callback]]:
    """Undo the round's claims; enter the failed state (every_write) or schedule a retry.

    Returns the error and the waiters to fail once the failure handler has run.
    """
    error = WalIoError(f"WAL fsync failed: {exc}")
    error.__cause__ = exc
    with state.lock:
        state.dir_dirty = state.dir_dirty or plan.directory
        if state.dirty_since is None:
            state.dirty_since = plan.dirty_since
    if state.policy.waits_for_disk:
        if exc.errno in NO_SPACE_ERRORS and state.space_probe_at is None:
            log.error(
                "WAL: no space left on the device (%s); writes are refused until space is freed",
                exc,
            )
            state.space_probe_at = time.monotonic() + SPACE_PROBE_INTERVAL
        return error, state.durability.detach(error, enter_failed_state=True)
    log.warning("WAL background fsync failed, will retry: %s", exc)
    state.retry_at = time.monotonic() + RETRY_DELAY
    return error, []
