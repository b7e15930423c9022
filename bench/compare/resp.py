"""A minimal RESP2 client for one asyncio connection: commands out, replies in.

``encode`` builds a command; ``read_reply`` reads one reply (simple string,
error, integer, bulk string, array, nested). An error reply is returned as
:class:`RespError`, not raised, so a caller can tell it from a value.
"""

from __future__ import annotations

import asyncio
from typing import Union

Reply = Union[bytes, int, None, "RespError", list["Reply"]]


class RespError(Exception):
    """An error reply (``-CODE message``)."""

    @property
    def code(self) -> str:
        return str(self).split(" ", 1)[0]


def encode(*args: bytes | str | int) -> bytes:
    parts = [b"*%d\r\n" % len(args)]
    for arg in args:
        data = arg if isinstance(arg, bytes) else str(arg).encode()
        parts.append(b"$%d\r\n%s\r\n" % (len(data), data))
    return b"".join(parts)


async def read_reply(reader: asyncio.StreamReader) -> Reply:
    line = await reader.readline()
    if not line.endswith(b"\r\n"):
        raise ConnectionError("the connection closed in the middle of a reply")
    kind, rest = line[:1], line[1:-2]
    if kind == b"+":
        return rest
    if kind == b"-":
        return RespError(rest.decode(errors="replace"))
    if kind == b":":
        return int(rest)
    if kind == b"$":
        size = int(rest)
        return None if size < 0 else (await reader.readexactly(size + 2))[:-2]
    if kind == b"*":
        count = int(rest)
        return None if count < 0 else [await read_reply(reader) for _ in range(count)]
    raise ConnectionError(f"not a RESP reply: {line[:40]!r}")


class RespConnection:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._reader = reader
        self._writer = writer

    @classmethod
    async def open(cls, port: int) -> RespConnection:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        return cls(reader, writer)

    def send(self, *args: bytes | str | int) -> None:
        self._writer.write(encode(*args))

    async def receive(self) -> Reply:
        return await read_reply(self._reader)

    async def call(self, *args: bytes | str | int) -> Reply:
        self._writer.write(encode(*args))
        return await read_reply(self._reader)

    async def close(self) -> None:
        self._writer.close()
        await self._writer.wait_closed()
