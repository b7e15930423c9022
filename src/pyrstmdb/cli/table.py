"""The one command table of ``rstmdb-cli`` and the argparse parsers built from it.

Each :class:`Command` names its handler, arguments, aliases and the short
form shown by the REPL. One-shot use and the REPL parse with parsers built
from this table by :func:`build_parser`: the REPL's ``create``, ``apply``,
``li``… are aliases of the same subcommands, whose positional words stand in
for their flags. Parsers raise :class:`~pyrstmdb.cli.context.UsageError`
instead of exiting, and :class:`ParserExit` for ``--help``/``--version``.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, NoReturn

from pyrstmdb.cli import handlers, watch
from pyrstmdb.cli.context import Context, Output, UsageError, comma_list, uint

Handler = Callable[[Context], Output | None]


class ParserExit(Exception):
    """``--help`` or ``--version`` was printed; leave with ``status``."""

    def __init__(self, status: int, message: str | None) -> None:
        super().__init__(message or "")
        self.status = status
        self.message = message


class CommandParser(argparse.ArgumentParser):
    """An ArgumentParser that raises instead of exiting the process."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(message, self.format_usage())

    def exit(self, status: int = 0, message: str | None = None) -> NoReturn:
        raise ParserExit(status, message)


@dataclass(frozen=True, slots=True)
class Arg:
    flags: tuple[str, ...]
    options: dict[str, Any] = field(default_factory=dict)


def arg(*flags: str, **options: Any) -> Arg:
    return Arg(flags, options)


@dataclass(frozen=True, slots=True)
class Command:
    """One subcommand. ``where``: ``both``, ``cli`` (one-shot only) or ``repl``."""

    name: str
    summary: str
    handler: Handler | None
    args: tuple[Arg, ...] = ()
    aliases: tuple[str, ...] = ()
    usage: str = ""
    where: str = "both"
    server: bool = True


WORDS = arg("words", nargs="*", metavar="ARG", help="positional form (see the REPL usage)")
IDEMPOTENCY = arg("--idempotency-key", metavar="KEY", help="retry-safe key for this write")
FROM_OFFSET = arg("--from-offset", type=uint, metavar="OFFSET", help="replay history from here")
NO_CTX = arg("--no-ctx", action="store_true", help="leave the context out of events")


def _filter(flag: str, what: str) -> Arg:
    return arg(flag, type=comma_list, metavar="LIST", help=f"only these {what} (comma-separated)")


