"""The client's connection manager: one live :class:`Link`, reconnects, subscriptions.

Both clients run every plan through :func:`run_plan` on a :class:`Channel`
(the blocking client on its private event-loop thread). The channel

* connects lazily or on ``connect()``, one attempt;
* with ``reconnect`` on, replaces a lost connection in the background with
  exponential backoff, re-issues every active WATCH from its resume offset
  and only then serves new requests; requests marked ``safe`` (reads and
  writes carrying an idempotency key) that were in flight are sent again;
* without ``reconnect``, fails the active subscriptions and every later
  request with ``ClientConnectionError`` until ``reconnect()`` is called.

Raises ``ClientConnectionError`` (address and reason), ``RstmdbError`` of
error responses, :class:`~pyrstmdb.client.api.ProtocolViolation` for results
that do not parse.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import ssl
from typing import Any, TypeVar

from pyrstmdb.client.calls import Call, Plan, ProtocolViolation
from pyrstmdb.client.connection import Link, LinkLost, Push, open_link
from pyrstmdb.client.events import Notice
from pyrstmdb.client.options import ClientOptions, ssl_context
from pyrstmdb.client.stream import AsyncSubscription
from pyrstmdb.errors import ClientConnectionError, RstmdbError
from pyrstmdb.protocol import Operation

T = TypeVar("T")
JsonObject = dict[str, Any]
SAFE_RETRIES = 3


class Channel:
    """See the module docstring. All methods run on one event loop."""

    def __init__(self, options: ClientOptions) -> None:
        self.options = options
        self.hello: JsonObject = {}
        self._context: ssl.SSLContext | None = None
        self._context_ready = False
        self._link: Link | None = None
        self._connecting: asyncio.Task[Link] | None = None
        self._subs: dict[str, AsyncSubscription] = {}
        self._active: list[AsyncSubscription] = []
        self._was_connected = False
        self._lost_reason: str | None = None
        self._closed = False

    @property
    def connected(self) -> bool:
        return self._link is not None and self._link.alive

    # -- connecting ------------------------------------------------------------------------------
    def _error(self, reason: str) -> ClientConnectionError:
        return ClientConnectionError(f"{self.options.address}: {reason}")

    async def connect(self) -> None:
        await self._get_link()

    async def reconnect(self) -> None:
        """Drop the current connection (if any) and connect again; subscriptions resume."""
        link, self._link = self._link, None
        if link is not None:
            await link.close()
        self._lost_reason = None
        await self._get_link()

    async def _get_link(self) -> Link:
        if self._link is not None and self._link.alive:
            return self._link
        if self._closed:
            raise self._error("client is closed")
        if self._lost_reason is not None and not self.options.reconnect:
            raise self._error(f"connection lost ({self._lost_reason}); call reconnect()")
        if self._connecting is None:
            self._connecting = asyncio.get_running_loop().create_task(self._establish())
            self._connecting.add_done_callback(self._established)
        return await asyncio.shield(self._connecting)

    def _tls(self) -> ssl.SSLContext | None:
        if not self._context_ready:
            self._context = ssl_context(self.options)
            self._context_ready = True
        return self._context

    async def _establish(self) -> Link:
        attempts = self.options.reconnect_attempts if self._retrying() else 1
        error: ClientConnectionError = self._error("not connected")
        for attempt in range(max(1, attempts)):
            if attempt:
                await asyncio.sleep(self.options.backoff(attempt - 1))
            try:
                link, hello = await open_link(
                    self.options, self._tls(), self._on_push, self._on_link_lost
                )
            except ClientConnectionError as exc:
                error = exc
                continue
            try:
                await self._resubscribe(link)
            except (LinkLost, ClientConnectionError) as exc:
                await link.close()
                error = self._error(f"connection lost while resubscribing: {exc}")
                continue
            self.hello, self._link = hello, link
            self._was_connected, self._lost_reason = True, None
            return link
        raise error

    def _retrying(self) -> bool:
        return self.options.reconnect and self._was_connected

    def _established(self, task: asyncio.Task[Link]) -> None:
        self._connecting = None
        if task.cancelled():
            return
        error = task.exception()
        if error is not None and self._retrying():
            self._fail_subscriptions(error)

    def _on_link_lost(self, link: Link) -> None:
        if link is not self._link:
            return
        self._link = None
        self._lost_reason = link.lost_reason or "connection lost"
        if self._closed:
            return
        if not self.options.reconnect:
            self._fail_subscriptions(self._error(f"connection lost: {self._lost_reason}"))
        elif self._connecting is None:
            self._connecting = asyncio.get_running_loop().create_task(self._establish())
            self._connecting.add_done_callback(self._established)

    # -- requests --------------------------------------------------------------------------------
    async def request(self, call: Call) -> JsonObject:
        """The result of one call; retries ``safe`` calls across a reconnect."""
        for attempt in range(SAFE_RETRIES + 1):
            link = await self._get_link()
            try:
                result = await link.request(call.op, call.params, self.options.request_timeout)
            except LinkLost as exc:
                if call.safe and self.options.reconnect and attempt < SAFE_RETRIES:
                    continue
                raise self._error(f"connection lost: {exc.reason}") from None
            if call.op is Operation.UNWATCH:
                self._forget(str(call.params.get("subscription_id")))
            return result
        raise AssertionError("unreachable")

    # -- subscriptions ---------------------------------------------------------------------------
    def _register(self, sub: AsyncSubscription, result: JsonObject) -> None:
        if sub.subscription_id is not None:
            self._subs.pop(sub.subscription_id, None)
        sub.on_watch_result(result)
        assert sub.subscription_id is not None
        self._subs[sub.subscription_id] = sub
        if sub not in self._active:
            self._active.append(sub)

    async def watch(self, sub: AsyncSubscription) -> None:
        """Send the first WATCH of ``sub`` (again after a reconnect if it got lost)."""
        for _ in range(SAFE_RETRIES + 1):
            link = await self._get_link()
            try:
                await link.request(
                    sub.spec.op,
                    sub.watch_params(),
                    self.options.request_timeout,
                    lambda result: self._register(sub, result),
                )
                return
            except LinkLost as exc:
                if sub in self._active:
                    return  # registered; the reconnect resumes it
                if not self.options.reconnect:
                    raise self._error(f"connection lost: {exc.reason}") from None
        raise self._error("could not subscribe")

    async def _resubscribe(self, link: Link) -> None:
        for sub in list(self._active):
            try:
                await link.request(
                    sub.spec.op,
                    sub.watch_params(),
                    self.options.request_timeout,
                    functools.partial(self._register, sub),
                )
            except RstmdbError as exc:
                self._drop(sub)
                sub.stop(exc)

    def _on_push(self, message: Push) -> None:
        sub = self._subs.get(message.subscription_id)
        if sub is None:
            return
        if isinstance(message, Notice):
            sub.notice(message)
        else:
            sub.deliver(message)

    def _drop(self, sub: AsyncSubscription) -> None:
        if sub.subscription_id is not None:
            self._subs.pop(sub.subscription_id, None)
        if sub in self._active:
            self._active.remove(sub)

    def _forget(self, subscription_id: str) -> None:
        sub = self._subs.get(subscription_id)
        if sub is not None:
            self._drop(sub)
            sub.stop()

    def _fail_subscriptions(self, error: BaseException) -> None:
        active, self._active = self._active, []
        self._subs.clear()
        for sub in active:
            sub.stop(error)

    async def unwatch(self, sub: AsyncSubscription, timeout: float | None = None) -> bool:
        """Stop ``sub``; ask the server to drop it, waiting at most ``timeout`` seconds
        (default: the request timeout). True if the server confirmed."""
        self._drop(sub)
        removed = False
        link = self._link
        if link is not None and link.alive and sub.subscription_id is not None and sub.active:
            params = {"subscription_id": sub.subscription_id}
            wait = self.options.request_timeout if timeout is None else timeout
            with contextlib.suppress(LinkLost, RstmdbError, ClientConnectionError):
                result = await link.request(Operation.UNWATCH, params, wait)
                removed = bool(result.get("removed"))
        sub.stop()
        return removed

    # -- closing ---------------------------------------------------------------------------------
    async def close(self) -> None:
        self._closed = True
        if self._connecting is not None:
            self._connecting.cancel()
        for sub in list(self._active):
            sub.stop()
        self._active.clear()
        self._subs.clear()
        link, self._link = self._link, None
        if link is not None:
            await link.close()


def _advance(plan: Plan[T], result: JsonObject | None) -> tuple[Call | None, Any]:
    """The plan's next call, or ``(None, value)`` when it has finished."""
    try:
        call = next(plan) if result is None else plan.send(result)
    except StopIteration as stop:
        return None, stop.value
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise ProtocolViolation(f"unexpected result from the server: {exc!r}") from None
    return call, None


async def run_plan(channel: Channel, plan: Plan[T]) -> T:
    """Drive one plan: send each call it yields, feed back each result."""
    call, value = _advance(plan, None)
    while call is not None:
        call, value = _advance(plan, await channel.request(call))
    return value  # type: ignore[no-any-return]


async def run_plans(channel: Channel, plans: list[Plan[Any]], raise_on_error: bool) -> list[Any]:
    """Run plans concurrently on one connection (pipelined); results in plan order."""
    outcomes = await asyncio.gather(*(run_plan(channel, p) for p in plans), return_exceptions=True)
    if raise_on_error:
        for outcome in outcomes:
            if isinstance(outcome, BaseException):
                raise outcome
    return list(outcomes)
