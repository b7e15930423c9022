"""Process lifecycle: graceful shutdown, restart after SIGKILL, startup failures, ``check``."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import socket
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import pytest
from rstmdb import Client
from rstmdb import ConnectionError as ClientConnectionError
from server_harness import ServerProcess, run_rstmdb

from pyrstmdb.protocol import encode_frame, request_message

COUNTER = {
    "states": ["s"],
    "initial": "s",
    "transitions": [{"from": "s", "event": "INC", "to": "s"}],
}


def write_some(server: ServerProcess, count: int) -> list[str]:
    async def main() -> list[str]:
        async with Client(server.host, server.port) as client:
            await client.put_machine("counter", 1, COUNTER)
            ids = []
            for n in range(count):
                created = await client.create_instance("counter", 1, initial_ctx={"n": 0})
                await client.apply_event(created.instance_id, "INC", payload={"n": n + 1})
                ids.append(created.instance_id)
            return ids

    return asyncio.run(main())


def read_ctx(server: ServerProcess, ids: list[str]) -> dict[str, Any]:
    async def main() -> dict[str, Any]:
        async with Client(server.host, server.port) as client:
            return {iid: (await client.get_instance(iid)).ctx for iid in ids}

    return asyncio.run(main())


@pytest.mark.slow
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_graceful_shutdown_keeps_acknowledged_writes(
    rstmdb_server: Callable[..., ServerProcess], signum: int
) -> None:
    server = rstmdb_server()
    ids = write_some(server, 10)
    with server.raw() as idle:
        idle.call("PING")
        started = time.monotonic()
        assert server.stop(signum) == 0
        assert time.monotonic() - started < 10
        assert idle.closed_by_server(timeout=1)
    assert "Server stopped" in server.log()
    assert "Traceback" not in server.log()
    server.start()
    ctx = read_ctx(server, ids)
    assert [ctx[iid]["n"] for iid in ids] == list(range(1, 11))


@pytest.mark.slow
def test_shutdown_answers_requests_in_flight(rstmdb_server: Callable[..., ServerProcess]) -> None:
    server = rstmdb_server()
    ids = write_some(server, 1)
    with server.raw(timeout=15) as client:
        burst = b"".join(
            encode_frame(
                orjson.dumps(
                    request_message(
                        str(n),
                        "APPLY_EVENT",
                        {"instance_id": ids[0], "event": "INC", "payload": {"n": n}},
                    )
                )
            )
            for n in range(1, 301)
        )
        client.send_raw(burst)
        server.send_signal(signal.SIGTERM)
        acked = 0
        with contextlib.suppress(ConnectionError, OSError):
            while True:
                response = client.response()
                assert response.ok and response.id == str(acked + 1)
                acked += 1
    assert server.proc is not None and server.proc.wait(10) == 0
    server.start()
    assert read_ctx(server, ids)[ids[0]]["n"] >= acked


@pytest.mark.slow
def test_sigkill_under_load_keeps_every_acknowledged_write(
    rstmdb_server: Callable[..., ServerProcess],
) -> None:
    server = rstmdb_server()
    write_some(server, 0)
    created: list[str] = []
    applied: dict[str, int] = {}

    async def worker(n: int, stop: asyncio.Event) -> None:
        client = Client(server.host, server.port, request_timeout=5)
        await client.connect()
        iid = f"load-{n}"
        await client.create_instance("counter", 1, instance_id=iid, initial_ctx={"n": 0})
        created.append(iid)
        count = 0
        with contextlib.suppress(ClientConnectionError, OSError):
            while not stop.is_set():
                count += 1
                await client.apply_event(iid, "INC", payload={"n": count})
                applied[iid] = count
                extra = await client.create_instance("counter", 1)
                created.append(extra.instance_id)
        await client.close()

    async def main() -> None:
        stop = asyncio.Event()
        tasks = [asyncio.create_task(worker(n, stop)) for n in range(4)]
        await asyncio.sleep(1.5)
        server.kill()
        stop.set()
        await asyncio.gather(*tasks)

    asyncio.run(main())
    assert len(applied) == 4 and min(applied.values()) > 5
    server.start()
    ctx = read_ctx(server, created)
    for iid, count in applied.items():
        assert ctx[iid]["n"] >= count
    assert len(ctx) == len(created)


# -- startup failures: one line on stderr, non-zero exit --------------------------------------


def assert_one_line_failure(result: Any, *needles: str) -> None:
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if line.startswith("rstmdb: ")]
    assert len(lines) == 1, result.stderr
    for needle in needles:
        assert needle in lines[0]


def test_bad_environment_value_names_the_variable(tmp_path: Path) -> None:
    result = run_rstmdb(
        ["--data-dir", str(tmp_path)],
        env={"RSTMDB_MAX_CONNECTIONS": "lots", "RSTMDB_BIND": "127.0.0.1:0"},
    )
    assert_one_line_failure(result, "RSTMDB_MAX_CONNECTIONS")


@pytest.mark.slow
def test_bad_config_file_key_is_named(tmp_path: Path) -> None:
    config = tmp_path / "rstmdb.yaml"
    config.write_text("network:\n  max_connections: many\n")
    result = run_rstmdb(["--config", str(config), "--bind", "127.0.0.1:0"])
    assert_one_line_failure(result, "network.max_connections")
    missing = run_rstmdb(["--config", str(tmp_path / "nope.yaml")])
    assert_one_line_failure(missing, "nope.yaml")
    no_hash = run_rstmdb(["--bind", "127.0.0.1:0"], env={"RSTMDB_AUTH_REQUIRED": "true"})
    assert_one_line_failure(no_hash, "auth.required")


@pytest.mark.slow
def test_port_in_use(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = run_rstmdb(["--bind", f"127.0.0.1:{port}", "--data-dir", str(tmp_path / "d")])
    assert_one_line_failure(result, "cannot listen on", str(port))


@pytest.mark.slow
def test_unreadable_certificate(tmp_path: Path) -> None:
    env = {
        "RSTMDB_TLS_ENABLED": "true",
        "RSTMDB_TLS_CERT": str(tmp_path / "missing.pem"),
        "RSTMDB_TLS_KEY": str(tmp_path / "missing.key"),
    }
    result = run_rstmdb(["--bind", "127.0.0.1:0", "--data-dir", str(tmp_path / "d")], env=env)
    assert_one_line_failure(result, "TLS", "missing.pem")


@pytest.mark.slow
def test_corrupt_wal_refuses_to_start_and_check_reports_it(
    rstmdb_server: Callable[..., ServerProcess],
) -> None:
    server = rstmdb_server()
    write_some(server, 5)
    assert server.stop() == 0
    good = run_rstmdb(["check", "--data-dir", str(server.data_dir)])
    assert good.returncode == 0, good.stdout + good.stderr
    segment = sorted((server.data_dir / "wal").glob("*.wal"))[0]
    data = bytearray(segment.read_bytes())
    data[60] ^= 0xFF
    segment.write_bytes(bytes(data))
    result = run_rstmdb(["--bind", "127.0.0.1:0", "--data-dir", str(server.data_dir)])
    assert_one_line_failure(result, "cannot open data directory")
    bad = run_rstmdb(["check", "--data-dir", str(server.data_dir)])
    assert bad.returncode != 0 and "Traceback" not in bad.stderr


@pytest.mark.slow
def test_config_file_then_environment(
    rstmdb_server: Callable[..., ServerProcess], tmp_path: Path
) -> None:
    config = tmp_path / "rstmdb.yaml"
    config.write_text(
        'network:\n  bind_addr: "127.0.0.1:0"\nstorage:\n  allow_flush_all: true\n'
        "logging:\n  format: text\n"
    )
    from_file = rstmdb_server(args=["--config", str(config)], bind=None)
    with from_file.raw() as client:
        assert client.call("FLUSH_ALL").ok
    assert " INFO pyrstmdb.server: ready in " in from_file.log()
    overridden = rstmdb_server(
        args=["--config", str(config)], bind=None, env={"RSTMDB_ALLOW_FLUSH_ALL": "false"}
    )
    with overridden.raw() as client:
        refused = client.call("FLUSH_ALL")
        assert refused.error is not None and refused.error["code"] == "BAD_REQUEST"
