"""Redis with ``appendonly yes``, ``appendfsync always``: a transition is one Lua script.

Each instance is a hash (``state``, ``ctx`` as JSON); the scripts check the
transition table and the guard, update the hash and XADD a record to the stream
``log``, atomically. They are loaded once (SCRIPT LOAD) and run with EVALSHA.
Error replies start with the error code (a reply without a space would get an
``ERR`` prefix). Records are the stream's length; Redis does not count its fsyncs.
"""

from __future__ import annotations

import asyncio
import shutil
import subprocess
from pathlib import Path

import orjson

from bench.compare.processes import can_connect, free_port, spawn, stop, wait_for
from bench.compare.resp import RespConnection, RespError
from bench.compare.workload import (
    TRANSITIONS,
    AsyncSession,
    JsonObject,
    Refused,
    Target,
    guard_instance,
)

STREAM = "log"

CREATE = """
if redis.call('EXISTS', KEYS[1]) == 1 then return redis.error_reply('INSTANCE_EXISTS ' .. ARGV[1]) end
redis.call('HSET', KEYS[1], 'state', 'created', 'ctx', ARGV[2])
redis.call('XADD', KEYS[2], '*', 'id', ARGV[1], 'to', 'created', 'ctx', ARGV[2])
return 'created'
"""

APPLY = """
local current = redis.call('HMGET', KEYS[1], 'state', 'ctx')
if not current[1] then return redis.error_reply('INSTANCE_NOT_FOUND ' .. ARGV[1]) end
local step = TRANSITIONS[current[1]] and TRANSITIONS[current[1]][ARGV[2]]
if not step then return redis.error_reply('INVALID_TRANSITION no ' .. ARGV[2] .. ' from ' .. current[1]) end
local ctx = cjson.decode(current[2])
if step[2] and not (type(ctx.amount) == 'number' and ctx.amount <= step[2]) then
  return redis.error_reply('GUARD_FAILED ctx.amount <= ' .. step[2] .. ' is false')
end
if ARGV[3] ~= '' then
  for key, value in pairs(cjson.decode(ARGV[3])) do ctx[key] = value end
end
redis.call('HSET', KEYS[1], 'state', step[1], 'ctx', cjson.encode(ctx))
redis.call('XADD', KEYS[2], '*', 'id', ARGV[1], 'event', ARGV[2], 'from', current[1],
  'to', step[1], 'payload', ARGV[3])
return step[1]
"""


def _lua_table() -> str:
    """TRANSITIONS as ``{state = {EVENT = {target, max_amount}}}``."""
    states: dict[str, list[str]] = {}
    for t in TRANSITIONS:
        limit = "" if t.max_amount is None else f", {t.max_amount}"
        states.setdefault(t.source, []).append(f"{t.event} = {{'{t.target}'{limit}}}")
    rows = [f"{state} = {{{', '.join(events)}}}" for state, events in states.items()]
    return "local TRANSITIONS = {" + ", ".join(rows) + "}\n"


def find_binary() -> str | None:
    return shutil.which("redis-server") or (
        "/usr/bin/redis-server" if Path("/usr/bin/redis-server").exists() else None
    )


class RedisServer:
    """``redis-server`` on a free loopback port, AOF fsync on every write, in ``root/redis``."""

    def __init__(self, root: Path, binary: str) -> None:
        base = root / "redis"
        base.mkdir()
        self.port = free_port()
        log = base / "server.log"
        settings = {
            "port": str(self.port),
            "bind": "127.0.0.1",
            "dir": str(base),
            "appendonly": "yes",
            "appendfsync": "always",
            "save": "",
            "auto-aof-rewrite-percentage": "0",
            "daemonize": "no",
            "logfile": "",
        }
        command = [binary]
        for key, value in settings.items():
            command += [f"--{key}", value]
        self.proc: subprocess.Popen[bytes] = spawn(command, log)
        try:
            wait_for(lambda: can_connect(self.port), self.proc, "redis-server", log)
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        stop(self.proc)


def _key(instance_id: str) -> str:
    return f"i:{instance_id}"


def _checked(reply: object) -> object:
    if isinstance(reply, RespError):
        raise Refused(reply.code, str(reply))
    return reply


class _Session:
    def __init__(self, connection: RespConnection, create_sha: bytes, apply_sha: bytes) -> None:
        self._connection = connection
        self._create = create_sha
        self._apply = apply_sha

    async def create(self, instance_id: str, ctx: JsonObject) -> None:
        reply = await self._connection.call(
            "EVALSHA", self._create, 2, _key(instance_id), STREAM, instance_id, orjson.dumps(ctx)
        )
        _checked(reply)

    async def apply(self, instance_id: str, event: str, payload: JsonObject | None) -> None:
        body = b"" if payload is None else orjson.dumps(payload)
        reply = await self._connection.call(
            "EVALSHA", self._apply, 2, _key(instance_id), STREAM, instance_id, event, body
        )
        _checked(reply)

    async def close(self) -> None:
        await self._connection.close()


class RedisTarget(Target):
    label = "Redis"

    def __init__(self, server: RedisServer, control: RespConnection) -> None:
        self._server = server
        self._control = control
        self._shas = (b"", b"")

    @classmethod
    async def connect(cls, server: RedisServer) -> RedisTarget:
        target = cls(server, await RespConnection.open(server.port))
        create = await target._control.call("SCRIPT", "LOAD", CREATE)
        apply = await target._control.call("SCRIPT", "LOAD", _lua_table() + APPLY)
        assert isinstance(create, bytes) and isinstance(apply, bytes), (create, apply)
        target._shas = (create, apply)
        return target

    async def prepare(self, prefix: str) -> None:
        over = guard_instance(prefix)
        await _Session(self._control, *self._shas).create(over, {"customer": over, "amount": 5000})

    async def record_count(self) -> int:
        count = _checked(await self._control.call("XLEN", STREAM))
        assert isinstance(count, int)
        return count

    def server_pids(self) -> list[int]:
        return [self._server.proc.pid]

    async def final_states(self, ids: list[str]) -> dict[str, tuple[str, JsonObject]]:
        found: dict[str, tuple[str, JsonObject]] = {}
        for start in range(0, len(ids), 256):
            chunk = ids[start : start + 256]
            for instance_id in chunk:
                self._control.send("HMGET", _key(instance_id), "state", "ctx")
            for instance_id in chunk:
                reply = _checked(await self._control.receive())
                assert isinstance(reply, list)
                state, ctx = reply
                if isinstance(state, bytes) and isinstance(ctx, bytes):
                    found[instance_id] = (state.decode(), orjson.loads(ctx))
        return found

    async def open_async(self, count: int) -> list[AsyncSession]:
        connections = await asyncio.gather(
            *(RespConnection.open(self._server.port) for _ in range(count))
        )
        return [_Session(c, *self._shas) for c in connections]

    async def close(self) -> None:
        await self._control.close()
