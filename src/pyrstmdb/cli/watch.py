"""``watch-instance`` and ``watch-all``: stream events until Ctrl+C.

Each event is printed to stdout as one compact JSON object and flushed, so a
pipe sees it at once; status lines and warnings go to stderr::

    stderr  Watching all events (sub_id: S, wal_offset: N)
    stderr  Press Ctrl+C to stop...
    stdout  {"type":"event","subscription_id":...}
    ...     (SIGINT)
    stderr  Stopping watch...                  → UNWATCH, exit 0

A server that closes the connection ends the stream with ``Connection
closed`` (exit 0). A failed WATCH raises its ``RstmdbError`` to the caller.

SIGINT stops a watch even when the process started with SIGINT ignored, as a
command run with ``&`` from a script (no job control) or by some supervisors
does: Python installs its ``KeyboardInterrupt`` handler only for a SIGINT that
is not ignored at start-up, so without :func:`interruptible` such a watch
would wait for the next event forever.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Callable, Iterator

from pyrstmdb.cli import render
from pyrstmdb.cli.context import Context
from pyrstmdb.client import ClientConnectionError, Notice, Subscription

#: Seconds Ctrl+C waits for the server to confirm the UNWATCH before exiting anyway.
UNWATCH_TIMEOUT = 2.0


@contextlib.contextmanager
def interruptible() -> Iterator[None]:
    """SIGINT raises ``KeyboardInterrupt`` inside the block, whatever the inherited
    disposition; the previous one is restored after it."""
    if threading.current_thread() is not threading.main_thread():
        yield  # only the main thread receives Python's signal handlers
        return
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        yield
    finally:
        if previous is not None:
            signal.signal(signal.SIGINT, previous)


def _status(ctx: Context, text: str) -> None:
    print(text, file=ctx.err, flush=True)


def _on_notice(ctx: Context) -> Callable[[Notice], None]:
    def report(notice: Notice) -> None:
        _status(ctx, render.notice_line(notice, ctx.style))

    return report


def _stream(ctx: Context, sub: Subscription) -> None:
    try:
        _status(ctx, ctx.style.dim("Press Ctrl+C to stop..."))
        for event in sub:
            print(render.event_line(event), file=ctx.out, flush=True)
    except KeyboardInterrupt:
        _status(ctx, ctx.style.dim("Stopping watch..."))
        with contextlib.suppress(ClientConnectionError, OSError):
            # A safety net: Ctrl+C must not hang on a slow or stuck server, and closing
            # the connection (next) drops the subscription anyway.
            sub.unwatch(timeout=UNWATCH_TIMEOUT)
        return
    except ClientConnectionError:
        pass
    _status(ctx, ctx.style.red("Connection closed"))


def watch_instance(ctx: Context) -> None:
    with interruptible():
        _watch_instance(ctx)


def watch_all(ctx: Context) -> None:
    with interruptible():
        _watch_all(ctx)


def _watch_instance(ctx: Context) -> None:
    ns = ctx.ns
    sub = ctx.client.watch_instance(
        ns.id, include_ctx=not ns.no_ctx, from_offset=ns.from_offset, on_notice=_on_notice(ctx)
    )
    result = sub.result
    s = ctx.style
    _status(
        ctx,
        f"{s.green('Watching')} instance {s.cyan(ns.id)} (sub_id: {sub.subscription_id}, "
        f"state: {s.yellow(str(result.get('current_state')))}, "
        f"wal_offset: {result.get('current_wal_offset')})",
    )
    _stream(ctx, sub)


def _watch_all(ctx: Context) -> None:
    ns = ctx.ns
    sub = ctx.client.watch_all(
        machines=ns.machines,
        from_states=ns.from_states,
        to_states=ns.to_states,
        events=ns.events,
        include_ctx=not ns.no_ctx,
        from_offset=ns.from_offset,
        on_notice=_on_notice(ctx),
    )
    _status(
        ctx,
        f"{ctx.style.green('Watching')} all events (sub_id: {sub.subscription_id}, "
        f"wal_offset: {sub.result.get('wal_offset')})",
    )
    _stream(ctx, sub)
