"""The interactive shell of ``rstmdb-cli`` (started when no command is given).

Each entry is split by :func:`~pyrstmdb.cli.lexer.split_line` and parsed by
the parser of the same command table as one-shot use, so ``create order 1``
and ``create-instance -m order -V 1`` are the same command. Command names are
case-insensitive. An entry continues over several lines while a JSON value
has open brackets. Errors print ``Error: …`` and the session goes on; ``quit``,
``exit``, ``q`` or Ctrl-D leave it.

On a terminal, prompt_toolkit provides line editing, history in
``$HOME/.rstmdb_history`` and tab completion of command names and of the
machine and instance ids seen in this session (:class:`~pyrstmdb.cli.known.Known`). Without a
terminal, entries are read from standard input with the same rules.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Iterator
from typing import TextIO

from pyrstmdb.cli import render
from pyrstmdb.cli.context import CliError, ConnectFailed, Context, Output, UsageError
from pyrstmdb.cli.known import Known
from pyrstmdb.cli.lexer import is_complete, split_line
from pyrstmdb.cli.outcome import EXIT_ERROR, EXIT_OK, emit, error_line
from pyrstmdb.cli.table import BY_NAME, ParserExit, commands_for, repl_parsers
from pyrstmdb.client import Client, ClientConnectionError
from pyrstmdb.errors import RstmdbError

PROMPT = "rstmdb> "
HISTORY_FILE = ".rstmdb_history"
HINT = "The connection is lost; the next command reconnects."


def help_text() -> str:
    lines = ["", "Available commands:"]
    for command in commands_for(repl=True):
        usage = command.usage or command.name
        aliases = f" ({', '.join(command.aliases)})" if command.aliases else ""
        lines.append(f"  {usage + aliases:<48} {command.summary}")
    lines.append("")
    lines.append("JSON arguments may span several lines; 'help COMMAND' shows its flags.")
    return "\n".join(lines)


class Repl:
    """One interactive session over one client."""

    def __init__(
        self, address: str, client: Client, out: TextIO, err: TextIO | None = None
    ) -> None:
        self.address = address
        self.client = client
        self.out = out
        self.err = err or out
        self.style = render.style_for(out)
        self.parsers = repl_parsers()
        self.known = Known()
        self.running = True
        self.json = False
        self.failures = 0

    def say(self, text: str) -> None:
        print(text, file=self.out, flush=True)

    def fail(self, text: str, *more: str) -> None:
        """Error lines (standard error when input is piped); one failure."""
        self.failures += 1
        for line in (text, *more):
            print(line, file=self.err, flush=True)

    def _error(self, error: BaseException) -> None:
        line = error_line(error)
        self.fail(f"{self.style.red(line.partition(':')[0])}:{line.partition(':')[2]}")

    # -- the Session protocol ---------------------------------------------------------------
    def quit(self) -> None:
        self.running = False

    def reconnect(self) -> str:
        failed = self._reconnect()
        return failed or self.style.green("Reconnected!")

    def _reconnect(self) -> str | None:
        """Reconnect; ``None`` on success, else the line that says why not."""
        self.say(f"Reconnecting to {self.address}...")
        try:
            self.client.reconnect()
        except (ClientConnectionError, RstmdbError) as exc:
            return f"{self.style.red('Reconnect failed')}: {exc}"
        return None

    # -- one entry ----------------------------------------------------------------------------
    def execute(self, text: str) -> None:
        try:
            words = split_line(text)
        except ValueError as exc:
            self._error(exc)
            return
        if not words:
            return
        name = words[0].lower()
        parser = self.parsers.get(name)
        if parser is None:
            self.fail(f"Unknown command: {words[0]}. Type 'help' for help.")
            return
        try:
            ns = parser.parse_args(words[1:])
        except UsageError as exc:
            self._usage(name, str(exc))
            return
        except ParserExit as done:
            if done.message:
                self.say(done.message.rstrip())
            return
        self._run(name, ns)

    def _usage(self, name: str, message: str) -> None:
        command = BY_NAME[name]
        self.fail(
            f"Usage: {command.usage or command.name}", f"{self.style.red('Error')}: {message}"
        )

    def _builtin(self, name: str, ns: argparse.Namespace) -> bool:
        command = BY_NAME[name].name
        if command == "quit":
            self.quit()
        elif command == "reconnect":
            self.say(self.reconnect())
        elif command == "help":
            self._help(ns.topic)
        elif command == "repl":
            self.say("Already in the REPL.")
        else:
            return False
        return True

    def _help(self, topic: str | None) -> None:
        parser = self.parsers.get(topic.lower()) if topic else None
        self.say(parser.format_help() if parser is not None else help_text())

    def _run(self, name: str, ns: argparse.Namespace) -> None:
        if self._builtin(name, ns):
            return
        command = BY_NAME[name]
        assert command.handler is not None
        if command.server and not self.client.connected and not self._reconnected():
            return
        json_output = self.json or bool(getattr(ns, "json", False))
        ctx = Context(
            ns, self.style, self.out, self.err, lambda: self.client, json_output, session=self
        )
        try:
            output = command.handler(ctx)
            if emit(ctx, output) != EXIT_OK:
                self.failures += 1
            if isinstance(output, Output):
                self.known.observe(command.name, output.doc)
        except UsageError as exc:
            self._usage(name, str(exc))
        except (ClientConnectionError, ConnectFailed) as exc:
            self._error(exc)
            self.say(self.style.yellow(HINT))
        except (RstmdbError, CliError) as exc:
            self._error(exc)
        except KeyboardInterrupt:
            self.say("^C")

    def _reconnected(self) -> bool:
        """Reconnect before a command once the connection is gone; ``False``: it failed."""
        failed = self._reconnect()
        if failed is not None:
            self.fail(failed)
            return False
        self.say(self.style.green("Reconnected!"))
        return True

    # -- the loop -----------------------------------------------------------------------------
    def loop(self, entries: Iterator[str]) -> None:
        for entry in entries:
            self.execute(entry)
            if not self.running:
                break


def _history_path() -> str:
    home = os.environ.get("HOME") or os.path.expanduser("~")
    return os.path.join(home, HISTORY_FILE)


def _piped_entries(stream: TextIO) -> Iterator[str]:
    pending = ""
    for line in stream:
        pending += line
        if is_complete(pending):
            yield pending.strip()
            pending = ""
    if pending.strip():
        yield pending.strip()


def _terminal_entries(repl: Repl) -> Iterator[str]:
    from pyrstmdb.cli.prompt import prompt_session

    session = prompt_session(_history_path(), repl.known, names=sorted(repl.parsers))
    while repl.running:
        try:
            yield session.prompt(PROMPT)
        except KeyboardInterrupt:
            repl.say("^C")
        except EOFError:
            repl.say("^D")
            return


def run_repl(ns: argparse.Namespace, connect: Callable[[], Client]) -> int:
    """The REPL; on a terminal with its banner, otherwise quietly (a script).

    Piped, errors go to standard error and the exit status is 1 when any entry failed.
    """
    out = sys.stdout
    style = render.style_for(out)
    interactive = sys.stdin.isatty() and out.isatty()
    banner = out if interactive else None
    if banner is not None:
        print(style.bold(style.cyan("rstmdb CLI")), file=banner)
        print(f"Connecting to {ns.server}...", file=banner, flush=True)
    try:
        client = connect()
    except ConnectFailed as exc:
        print(f"Connection failed: {exc}", file=sys.stderr)
        return EXIT_ERROR
    if banner is not None:
        print(style.green("Connected!"), file=banner)
        print("Type 'help' for available commands.\n", file=banner, flush=True)
    repl = Repl(ns.server, client, out, out if interactive else sys.stderr)
    repl.json = bool(ns.json)
    try:
        repl.known.load(client)
        repl.loop(_terminal_entries(repl) if interactive else _piped_entries(sys.stdin))
    finally:
        client.close()
        if banner is not None:
            print(style.dim("Disconnected."), file=banner, flush=True)
    return EXIT_ERROR if repl.failures and not interactive else EXIT_OK


__all__ = ["Repl", "run_repl"]
