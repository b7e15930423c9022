"""pyrstmdb as a server: the ``rstmdb`` process with ``every_write``, spoken to in RCP frames.

Records are WAL_STATS ``entry_count``; fsyncs are WAL_STATS ``io_stats.fsyncs``.
"""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
from pathlib import Path

from bench.compare.processes import spawn, stop, wait_for
from bench.compare.rcp import RcpConnection
from bench.compare.workload import (
    MACHINE,
    VERSION,
    AsyncSession,
    JsonObject,
    Target,
    definition,
    guard_instance,
)

_BATCH = 256  # GET_INSTANCE requests in flight while verifying


class RstmdbServer:
    """The ``rstmdb`` process on a free loopback port, data in ``root/rstmdb``."""

    def __init__(self, root: Path) -> None:
        base = root / "rstmdb"
        base.mkdir()
        script = Path(sys.executable).parent / "rstmdb"
        command = [str(script)] if script.exists() else [sys.executable, "-m", "pyrstmdb.server.main"]
        env = {k: v for k, v in os.environ.items() if not k.startswith("RSTMDB_")}
        env.update(RSTMDB_FSYNC_POLICY="every_write", RSTMDB_LOG_FORMAT="text")
        out, log = base / "stdout.txt", base / "server.log"
        command += ["--bind", "127.0.0.1:0", "--data-dir", str(base / "data")]
        self.proc: subprocess.Popen[bytes] = spawn(command, log, env=env, stdout=out)
        self.port = 0

        def listening() -> bool:
            found = re.search(r"listening on [^\s]+:(\d+)", out.read_text())
            if found:
                self.port = int(found.group(1))
            return found is not None

        try:
            wait_for(listening, self.proc, "rstmdb", log)
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        stop(self.proc)


class _Session:
    def __init__(self, connection: RcpConnection) -> None:
        self._connection = connection

    async def create(self, instance_id: str, ctx: JsonObject) -> None:
        params = {"machine": MACHINE, "version": VERSION, "instance_id": instance_id}
        await self._connection.call("CREATE_INSTANCE", {**params, "initial_ctx": ctx})

    async def apply(self, instance_id: str, event: str, payload: JsonObject | None) -> None:
        params: JsonObject = {"instance_id": instance_id, "event": event}
        if payload is not None:
            params["payload"] = payload
        await self._connection.call("APPLY_EVENT", params)

    async def close(self) -> None:
        await self._connection.close()


class RstmdbTarget(Target):
    label = "pyrstmdb server"

    def __init__(self, server: RstmdbServer, control: RcpConnection) -> None:
        self._server = server
        self._control = control

    @classmethod
    async def connect(cls, server: RstmdbServer) -> RstmdbTarget:
        return cls(server, await RcpConnection.open(server.port))

    async def prepare(self, prefix: str) -> None:
        spec = {"machine": MACHINE, "version": VERSION, "definition": definition()}
        await self._control.call("PUT_MACHINE", spec)
        over = guard_instance(prefix)
        await _Session(self._control).create(over, {"customer": over, "amount": 5000})

    async def _stats(self) -> JsonObject:
        stats: JsonObject = await self._control.call("WAL_STATS", {})
        return stats

    async def record_count(self) -> int:
        return int((await self._stats())["entry_count"])

    async def fsyncs(self) -> int | None:
        return int((await self._stats())["io_stats"]["fsyncs"])

    def server_pids(self) -> list[int]:
        return [self._server.proc.pid]

    async def final_states(self, ids: list[str]) -> dict[str, tuple[str, JsonObject]]:
        found: dict[str, tuple[str, JsonObject]] = {}
        for start in range(0, len(ids), _BATCH):
            chunk = ids[start : start + _BATCH]
            for instance_id in chunk:
                self._control.send("GET_INSTANCE", {"instance_id": instance_id})
            for instance_id in chunk:
                result = await self._control.receive()
                found[instance_id] = (result["state"], result["ctx"])
        return found

    async def open_async(self, count: int) -> list[AsyncSession]:
        connections = await asyncio.gather(
            *(RcpConnection.open(self._server.port) for _ in range(count))
        )
        return [_Session(c) for c in connections]

    async def close(self) -> None:
        await self._control.close()
