"""A minimal RCP client over one asyncio connection: binary frames, one request in flight.

Requests are built with pyrstmdb's frame codec (header + CRC32C) and answers are
read as header + payload; nothing else of the client library is used.
"""

from __future__ import annotations

import asyncio
from typing import Any

import orjson

from bench.compare.workload import JsonObject, Refused
from pyrstmdb.protocol import HEADER, HEADER_SIZE, encode_frame


class RcpConnection:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._reader = reader
        self._writer = writer
        self._next = 0

    @classmethod
    async def open(cls, port: int) -> RcpConnection:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        return cls(reader, writer)

    def send(self, op: str, params: JsonObject) -> None:
        self._next += 1
        body = {"type": "request", "id": str(self._next), "op": op, "params": params}
        self._writer.write(encode_frame(orjson.dumps(body)))

    async def receive(self) -> Any:
        """The next response's result; an error response raises :class:`Refused`."""
        header = await self._reader.readexactly(HEADER_SIZE)
        _, _, _, extension, size, _ = HEADER.unpack(header)
        body = await self._reader.readexactly(extension + size)
        message = orjson.loads(body[extension:])
        if message.get("status") != "ok":
            error = message.get("error") or {}
            raise Refused(str(error.get("code")), str(error.get("message")))
        return message["result"]

    async def call(self, op: str, params: JsonObject) -> Any:
        self.send(op, params)
        return await self.receive()

    async def close(self) -> None:
        self._writer.close()
        await self._writer.wait_closed()
