"""Reading Server-Sent Events from an ``httpx`` streaming response, frame by frame."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx


@dataclass
class Frame:
    event: str = "message"
    id: str | None = None
    data: str = ""
    comment: str | None = None
    fields: dict[str, str] = field(default_factory=dict)

    @property
    def json(self) -> Any:
        return json.loads(self.data)


def frames(response: httpx.Response) -> Iterator[Frame]:
    """Every frame and comment of the stream, in order."""
    current = Frame()
    data: list[str] = []
    for line in response.iter_lines():
        if line == "":
            if data or current.id is not None or current.fields:
                current.data = "\n".join(data)
                yield current
            current, data = Frame(), []
        elif line.startswith(":"):
            yield Frame(event="", comment=line[1:].strip())
        else:
            name, _, value = line.partition(":")
            value = value[1:] if value.startswith(" ") else value
            if name == "data":
                data.append(value)
            elif name == "id":
                current.id = value
            elif name == "event":
                current.event = value
            else:
                current.fields[name] = value


def transitions(stream: Iterator[Frame], count: int) -> list[Frame]:
    """The next ``count`` transition frames (other frames skipped)."""
    found: list[Frame] = []
    for item in stream:
        if item.event == "transition":
            found.append(item)
            if len(found) == count:
                break
    return found
