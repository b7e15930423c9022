"""Integration fixtures: a real ``rstmdb`` server process on a free loopback port.

``rstmdb_server`` is a factory: ``rstmdb_server(env={...}, args=[...], data_dir=path)``
starts ``rstmdb --bind 127.0.0.1:0 --data-dir DIR`` with a clean environment
(no inherited ``RSTMDB_*``) plus ``env``, waits until it answers PING and
returns a :class:`server_harness.ServerProcess` (``.host``, ``.port``,
``.address``, ``.data_dir``, ``.log()``, ``.stop(sig)``, ``.kill()``,
``.restart()``, ``.raw()``). Every server it started is killed at teardown.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path

import pytest
from server_harness import ServerProcess

StartServer = Callable[..., ServerProcess]


def _factory(base: Path, started: list[ServerProcess]) -> StartServer:
    counter = itertools.count(1)

    def start(
        env: Mapping[str, str] | None = None,
        args: Sequence[str] = (),
        data_dir: Path | None = None,
        bind: str | None = "127.0.0.1:0",
        wait_ping: bool = True,
    ) -> ServerProcess:
        n = next(counter)
        server = ServerProcess(
            data_dir or base / f"data-{n}",
            base / f"server-{n}.log",
            env=env,
            args=args,
            bind=bind,
        )
        started.append(server)
        return server.start(wait_ping=wait_ping)

    return start


@pytest.fixture
def rstmdb_server(tmp_path: Path) -> Iterator[StartServer]:
    """Start ``rstmdb`` processes for one test; all are killed afterwards."""
    started: list[ServerProcess] = []
    yield _factory(tmp_path, started)
    for server in started:
        server.kill()


@pytest.fixture(scope="module")
def rstmdb_module_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StartServer]:
    """Like ``rstmdb_server``, shared by the tests of one module."""
    started: list[ServerProcess] = []
    yield _factory(tmp_path_factory.mktemp("rstmdb"), started)
    for server in started:
        server.kill()
