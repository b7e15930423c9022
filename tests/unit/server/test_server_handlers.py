"""Handler details that need no connection: the handler table."""

from __future__ import annotations

from pyrstmdb.protocol import Operation
from pyrstmdb.server.dispatch import HANDLERS


def test_every_operation_has_a_handler() -> None:
    assert set(HANDLERS) == set(Operation)
