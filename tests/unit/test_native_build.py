"""The build compiles the hot path (mypyc) or installs pure Python, and the install says which.

``setup.py`` records its decision in the installed distribution's metadata; the modules
actually imported must agree with it, whatever the environment of the test run says.
"""

from __future__ import annotations

import importlib.metadata
import json

from pyrstmdb import _native

BUILD_RECORD = "pyrstmdb_build.json"


def _build_record() -> dict[str, object]:
    text = importlib.metadata.distribution("pyrstmdb").read_text(BUILD_RECORD)
    assert text is not None, f"the install has no {BUILD_RECORD}: reinstall pyrstmdb"
    record = json.loads(text)
    assert isinstance(record, dict)
    return record


def test_the_install_records_whether_it_compiled_and_why_not() -> None:
    record = _build_record()
    assert isinstance(record["compiled"], bool)
    if record["compiled"]:
        assert record["pure_reason"] == ""
    else:
        assert record["pure_reason"] in (
            "PYRSTMDB_PURE_PYTHON was set",
            "no working C compiler",
            "mypyc is not available",
        )


def test_the_imported_modules_match_what_the_install_built() -> None:
    compiled = _native.compiled_modules()
    if _build_record()["compiled"]:
        # An extension that failed to compile would silently leave its .py in place.
        assert compiled == list(_native.NATIVE_MODULES)
        assert _native.describe().startswith(f"{len(compiled)}/{len(compiled)} ")
    else:
        # A stray extension (say, left in the tree by another build) would be imported.
        assert compiled == []
        assert _native.describe() == "pure Python"
