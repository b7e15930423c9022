"""Operation -> handler table, exceptions -> error responses, per-operation metrics.

:meth:`Dispatcher.dispatch` runs one decoded message and returns a
:class:`Slot`: the response message once it is known, the wire mode it must be
written in, and an optional action for after it is written. A slot whose
handler returned a pending :class:`~pyrstmdb.server.handlers.base.Answer` is
filled when the answer's future completes, and ``ready()`` is then called so
the connection can write what is now at the head of its queue.

Every ``RstmdbError`` becomes an error response with the request's id; any
other exception becomes ``INTERNAL_ERROR`` and its traceback goes to the server
log only. Authorization (:meth:`Session.authorize`) is checked before the
handler runs. Nothing here raises.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any

from pyrstmdb.errors import InternalError, RstmdbError
from pyrstmdb.protocol import (
    InvalidMessage,
    Operation,
    Request,
    WireMode,
    error_response,
    invalid_message_response,
    ok_response,
)
from pyrstmdb.server.handlers import backup, instances, machines, storage, system, watch
from pyrstmdb.server.handlers.base import Answer, Context, Handler
from pyrstmdb.server.metrics import ServerMetrics

log = logging.getLogger("pyrstmdb.server.dispatch")

HANDLERS: dict[Operation, Handler] = {
    **system.HANDLERS,
    **machines.HANDLERS,
    **instances.HANDLERS,
    **storage.HANDLERS,
    **watch.HANDLERS,
    **backup.HANDLERS,
}
assert set(HANDLERS) == set(Operation), "every operation needs a handler"

Message = dict[str, Any]


class Slot:
    """One response, in its place in the connection's output order."""

    __slots__ = ("after_write", "message", "mode")

    def __init__(self, mode: WireMode) -> None:
        self.message: Message | None = None
        self.mode: WireMode = mode
        self.after_write: Callable[[], None] | None = None


def _unexpected(request: Request, exc: BaseException) -> RstmdbError:
    log.error("request %s (%s) failed unexpectedly", request.id, request.op.value, exc_info=exc)
    return InternalError(f"internal error while handling {request.op.value}")


class Dispatcher:
    """Runs requests of every connection of one server."""

    def __init__(self, metrics: ServerMetrics | None = None) -> None:
        self._metrics = metrics
        self._debug = log.isEnabledFor(logging.DEBUG)

    def dispatch(
        self, ctx: Context, message: Request | InvalidMessage, ready: Callable[[], None]
    ) -> Slot:
        if type(message) is InvalidMessage:
            return self._invalid(ctx, message)
        assert type(message) is Request
        started = time.perf_counter()
        if self._metrics is not None:
            self._metrics.requested(message.op, message.params)
        slot = Slot(ctx.session.wire_mode)
        try:
            ctx.session.authorize(message.op)
            reply = HANDLERS[message.op](ctx, message.params)
        except RstmdbError as err:
            self._fail(slot, message, err, started)
        except Exception as exc:
            self._fail(slot, message, _unexpected(message, exc), started)
        else:
            slot.mode = ctx.session.wire_mode  # a HELLO applies to its own response
            if type(reply) is dict:
                self._succeed(slot, message, reply, started)
            else:
                assert isinstance(reply, Answer)
                self._defer(slot, message, reply, started, ready)
        return slot

    def _invalid(self, ctx: Context, message: InvalidMessage) -> Slot:
        slot = Slot(ctx.session.wire_mode)
        slot.message = invalid_message_response(message)
        if self._metrics is not None:
            self._metrics.failed("BAD_REQUEST")
        if self._debug:
            log.debug("invalid request (id %s): %s", message.id, message.reason)
        return slot

    def _succeed(self, slot: Slot, request: Request, result: Message, started: float) -> None:
        slot.message = ok_response(request.id, result)
        self._done(request, started, "OK")

    def _fail(self, slot: Slot, request: Request, err: RstmdbError, started: float) -> None:
        slot.message = error_response(request.id, err.to_dict())
        slot.after_write = None
        if self._metrics is not None:
            self._metrics.failed(err.code.value)
        self._done(request, started, err.code.value)

    def _done(self, request: Request, started: float, outcome: str) -> None:
        if self._metrics is not None:
            self._metrics.observe(request.op, time.perf_counter() - started)
        if self._debug:
            log.debug("request %s %s -> %s", request.id, request.op.value, outcome)

    def _defer(
        self,
        slot: Slot,
        request: Request,
        answer: Answer,
        started: float,
        ready: Callable[[], None],
    ) -> None:
        slot.after_write = answer.after_write
        wait = answer.wait
        if wait is None:
            self._succeed(slot, request, answer.result or {}, started)
            return

        def finish(future: asyncio.Future[Any]) -> None:
            self._settle(slot, request, answer, future, started)
            ready()

        wait.add_done_callback(finish)

    def _settle(
        self,
        slot: Slot,
        request: Request,
        answer: Answer,
        future: asyncio.Future[Any],
        started: float,
    ) -> None:
        if future.cancelled():
            self._fail(slot, request, InternalError("request cancelled"), started)
            return
        error = future.exception()
        if error is None:
            result = answer.result if answer.result is not None else future.result()
            self._succeed(slot, request, result, started)
        elif isinstance(error, RstmdbError):
            self._fail(slot, request, error, started)
        else:
            self._fail(slot, request, _unexpected(request, error), started)
