"""Machine definitions: validation, normalized form, checksum, compilation.

A definition is the JSON object of SEMANTICS §1.1. ``compile_definition``
validates it (first failure wins, SEMANTICS §1.2), builds the normalized form
(§1.3), its SHA-256 checksum over the canonical serialization, and a transition
table with every guard compiled once. Several transitions may share a
``(from, event)`` pair (⚑S1): they are kept in definition order and the first
whose guard passes wins.

:func:`check_bounds` refuses a new definition over the size limits
(:data:`MAX_DEFINITION_BYTES`, :data:`MAX_STATES`, :data:`MAX_TRANSITIONS`,
:data:`MAX_GUARD_CHARS`, nesting deeper than ``MAX_JSON_DEPTH``) before any
compiling work is spent on it.

Raises ``BadRequest`` (⚑P6) with a message naming the offending field or
transition (or the limit) and, for guards, the position in the guard text.
Pure: no I/O.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from pyrstmdb.engine.commands import MAX_JSON_DEPTH, check_depth, json_size
from pyrstmdb.engine.guard import CompiledGuard, GuardSyntaxError, compile_guard
from pyrstmdb.errors import BadRequest

_PREFIX = "invalid machine definition: "

MAX_DEFINITION_BYTES = 1024 * 1024
"""Largest definition, as compact JSON."""
MAX_STATES = 10_000
"""Most entries in ``states``."""
MAX_TRANSITIONS = 10_000
"""Most entries in ``transitions``."""
MAX_GUARD_CHARS = 4096
"""Longest guard expression, in characters."""


@dataclass(frozen=True, slots=True)
class Transition:
    index: int
    sources: tuple[str, ...]
    event: str
    target: str
    guard: CompiledGuard | None

    def describe(self) -> str:
        sources = "|".join(self.sources) or "(none)"
        return f"transition {self.index} ({sources} -{self.event}-> {self.target})"


@dataclass(frozen=True, slots=True)
class MachineDefinition:
    """A validated, compiled machine version."""

    name: str
    version: int
    definition: dict[str, Any]  # as received, stored in the log
    normalized: dict[str, Any]
    checksum: str
    states: tuple[str, ...]
    initial: str
    table: dict[tuple[str, str], tuple[Transition, ...]]

    @property
    def transition_count(self) -> int:
        return len(self.normalized["transitions"])


def _fail(message: str, **details: Any) -> BadRequest:
    return BadRequest(_PREFIX + message, details or None)


def _string_list(value: Any, what: str) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise _fail(f"{what} must be an array of strings")
    return value


def _too_big(what: str, size: int, limit: int, **details: Any) -> BadRequest:
    return _fail(f"{what} is {size}, over the limit of {limit}", size=size, limit=limit, **details)


def check_bounds(definition: dict[str, Any]) -> int:
    """Refuse a definition over the size limits; returns its size in bytes as compact JSON.

    Cheap next to compiling: every new definition passes it before it is compiled.
    Definitions read back from the log or a checkpoint are not held to it.
    """
    size = json_size("definition", definition)
    if size > MAX_DEFINITION_BYTES:
        raise _too_big("definition size in bytes", size, MAX_DEFINITION_BYTES, field="definition")
    check_depth("definition", definition, MAX_JSON_DEPTH)
    states, transitions = definition.get("states"), definition.get("transitions")
    if isinstance(states, list) and len(states) > MAX_STATES:
        raise _too_big("number of states", len(states), MAX_STATES, field="states")
    if isinstance(transitions, list):
        if len(transitions) > MAX_TRANSITIONS:
            raise _too_big(
                "number of transitions", len(transitions), MAX_TRANSITIONS, field="transitions"
            )
        for index, raw in enumerate(transitions):
            guard = raw.get("guard") if isinstance(raw, dict) else None
            if isinstance(guard, str) and len(guard) > MAX_GUARD_CHARS:
                raise _too_big(
                    f"transition {index} guard length in characters",
                    len(guard),
                    MAX_GUARD_CHARS,
                    transition=index,
                    field="guard",
                )
    return size


def _check_top_level(definition: Any) -> tuple[list[str], str, list[Any]]:
    if not isinstance(definition, dict):
        raise _fail("definition must be a JSON object")
    for key in ("states", "initial", "transitions"):
        if key not in definition:
            raise _fail(f"missing field '{key}'", field=key)
    states = _string_list(definition["states"], "'states'")
    initial = definition["initial"]
    if not isinstance(initial, str):
        raise _fail("'initial' must be a string", field="initial")
    transitions = definition["transitions"]
    if not isinstance(transitions, list):
        raise _fail("'transitions' must be an array", field="transitions")
    return states, initial, transitions


def _transition_fields(index: int, raw: Any) -> tuple[list[str], str, str, str | None]:
    where = f"transition {index}"
    if not isinstance(raw, dict):
        raise _fail(f"{where} must be an object", transition=index)
    for key in ("from", "event", "to"):
        if key not in raw:
            raise _fail(f"{where} is missing field '{key}'", transition=index, field=key)
    sources = raw["from"]
    if isinstance(sources, str):
        sources = [sources]
    sources = _string_list(sources, f"{where} 'from'")
    event, target, guard = raw["event"], raw["to"], raw.get("guard")
    if not isinstance(event, str):
        raise _fail(f"{where} 'event' must be a string", transition=index, field="event")
    if not isinstance(target, str):
        raise _fail(f"{where} 'to' must be a string", transition=index, field="to")
    if guard is not None and not isinstance(guard, str):
        raise _fail(f"{where} 'guard' must be a string", transition=index, field="guard")
    return sources, event, target, guard


def _compile_transition(index: int, raw: Any, state_set: frozenset[str]) -> Transition:
    sources, event, target, guard_text = _transition_fields(index, raw)
    if target not in state_set:
        raise _fail(f"transition target '{target}' not in states list", transition=index)
    guard: CompiledGuard | None = None
    if guard_text is not None:
        try:
            guard = compile_guard(guard_text)
        except GuardSyntaxError as err:
            where = f"transition {index} ({'|'.join(sources)} -{event}-> {target})"
            raise BadRequest(
                f"invalid guard expression in {where}: {err}",
                {"transition": index, "guard": guard_text, "position": err.position},
            ) from None
    for source in sources:
        if source not in state_set:
            raise _fail(f"transition source '{source}' not in states list", transition=index)
    return Transition(index, tuple(sources), event, target, guard)


def _normalize(
    states: list[str], initial: str, transitions: list[Transition], meta: Any
) -> dict[str, Any]:
    normalized: dict[str, Any] = {
        "states": list(states),
        "initial": initial,
        "transitions": [_normal_transition(t) for t in transitions],
    }
    if meta is not None:
        normalized["meta"] = meta
    return normalized


def _normal_transition(t: Transition) -> dict[str, Any]:
    out: dict[str, Any] = {"from": list(t.sources), "event": t.event, "to": t.target}
    if t.guard is not None:
        out["guard"] = t.guard.source
    return out


def _sorted_json(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _sorted_json(value[key]) for key in sorted(value)}
    if isinstance(value, list):
        return [_sorted_json(item) for item in value]
    return value


def canonical_json(normalized: dict[str, Any]) -> str:
    """The canonical serialization: compact, raw UTF-8, ``meta`` objects key-sorted."""
    body = dict(normalized)
    if "meta" in body:
        body["meta"] = _sorted_json(body["meta"])
    return json.dumps(body, ensure_ascii=False, separators=(",", ":"), allow_nan=False)


def checksum_of(normalized: dict[str, Any]) -> str:
    return hashlib.sha256(canonical_json(normalized).encode("utf-8")).hexdigest()


def _build_table(
    transitions: list[Transition],
) -> dict[tuple[str, str], tuple[Transition, ...]]:
    table: dict[tuple[str, str], list[Transition]] = {}
    for transition in transitions:
        for source in transition.sources:
            table.setdefault((source, transition.event), []).append(transition)
    return {key: tuple(candidates) for key, candidates in table.items()}


def compile_definition(name: str, version: int, definition: Any) -> MachineDefinition:
    """Validate and compile a definition; raises ``BadRequest`` on the first problem."""
    states, initial, raw_transitions = _check_top_level(definition)
    if initial not in states:
        raise _fail(f"initial state '{initial}' not in states list", field="initial")
    state_set = frozenset(states)
    transitions = [
        _compile_transition(index, raw, state_set) for index, raw in enumerate(raw_transitions)
    ]
    normalized = _normalize(states, initial, transitions, definition.get("meta"))
    try:
        checksum = checksum_of(normalized)
    except ValueError as err:  # non-finite floats in meta
        raise _fail(f"definition is not valid JSON: {err}") from None
    return MachineDefinition(
        name=name,
        version=version,
        definition=definition,
        normalized=normalized,
        checksum=checksum,
        states=tuple(states),
        initial=initial,
        table=_build_table(transitions),
    )
