"""Plans and the runners that execute them: the one mechanism behind both clients.

An operation is a *plan*: a generator that yields the requests it needs
(:class:`~pyrstmdb.client.calls.Call`), receives each protocol result object and returns a typed
result. A plan does no I/O; the runner that owns it does::

    plan = Commands.get_instance(self, "o-1")
        yield Call(GET_INSTANCE, {...})  ──▶  runner sends it, waits for the result
        return GetInstanceResult.from_dict(result)

The :class:`command` descriptor binds a plan to its runner: on a
:class:`SyncRunner` (``Client``) the method returns the result, on an
:class:`AsyncRunner` (``AsyncClient``) a coroutine, on a
:class:`PipelineRunner` it queues the plan. :class:`subscription` does the same
for the WATCH operations, which return subscriptions instead of results.

The values a plan and a watch are made of (:class:`~pyrstmdb.client.calls.Call`,
:class:`~pyrstmdb.client.calls.WatchSpec`) live in :mod:`pyrstmdb.client.calls`.
Raises nothing itself.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING, Any, Concatenate, Generic, ParamSpec, Self, TypeVar, overload

from pyrstmdb.client.calls import Plan, WatchSpec

if TYPE_CHECKING:
    from pyrstmdb.client.stream import AsyncSubscription, Subscription

PL = TypeVar("PL", bound="PipelineRunner")
P = ParamSpec("P")
T = TypeVar("T")


# -- runners -------------------------------------------------------------------------------


class SyncRunner:
    """Runs plans to completion, blocking (``Client``)."""

    def _run(self, plan: Plan[T]) -> T:
        raise NotImplementedError

    def _watch(self, spec: WatchSpec) -> Subscription:
        raise NotImplementedError


class AsyncRunner:
    """Runs plans as coroutines (``AsyncClient``)."""

    async def _run(self, plan: Plan[T]) -> T:
        raise NotImplementedError

    def _watch(self, spec: WatchSpec) -> AsyncSubscription:
        raise NotImplementedError


class PipelineRunner:
    """Queues plans; ``execute()`` runs them all at once on one connection."""

    def __init__(self) -> None:
        self._queued: list[Plan[Any]] = []

    def _queue(self, plan: Plan[Any]) -> None:
        self._queued.append(plan)

    def __len__(self) -> int:
        return len(self._queued)


class command(Generic[P, T]):
    """Turns a plan-returning method into a client method (see the module docstring)."""

    def __init__(self, plan: Callable[Concatenate[Any, P], Plan[T]]) -> None:
        self._plan = plan
        self.__doc__ = plan.__doc__
        self.__name__ = plan.__name__

    @overload
    def __get__(self, obj: None, owner: type | None = None) -> Self: ...
    @overload
    def __get__(self, obj: SyncRunner, owner: type | None = None) -> Callable[P, T]: ...
    @overload
    def __get__(
        self, obj: AsyncRunner, owner: type | None = None
    ) -> Callable[P, Coroutine[Any, Any, T]]: ...
    @overload
    def __get__(self, obj: PL, owner: type | None = None) -> Callable[P, PL]: ...

    def __get__(self, obj: object, owner: type | None = None) -> Any:
        if obj is None:
            return self
        plan = self._plan
        if isinstance(obj, PipelineRunner):
            pipeline = obj

            def queue(*args: Any, **kwargs: Any) -> Any:
                pipeline._queue(plan(pipeline, *args, **kwargs))
                return pipeline

            return queue
        runner: Any = obj

        def run(*args: Any, **kwargs: Any) -> Any:
            return runner._run(plan(runner, *args, **kwargs))

        run.__name__ = self.__name__
        run.__doc__ = self.__doc__
        return run


class subscription(Generic[P]):
    """Turns a :class:`WatchSpec`-returning method into a subscribing client method."""

    def __init__(self, build: Callable[Concatenate[Any, P], WatchSpec]) -> None:
        self._build = build
        self.__doc__ = build.__doc__

    @overload
    def __get__(self, obj: None, owner: type | None = None) -> Self: ...
    @overload
    def __get__(self, obj: SyncRunner, owner: type | None = None) -> Callable[P, Subscription]: ...
    @overload
    def __get__(
        self, obj: AsyncRunner, owner: type | None = None
    ) -> Callable[P, AsyncSubscription]: ...

    def __get__(self, obj: object, owner: type | None = None) -> Any:
        if obj is None:
            return self
        build = self._build
        runner: Any = obj

        def watch(*args: Any, **kwargs: Any) -> Any:
            return runner._watch(build(runner, *args, **kwargs))

        return watch
