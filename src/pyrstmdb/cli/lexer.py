"""Splitting a REPL line into arguments, and telling whether it is complete.

Words are split by :func:`shlex.split`, so quoting works as in a shell
(``put-machine order 1 '{"states": ...}'``). In addition, a bare JSON object
or array that starts a word is kept verbatim as one argument, spaces, quotes
and newlines included, so the JSON need not be quoted::

    apply o-1 PAY {"amount": 10, "note": "two words"}
    └─ shlex ──┘  └──────── one argument, as typed ────┘

:func:`is_complete` is False while a JSON value has unclosed brackets (or an
unterminated string) or a shell quote is open: the REPL then keeps reading
lines. :func:`split_line` raises ``ValueError`` for an unclosed quote.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass, field

_OPEN = "{["
_CLOSE = "}]"
_SPACE = " \t\r\n"


@dataclass(slots=True)
class _Scan:
    """Where each bare JSON span starts and ends, and whether the text is unfinished."""

    spans: list[tuple[int, int]] = field(default_factory=list)
    open_json: bool = False
    open_quote: bool = False


def _json_end(text: str, start: int) -> int:
    """Index after the JSON value starting at ``start``, or -1 if it is unfinished."""
    depth = 0
    in_string = False
    i = start
    while i < len(text):
        char = text[i]
        if in_string:
            if char == "\\":
                i += 1
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in _OPEN:
            depth += 1
        elif char in _CLOSE:
            depth -= 1
            if depth == 0:
                return i + 1
        i += 1
    return -1


def _skip_shell_word(text: str, i: int) -> tuple[int, bool]:
    """Index after the shell word at ``i`` and whether a quote was left open."""
    quote = ""
    while i < len(text):
        char = text[i]
        if quote:
            if char == "\\" and quote == '"':
                i += 1
            elif char == quote:
                quote = ""
        elif char in "'\"":
            quote = char
        elif char == "\\":
            i += 1
        elif char in _SPACE:
            break
        i += 1
    return i, bool(quote)


def _scan(text: str) -> _Scan:
    scan = _Scan()
    i = 0
    while i < len(text):
        if text[i] in _SPACE:
            i += 1
        elif text[i] in _OPEN:
            end = _json_end(text, i)
            if end < 0:
                scan.open_json = True
                return scan
            scan.spans.append((i, end))
            i = end
        else:
            i, scan.open_quote = _skip_shell_word(text, i)
    return scan


def is_complete(text: str) -> bool:
    """False while brackets or quotes are still open."""
    scan = _scan(text)
    return not (scan.open_json or scan.open_quote)


def split_line(text: str) -> list[str]:
    """The arguments of one (possibly multi-line) REPL entry."""
    scan = _scan(text)
    if scan.open_json:
        raise ValueError("unbalanced brackets in JSON argument")
    words: list[str] = []
    position = 0
    for start, end in scan.spans:
        words.extend(shlex.split(text[position:start]))
        words.append(text[start:end])
        position = end
    words.extend(shlex.split(text[position:]))
    return words
