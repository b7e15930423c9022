"""``make bench``: run every benchmark module and print one table.

Each module under ``bench/`` named ``*_bench.py`` exposes
``run(tmpdir) -> list[(name, value, unit)]``. Pass module names to run a subset:
``python -m bench engine wal``.
"""

from __future__ import annotations

import importlib
import pkgutil
import sys
import tempfile
import time
from pathlib import Path


def _modules(selected: list[str]) -> list[str]:
    here = Path(__file__).parent
    names = sorted(m.name for m in pkgutil.iter_modules([str(here)]) if m.name.endswith("_bench"))
    if selected:
        names = [n for n in names if n.removesuffix("_bench") in selected or n in selected]
    return names


def main(argv: list[str]) -> int:
    from pyrstmdb import _native

    print(f"pyrstmdb build: {_native.describe()}", file=sys.stderr, flush=True)
    rows: list[tuple[str, str, str]] = []
    for name in _modules(argv):
        module = importlib.import_module(f"bench.{name}")
        print(f"running {name} ...", file=sys.stderr, flush=True)
        started = time.perf_counter()
        with tempfile.TemporaryDirectory(prefix=f"pyrstmdb-{name}-") as tmpdir:
            for label, value, unit in module.run(tmpdir):
                rows.append((label, f"{value:,.1f}" if value < 100 else f"{value:,.0f}", unit))
        print(f"  done in {time.perf_counter() - started:.1f} s", file=sys.stderr, flush=True)
    width = max((len(r[0]) for r in rows), default=10)
    value_width = max((len(r[1]) for r in rows), default=5)
    print(f"{'benchmark':<{width}}  {'value':>{value_width}}  unit")
    print(f"{'-' * width}  {'-' * value_width}  ----")
    for label, value, unit in rows:
        print(f"{label:<{width}}  {value:>{value_width}}  {unit}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
