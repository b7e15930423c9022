"""CPU time of server process trees, from ``/proc/<pid>/stat``.

A tree's CPU is utime + stime of the root and every live descendant, plus the
root's cutime + cstime (children it has reaped: PostgreSQL backends that exited).
Linux only; elsewhere the figures are ``None``.
"""

from __future__ import annotations

import os
from pathlib import Path

_PROC = Path("/proc")
_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def _fields(pid: int) -> list[str] | None:
    try:
        text = (_PROC / str(pid) / "stat").read_text()
    except OSError:
        return None
    # The command name (field 2) may contain spaces; it ends at the last ')'.
    return text[text.rindex(")") + 2 :].split()


def _parents() -> dict[int, int]:
    parents: dict[int, int] = {}
    for entry in _PROC.iterdir():
        if entry.name.isdigit():
            fields = _fields(int(entry.name))
            if fields is not None:
                parents[int(entry.name)] = int(fields[1])
    return parents


def _tree(root: int, parents: dict[int, int]) -> list[int]:
    children: dict[int, list[int]] = {}
    for pid, parent in parents.items():
        children.setdefault(parent, []).append(pid)
    found, todo = [], [root]
    while todo:
        pid = todo.pop()
        found.append(pid)
        todo.extend(children.get(pid, []))
    return found


def tree_cpu_seconds(roots: list[int]) -> float | None:
    """CPU seconds used so far by the trees under ``roots`` (``None``: not measurable)."""
    if not roots or not _PROC.is_dir():
        return None
    parents = _parents()
    ticks = 0
    for root in roots:
        for pid in _tree(root, parents):
            fields = _fields(pid)
            if fields is None:
                continue
            # After the name: state ppid ... utime(11) stime(12) cutime(13) cstime(14), 0-based.
            ticks += int(fields[11]) + int(fields[12])
            if pid == root:
                ticks += int(fields[13]) + int(fields[14])
    return ticks / _TICKS


def own_cpu_seconds() -> float:
    """CPU seconds of this process, all threads (for the in-process systems)."""
    times = os.times()
    return times.user + times.system
