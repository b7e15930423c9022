"""What a fast JSON parser lets through silently: duplicate keys and inexact integers.

orjson keeps the last of duplicate keys (``{"op":"PING","op":"INFO"}`` reads as
INFO) and turns an integer outside the 64-bit range into a float
(``99999999999999999999999`` becomes ``1e+23``). :func:`find_problem` tells a
request whose text had either from one that did not, given the text and what
orjson made of it, and names the key or the field.

Cost: the common case is one re-encoding of the decoded object and one byte
comparison (what a compact encoder such as orjson sends encodes back to the same
bytes, and equal bytes prove there was no duplicate and no inexact integer).
Otherwise two counts decide: every key has exactly one ``:`` outside strings, so
when the text has as many ``:`` as the re-encoding, no pair was lost; a run of
19 digits is needed for an integer beyond 64 bits. Only when those counts
cannot rule a problem out (colons or ``\\u`` escapes inside strings, long digit
runs) is the text parsed again, slowly and exactly, with the standard library.

Pure: no I/O. Raises nothing.
"""

from __future__ import annotations

import json
from typing import Any

import orjson

INT_MIN = -(2**63)
INT_MAX = 2**64 - 1
"""The integers orjson reads exactly; JSON integers outside this range are refused."""

_DIGITS_AS_ZERO = bytes.maketrans(b"123456789", b"0" * 9)
_LONG_DIGIT_RUN = b"0" * 19  # 10**18 <= 19 digits; fewer digits always fit


class _DuplicateKey(ValueError):
    def __init__(self, key: str) -> None:
        super().__init__(key)
        self.key = key


def _pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj: dict[str, Any] = {}
    for key, value in pairs:
        if key in obj:
            raise _DuplicateKey(key)
        obj[key] = value
    return obj


def find_problem(raw: bytes | str, decoded: Any) -> str | None:
    """Why ``raw`` (which orjson decoded to ``decoded``) must be refused, or ``None``."""
    text = raw.encode("utf-8") if isinstance(raw, str) else raw
    try:
        again = orjson.dumps(decoded)
    except orjson.JSONEncodeError:
        return _exact_problem(text)  # nested beyond what orjson writes back: look closely
    if again == text:
        return None
    if (
        text.count(b":") == again.count(b":")
        and b"\\u" not in text
        and _LONG_DIGIT_RUN not in text.translate(_DIGITS_AS_ZERO)
    ):
        return None
    return _exact_problem(text)


def _exact_problem(text: bytes) -> str | None:
    try:
        exact = json.loads(text, object_pairs_hook=_pairs)
    except _DuplicateKey as dup:
        return f"duplicate key '{dup.key}'"
    except RecursionError:
        return "request nested too deeply"
    except ValueError:
        return None  # orjson accepted it; nothing more to say
    path = _inexact_integer(exact, "")
    if path is not None:
        return (
            f"integer at '{path}' is outside the 64-bit range ({INT_MIN}..{INT_MAX}) "
            "and cannot be kept exactly"
        )
    return None


def _inexact_integer(value: Any, path: str) -> str | None:
    """The dotted path of an integer outside the exact range, or ``None``."""
    stack: list[tuple[Any, str]] = [(value, path)]
    while stack:
        node, where = stack.pop()
        if type(node) is int:
            if not INT_MIN <= node <= INT_MAX:
                return where or "(request)"
        elif type(node) is dict:
            stack.extend((item, f"{where}.{key}" if where else key) for key, item in node.items())
        elif type(node) is list:
            stack.extend((item, f"{where}[{n}]") for n, item in enumerate(node))
    return None
