"""A machine definition as diagram text: Mermaid ``stateDiagram-v2`` or Graphviz DOT.

States are nodes, the initial state is marked (an arrow from the start point),
and each transition is one edge per source state labelled ``EVENT`` or
``EVENT [guard]``. Every name and label is escaped for its format, so any
state, event or guard text renders as itself. Nodes are named ``s0``, ``s1``…
in definition order and show the state name as their label.

Pure: no I/O. Raises ``ValueError`` for an unknown format.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

FORMATS = {"mermaid": "text/vnd.mermaid", "dot": "text/vnd.graphviz"}

# Characters Mermaid would read as syntax inside a label; written as ``#<code>;``.
_MERMAID_SPECIAL = frozenset('"#;:<>{}|%\\`&')


def edges(definition: dict[str, Any]) -> Iterator[tuple[str, str, str]]:
    """``(source, target, label)`` for every transition and source, in definition order."""
    for transition in definition.get("transitions", ()):
        sources = transition["from"]
        label = str(transition["event"])
        guard = transition.get("guard")
        if guard:
            label = f"{label} [{guard}]"
        for source in [sources] if isinstance(sources, str) else sources:
            yield str(source), str(transition["to"]), label


def _node_ids(definition: dict[str, Any]) -> dict[str, str]:
    ids: dict[str, str] = {}
    for state in definition.get("states", ()):
        ids.setdefault(str(state), f"s{len(ids)}")
    for source, target, _ in edges(definition):
        for state in (source, target):
            ids.setdefault(state, f"s{len(ids)}")
    return ids


def mermaid_text(text: str) -> str:
    """``text`` safe inside a Mermaid label (syntax characters as entity codes)."""
    out = []
    for char in text:
        if char in _MERMAID_SPECIAL or char == "\n" or char == "\r":
            out.append(f"#{ord(char)};")
        else:
            out.append(char)
    return "".join(out)


def dot_string(text: str) -> str:
    """``text`` as a quoted DOT string (backslashes, quotes and newlines escaped)."""
    escaped = text.replace("\\", "\\\\").replace('"', '\\"')
    escaped = escaped.replace("\r\n", "\n").replace("\r", "\n").replace("\n", "\\n")
    return f'"{escaped}"'


def to_mermaid(definition: dict[str, Any]) -> str:
    ids = _node_ids(definition)
    lines = ["stateDiagram-v2"]
    for state, node in ids.items():
        lines.append(f'    state "{mermaid_text(state)}" as {node}')
    initial = definition.get("initial")
    if initial is not None and str(initial) in ids:
        lines.append(f"    [*] --> {ids[str(initial)]}")
    for source, target, label in edges(definition):
        lines.append(f"    {ids[source]} --> {ids[target]}: {mermaid_text(label)}")
    return "\n".join(lines) + "\n"


def to_dot(definition: dict[str, Any], name: str = "machine") -> str:
    ids = _node_ids(definition)
    initial = definition.get("initial")
    lines = [
        f"digraph {dot_string(name)} {{",
        "    rankdir=LR;",
        "    node [shape=box, style=rounded];",
        '    __start [shape=point, label=""];',
    ]
    for state, node in ids.items():
        extra = ", peripheries=2" if state == initial else ""
        lines.append(f"    {node} [label={dot_string(state)}{extra}];")
    if initial is not None and str(initial) in ids:
        lines.append(f"    __start -> {ids[str(initial)]};")
    for source, target, label in edges(definition):
        lines.append(f"    {ids[source]} -> {ids[target]} [label={dot_string(label)}];")
    lines.append("}")
    return "\n".join(lines) + "\n"


def render(definition: dict[str, Any], fmt: str, name: str = "machine") -> str:
    """The diagram of ``definition`` in ``fmt`` (``mermaid`` or ``dot``)."""
    if fmt == "mermaid":
        return to_mermaid(definition)
    if fmt == "dot":
        return to_dot(definition, name)
    raise ValueError(f"unknown diagram format {fmt!r} (expected mermaid or dot)")
