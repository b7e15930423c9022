"""What a command handler works with: parsed arguments, output streams, the client.

Owns :class:`Context` (handed to every handler), :class:`Output` (what a
handler returns: the ``--json`` document and the human text), the CLI's own
errors and the helpers that read arguments:

* :class:`UsageError` — bad or missing arguments (exit 2; ``Usage:`` in the REPL);
* :class:`CliError` — a local failure such as malformed JSON or an unreadable
  ``@file`` (``Error: …``, exit 1);
* :class:`ConnectFailed` — connecting, HELLO or AUTH failed (``Connection failed: …``).
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol, TextIO

from pyrstmdb.cli.render import Style
from pyrstmdb.client import Client


class UsageError(Exception):
    """Arguments that do not fit the command; ``usage`` is the parser's usage line, if any."""

    def __init__(self, message: str, usage: str = "") -> None:
        super().__init__(message)
        self.usage = usage


class CliError(Exception):
    """A failure of the command line itself (not of the server)."""


class ConnectFailed(Exception):
    """The server could not be reached, greeted or authenticated with."""


class Session(Protocol):
    """The REPL, as seen by its own commands (``quit``, ``reconnect``, ``help``)."""

    def quit(self) -> None: ...

    def reconnect(self) -> str: ...


@dataclass(slots=True)
class Output:
    """A handler's answer: ``doc`` for ``--json`` (``None``: print ``text`` anyway).

    ``failure``: printed after the result on stderr, and the command exits 1 (a
    ``best_effort`` batch with failed ops); ``note``: a hint for stderr (exit 0).
    """

    doc: dict[str, Any] | None
    text: str
    failure: str | None = None
    note: str | None = None


@dataclass(slots=True)
class Context:
    ns: argparse.Namespace
    style: Style
    out: TextIO
    err: TextIO
    connect: Callable[[], Client]
    json: bool = False
    session: Session | None = None
    _client: Client | None = field(default=None, repr=False)

    @property
    def client(self) -> Client:
        """The connected client (connecting now if needed; raises :class:`ConnectFailed`)."""
        if self._client is None:
            self._client = self.connect()
        return self._client


# -- argument helpers ---------------------------------------------------------------------------
def uint(text: str) -> int:
    """argparse type: a non-negative integer."""
    try:
        value = int(text, 10)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a non-negative integer, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected a non-negative integer, got {text!r}")
    return value


def comma_list(text: str) -> list[str]:
    """argparse type: ``a,b,c`` (empty items dropped)."""
    return [item.strip() for item in text.split(",") if item.strip()]


def json_arg(text: str, what: str) -> Any:
    """Inline JSON, or ``@path`` naming a file holding it."""
    source = text
    if text.startswith("@"):
        try:
            with open(text[1:], encoding="utf-8") as handle:
                source = handle.read()
        except OSError as exc:
            raise CliError(f"cannot read {what} file {text[1:]}: {exc.strerror or exc}") from None
    try:
        return json.loads(source)
    except json.JSONDecodeError as exc:
        raise CliError(f"invalid JSON in {what}: {exc}") from None


def optional_json(text: str | None, what: str) -> Any:
    return None if text is None else json_arg(text, what)


class Positionals:
    """Fills fields from flags first, then from the positional words in order."""

    def __init__(self, words: list[str] | None) -> None:
        self._words = list(words or [])

    def take(self, flag_value: Any, label: str, required: bool = True) -> Any:
        if flag_value is not None:
            return flag_value
        if self._words:
            return self._words.pop(0)
        if required:
            raise UsageError(f"missing {label}")
        return None

    def take_uint(self, flag_value: int | None, label: str, required: bool = True) -> int | None:
        value = self.take(flag_value, label, required)
        if value is None or isinstance(value, int):
            return value
        try:
            return uint(value)
        except argparse.ArgumentTypeError as exc:
            raise UsageError(f"{label}: {exc}") from None

    def rest(self) -> list[str]:
        words, self._words = self._words, []
        return words

    def done(self) -> None:
        if self._words:
            raise UsageError(f"unexpected arguments: {' '.join(self._words)}")