COMMANDS: tuple[Command, ...] = (
    Command("help", "Show the commands", None, (arg("topic", nargs="?"),), ("?",), "help"),
    Command("quit", "Leave the REPL", None, aliases=("exit", "q"), usage="quit", where="repl"),
    Command("reconnect", "Reconnect to the server", None, aliases=("rc",), where="repl"),
    Command("repl", "Start the interactive shell (the default)", None, where="cli"),
    Command("ping", "Ping the server", handlers.ping, usage="ping"),
    Command("info", "Show server information", handlers.info, usage="info"),
    Command(
        "put-machine",
        "Register a machine definition",
        handlers.put_machine,
        (arg("-n", "--name"), arg("-v", "--version", type=uint), WORDS),
        ("pm",),
        "put-machine NAME VERSION DEFINITION",
    ),
    Command(
        "get-machine",
        "Show a machine definition (latest version by default)",
        handlers.get_machine,
        (
            arg("-n", "--name"),
            arg("-v", "--version", type=uint),
            arg("name_pos", nargs="?", metavar="NAME"),
            arg("version_pos", nargs="?", metavar="VERSION"),
            arg(
                "--format",
                choices=("text", "mermaid", "dot"),
                default="text",
                help="text (default), or the state diagram as Mermaid or Graphviz DOT",
            ),
        ),
        ("gm",),
        "get-machine NAME [VERSION] [--format mermaid|dot]",
    ),
    Command("list-machines", "List machines", handlers.list_machines, (), ("lm",), "list-machines"),
    Command(
        "create-instance",
        "Create an instance",
        handlers.create_instance,
        (
            arg("-m", "--machine"),
            arg("-V", "--version", "--machine-version", dest="machine_version", type=uint),
            arg("-i", "--id"),
            arg("-c", "--ctx", metavar="JSON", help="initial context: JSON or @file"),
            IDEMPOTENCY,
            WORDS,
        ),
        ("create", "c"),
        "create MACHINE VERSION [ID] [CTX_JSON]",
    ),
    Command(
        "get-instance",
        "Show an instance",
        handlers.get_instance,
        (arg("id", metavar="ID"),),
        ("get", "g"),
        "get ID",
    ),
    Command(
        "history",
        "Show an instance's history (newest entries, oldest first)",
        handlers.history,
        (
            arg("-i", "--instance", metavar="ID"),
            arg("-l", "--limit", type=uint, help="at most this many entries (default 100)"),
            arg("--before-offset", type=uint, metavar="OFFSET", help="entries older than this"),
            WORDS,
        ),
        ("h",),
        "history ID",
    ),
    Command(
        "list-instances",
        "List instances",
        handlers.list_instances,
        (
            arg("--machine"),
            arg("--state"),
            arg("--limit", type=uint),
            arg("--offset", type=uint),
            WORDS,
        ),
        ("li",),
        "list-instances [MACHINE] [STATE]",
    ),
    Command(
        "delete-instance",
        "Delete an instance",
        handlers.delete_instance,
        (arg("id", metavar="ID"), IDEMPOTENCY),
        ("delete", "d"),
        "delete ID",
    ),
    Command(
        "apply-event",
        "Apply an event to an instance",
        handlers.apply_event,
        (
            arg("-i", "--instance"),
            arg("-e", "--event"),
            arg("-p", "--payload", metavar="JSON", help="event payload: JSON or @file"),
            arg("--expected-state", metavar="STATE"),
            arg("--expected-wal-offset", type=uint, metavar="OFFSET"),
            arg("--event-id", metavar="ID"),
            IDEMPOTENCY,
            WORDS,
        ),
        ("apply", "a"),
        "apply ID EVENT [PAYLOAD_JSON]",
    ),
    Command(
        "batch",
        "Run several write ops",
        handlers.batch,
        (
            arg("--mode", choices=("atomic", "best_effort"), default="atomic"),
            arg("ops", metavar="OPS_JSON", help='[{"op": ..., "params": {...}}, ...] or @file'),
        ),
        usage="batch [--mode atomic|best_effort] OPS_JSON",
    ),
    Command(
        "snapshot-instance",
        "Write a snapshot of an instance",
        handlers.snapshot_instance,
        (arg("id", metavar="ID"),),
        usage="snapshot-instance ID",
    ),
    Command(
        "wal-read",
        "Read WAL records",
        handlers.wal_read,
        (
            arg("-f", "--from", "--from-offset", dest="from_offset", type=uint, metavar="OFFSET"),
            arg("-l", "--limit", type=uint),
            WORDS,
        ),
        ("wal",),
        "wal [FROM] [LIMIT]",
    ),
    Command("wal-stats", "Show WAL statistics", handlers.wal_stats, (), ("ws",), "wal-stats"),
    Command(
        "compact",
        "Compact the WAL",
        handlers.compact,
        (arg("-f", "--force", action="store_true", help="snapshot every instance first"),),
        usage="compact [-f]",
    ),
    Command("flush-all", "Remove everything (if allowed)", handlers.flush_all, usage="flush-all"),
    Command(
        "hash-token",
        "Print the SHA-256 hash of a token (offline)",
        handlers.hash_token,
        (arg("token", metavar="TOKEN"),),
        usage="hash-token TOKEN",
        server=False,
    ),
    Command(
        "watch-instance",
        "Stream the events of one instance",
        watch.watch_instance,
        (arg("id", metavar="ID"), NO_CTX, FROM_OFFSET),
        usage="watch-instance ID [--no-ctx] [--from-offset N]",
    ),
    Command(
        "watch-all",
        "Stream all events passing the filters",
        watch.watch_all,
        (
            _filter("--machines", "machines"),
            _filter("--from-states", "source states"),
            _filter("--to-states", "target states"),
            _filter("--events", "events"),
            NO_CTX,
            FROM_OFFSET,
        ),
        usage="watch-all [--machines L] [--from-states L] [--to-states L] [--events L]",
    ),
    Command(
        "unwatch",
        "Cancel a subscription of this connection",
        handlers.unwatch,
        (arg("subscription_id", metavar="SUB_ID"),),
        usage="unwatch SUB_ID",
    ),
)

BY_NAME: dict[str, Command] = {
    name: command for command in COMMANDS for name in (command.name, *command.aliases)
}


def commands_for(repl: bool) -> list[Command]:
    excluded = "cli" if repl else "repl"
    return [command for command in COMMANDS if command.where != excluded]


def add_commands(
    subparsers: argparse._SubParsersAction[CommandParser], repl: bool
) -> dict[str, CommandParser]:
    """One subparser per command (aliases included); returns them by every name."""
    parsers: dict[str, CommandParser] = {}
    for command in commands_for(repl):
        parser = subparsers.add_parser(
            command.name,
            aliases=list(command.aliases),
            help=command.summary,
            description=command.summary,
        )
        for item in command.args:
            parser.add_argument(*item.flags, **item.options)
        parser.set_defaults(command=command.name)
        for name in (command.name, *command.aliases):
            parsers[name] = parser
    return parsers


def repl_parsers() -> dict[str, CommandParser]:
    """The REPL's parsers: the same table, with the REPL-only commands."""
    root = CommandParser(prog="", add_help=False)
    return add_commands(root.add_subparsers(parser_class=CommandParser), repl=True)
