"""The operation-semantics tests of the embedded Database, run through the HTTP API.

Every test of ``tests/unit/core`` whose only database is its ``db`` fixture runs here with
``db`` speaking HTTP to a fresh real server (``http_database.HttpDatabase``) on which the
``order`` machine is registered, as the embedded fixture does.
"""

from __future__ import annotations

import importlib.util
import inspect
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from http_database import HttpDatabase
from server_harness import ServerProcess

from conftest import http_client

CORE_TESTS = Path(__file__).resolve().parents[2] / "unit" / "core"
FIXTURES = {"db", "order_machine", "approval_machine"}
#: Tests of what only the in-memory embedded Database has: its argument conversion, and its
#: store's offsets (record counters; a server's log offsets are byte positions).
NOT_OVER_HTTP = {
    "database_semantics::test_non_json_payload_is_bad_request": "a Python set is not JSON",
    "database_semantics::test_offsets_increase_and_first_is_one_shifted": "in-memory offsets",
}


def _load(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"http_semantics_{name}", CORE_TESTS / name)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _cases() -> dict[str, Callable[..., Any]]:
    found: dict[str, Callable[..., Any]] = {}
    for file in ("test_database_semantics.py", "test_idempotency_and_batch.py"):
        module = _load(file)
        for name, fn in vars(module).items():
            if not name.startswith("test_") or not callable(fn):
                continue
            params = set(inspect.signature(fn).parameters)
            case = f"{file[5:-3]}::{name}"
            if "db" in params and params <= FIXTURES and case not in NOT_OVER_HTTP:
                found[case] = fn
    return found


CASES = _cases()


@pytest.fixture
def http_db(
    rstmdb_server: Callable[..., ServerProcess], order_machine: dict[str, Any]
) -> Iterator[HttpDatabase]:
    server = rstmdb_server()
    with http_client(server) as client:
        db = HttpDatabase(client)
        db.put_machine("order", 1, order_machine)
        yield db


def test_cases_were_found() -> None:
    assert len(CASES) >= 19, sorted(CASES)
    assert not set(NOT_OVER_HTTP) & set(CASES)


@pytest.mark.parametrize("case", sorted(CASES))
def test_semantics_over_http(
    case: str,
    http_db: HttpDatabase,
    order_machine: dict[str, Any],
    approval_machine: dict[str, Any],
) -> None:
    fn = CASES[case]
    available = {
        "db": http_db,
        "order_machine": order_machine,
        "approval_machine": approval_machine,
    }
    fn(**{name: available[name] for name in inspect.signature(fn).parameters})
