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
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable

from pyrstmdb.cli import render
from pyrstmdb.cli.context import Context
from pyrstmdb.client import ClientConnectionError, Notice, Subscription

#: Seconds Ctrl+C waits for the server to confirm the UNWATCH before exiting anyway.
UNWATCH_TIMEOUT = 2.0


def _status(ctx: Context, text: str) -> None:
    print(text, file=ctx.err, flush=True)


def _on_notice(ctx: Context) -> Callable[[Notice], None]:
    def report(notice: Notice) -> None:
        _status(ctx, render.notice_line(notice, ctx.style))

    return report


def _stream(ctx: Context, sub: Subscription) -> None:
    _status(ctx, ctx.style.dim("Press Ctrl+C to stop..."))
    try:
        for event in sub:
            print(render.event_line(event), file=ctx.out, flush=True)
    except KeyboardInterrupt:
        _status(ctx, ctx.style.dim("Stopping watch..."))
        with contextlib.suppress(ClientConnectionError, OSError):
            # Ctrl+C must not hang on a slow server: closing the connection drops the
            # subscription anyway.
            sub.unwatch(timeout=UNWATCH_TIMEOUT)
        return
    except ClientConnectionError:
        pass
    _status(ctx, ctx.style.red("Connection closed"))


def watch_instance(ctx: Context) -> None:
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


def watch_all(ctx: Context) -> None:
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
