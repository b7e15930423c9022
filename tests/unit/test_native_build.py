"""The build compiles the hot path (mypyc) unless asked not to, and says so."""

from __future__ import annotations

import os

from pyrstmdb import _native


def _pure_requested() -> bool:
    return os.environ.get("PYRSTMDB_PURE_PYTHON", "").strip() not in ("", "0")


def test_every_listed_module_is_compiled_unless_pure_python_was_requested() -> None:
    compiled = _native.compiled_modules()
    if _pure_requested():
        assert compiled == []
        assert _native.describe() == "pure Python"
    else:
        # An extension that failed to compile would silently leave its .py in place.
        assert compiled == list(_native.NATIVE_MODULES)
        assert _native.describe().startswith(f"{len(compiled)}/{len(compiled)} ")
