"""Which modules the build compiles to C (mypyc), and whether this installation has them.

``setup.py`` reads ``NATIVE_MODULES`` (without importing the package) and compiles those
modules; each extension imports in place of its ``.py`` file. They are the per-write hot
path and the log replay at open: plain typed Python that runs unchanged when not compiled
(``PYRSTMDB_PURE_PYTHON=1`` at install time, or no C compiler).

Rules for a module listed here: no monkeypatching of its classes' methods, no interpreted
subclasses of its classes, and every annotation must be true at run time (mypyc checks
them at the boundaries).
"""

from __future__ import annotations

import importlib
import os

NATIVE_MODULES: tuple[str, ...] = (
    "pyrstmdb.aio",
    "pyrstmdb.core",
    "pyrstmdb.engine.commands",
    "pyrstmdb.engine.guard",
    "pyrstmdb.engine.idempotency",
    "pyrstmdb.engine.machine",
    "pyrstmdb.engine.records",
    "pyrstmdb.engine.state",
    "pyrstmdb.storage.disk",
    "pyrstmdb.storage.policy",
    "pyrstmdb.storage.wal.appender",
    "pyrstmdb.storage.wal.durability",
    "pyrstmdb.storage.wal.flusher",
    "pyrstmdb.storage.wal.layout",
    "pyrstmdb.storage.wal.log",
    "pyrstmdb.storage.wal.reading",
    "pyrstmdb.storage.wal.record",
    "pyrstmdb.storage.wal.segment",
    "pyrstmdb.storage.wal.state",
    "pyrstmdb.storage.wal.syncing",
    "pyrstmdb.storage.wal.writer",
)

_SOURCE_SUFFIX = ".py"


def compiled_modules() -> list[str]:
    """The listed modules that were imported from a compiled extension."""
    return [name for name in NATIVE_MODULES if not _is_source(_file_of(name))]


def stale_modules() -> list[str]:
    """Compiled modules whose source changed after they were built (editable installs)."""
    stale = []
    for name in NATIVE_MODULES:
        path = _file_of(name)
        if _is_source(path) or "site-packages" in path:  # an installed copy is never edited
            continue
        source = os.path.join(os.path.dirname(path), name.rsplit(".", 1)[-1] + _SOURCE_SUFFIX)
        if os.path.exists(source) and os.path.getmtime(source) > os.path.getmtime(path):
            stale.append(name)
    return stale


def describe() -> str:
    """One line for logs and benchmarks: how much of the hot path is compiled."""
    done = len(compiled_modules())
    if done == 0:
        return "pure Python"
    return f"{done}/{len(NATIVE_MODULES)} hot-path modules compiled (mypyc)"


def _file_of(name: str) -> str:
    return str(getattr(importlib.import_module(name), "__file__", "") or "")


def _is_source(path: str) -> bool:
    return path.endswith(_SOURCE_SUFFIX)
