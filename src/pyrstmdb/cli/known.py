"""Machine names and instance ids seen in a REPL session, offered by tab completion."""

from __future__ import annotations

from collections.abc import Iterable

from pyrstmdb.client import Client, ClientConnectionError
from pyrstmdb.errors import RstmdbError


class Known:
    """Machine names and instance ids seen in this session, for completion."""

    def __init__(self) -> None:
        self.machines: set[str] = set()
        self.instances: set[str] = set()

    def load(self, client: Client) -> None:
        try:
            self.machines.update(item.machine for item in client.list_machines().items)
            self.instances.update(i.id for i in client.list_instances(limit=1000).instances)
        except (RstmdbError, ClientConnectionError):
            pass

    def observe(self, command: str, doc: dict[str, object] | None) -> None:
        if doc is None:
            return
        if command == "put-machine":
            self.machines.add(str(doc["machine"]))
        elif command == "list-machines":
            self.machines.update(str(item["machine"]) for item in _items(doc, "items"))
        elif command == "create-instance":
            self.instances.add(str(doc["instance_id"]))
        elif command == "list-instances":
            self.instances.update(str(item["id"]) for item in _items(doc, "instances"))
        elif command == "delete-instance":
            self.instances.discard(str(doc["instance_id"]))
        elif command == "flush-all":
            self.machines.clear()
            self.instances.clear()

    def words(self) -> list[str]:
        return sorted(self.machines | self.instances)


def _items(doc: dict[str, object], key: str) -> Iterable[dict[str, object]]:
    items = doc.get(key)
    return items if isinstance(items, list) else []


__all__ = ["Known"]
