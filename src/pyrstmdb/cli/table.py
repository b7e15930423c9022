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

from pyrstmdb.cli import backup, handlers, watch
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
    """One argparse argument; ``needed``: a flag the command cannot do without.

    Such flags are not argparse-``required`` (the positional form may give the value
    instead) but usage lines show them without brackets and their help says so.
    """

    flags: tuple[str, ...]
    options: dict[str, Any] = field(default_factory=dict)
    needed: bool = False

    @property
    def is_flag(self) -> bool:
        return self.flags[0].startswith("-")

    def usage(self) -> str:
        """``-i ID``, ``[--no-ctx]``, ``[ARG ...]``: this argument in a usage line."""
        action = self.options.get("action")
        metavar = self.options.get("metavar")
        if not self.is_flag:
            word = metavar or self.flags[0].upper()
            nargs = self.options.get("nargs")
            if nargs == "*":
                return f"[{word} ...]"
            return f"[{word}]" if nargs == "?" else word
        flag = self.flags[0]
        if action not in ("store_true", "store_false"):
            choices = self.options.get("choices")
            value = "|".join(choices) if choices else metavar or self.flags[-1].lstrip("-").upper()
            flag = f"{flag} {value}"
        return flag if self.needed else f"[{flag}]"


def arg(*flags: str, needed: bool = False, **options: Any) -> Arg:
    if needed:
        options["help"] = f"{options.get('help', '')} (required; or as a positional word)".strip()
    return Arg(flags, options, needed)


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
INSTANCE_ID = arg("id", metavar="ID", help="instance id")


def _filter(flag: str, what: str) -> Arg:
    return arg(flag, type=comma_list, metavar="LIST", help=f"only these {what} (comma-separated)")


COMMANDS: tuple[Command, ...] = (
    Command(
        "help",
        "Show the commands",
        None,
        (arg("topic", nargs="?", metavar="COMMAND", help="show the flags of this command"),),
        ("?",),
        "help",
    ),
    Command("quit", "Leave the REPL", None, aliases=("exit", "q"), usage="quit", where="repl"),
    Command("reconnect", "Reconnect to the server", None, aliases=("rc",), where="repl"),
    Command("repl", "Start the interactive shell (the default)", None, where="cli"),
    Command(
        "completion",
        "Print the shell completion script (bash or zsh)",
        None,
        (arg("shell", choices=("bash", "zsh"), metavar="SHELL", help="bash or zsh"),),
        usage="completion bash|zsh",
        where="cli",
        server=False,
    ),
    Command("ping", "Ping the server", handlers.ping, usage="ping"),
    Command("info", "Show server information", handlers.info, usage="info"),
    Command(
        "put-machine",
        "Register a machine definition",
        handlers.put_machine,
        (
            arg("-n", "--name", metavar="NAME", help="machine name", needed=True),
            arg("-v", "--version", type=uint, metavar="VERSION", help="version", needed=True),
            arg("words", nargs="*", metavar="DEFINITION", help="the definition: JSON or @file"),
        ),
        ("pm",),
        "put-machine NAME VERSION DEFINITION",
    ),
    Command(
        "get-machine",
        "Show a machine definition (latest version by default)",
        handlers.get_machine,
        (
            arg("-n", "--name", metavar="NAME", help="machine name"),
            arg("-v", "--version", type=uint, metavar="VERSION", help="version (default: latest)"),
            arg("name_pos", nargs="?", metavar="NAME", help="machine name"),
            arg("version_pos", nargs="?", metavar="VERSION", help="version"),
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
            arg("-m", "--machine", metavar="MACHINE", help="machine name", needed=True),
            arg(
                "-V",
                "--version",
                "--machine-version",
                dest="machine_version",
                type=uint,
                metavar="VERSION",
                help="machine version",
                needed=True,
            ),
            arg("-i", "--id", metavar="ID", help="instance id (default: a new UUID)"),
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
        (INSTANCE_ID,),
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
            arg("--machine", metavar="MACHINE", help="only instances of this machine"),
            arg("--state", metavar="STATE", help="only instances in this state"),
            arg("--limit", type=uint, metavar="N", help="at most N instances"),
            arg("--offset", type=uint, metavar="N", help="skip the first N"),
            WORDS,
        ),
        ("li",),
        "list-instances [MACHINE] [STATE]",
    ),
    Command(
        "delete-instance",
        "Delete an instance",
        handlers.delete_instance,
        (INSTANCE_ID, IDEMPOTENCY),
        ("delete", "d"),
        "delete ID",
    ),
    Command(
        "apply-event",
        "Apply an event to an instance",
        handlers.apply_event,
        (
            arg("-i", "--instance", metavar="ID", help="instance id", needed=True),
            arg("-e", "--event", metavar="EVENT", help="event name", needed=True),
            arg("-p", "--payload", metavar="JSON", help="event payload: JSON or @file"),
            arg(
                "--expected-state",
                metavar="STATE",
                help="fail with a conflict unless the instance is in this state",
            ),
            arg(
                "--expected-wal-offset",
                type=uint,
                metavar="OFFSET",
                help="fail with a conflict unless this is the instance's last WAL offset",
            ),
            arg("--event-id", metavar="ID", help="an id stored with the event"),
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
            arg(
                "--mode",
                choices=("atomic", "best_effort"),
                default="atomic",
                help="atomic: all or nothing (default); best_effort: each op on its own",
            ),
            arg("ops", metavar="OPS_JSON", help='[{"op": ..., "params": {...}}, ...] or @file'),
        ),
        usage="batch [--mode atomic|best_effort] OPS_JSON",
    ),
    Command(
        "snapshot-instance",
        "Write a snapshot of an instance",
        handlers.snapshot_instance,
        (INSTANCE_ID,),
        usage="snapshot-instance ID",
    ),
    Command(
        "wal-read",
        "Read WAL records (a page at a time)",
        handlers.wal_read,
        (
            arg(
                "-f",
                "--from",
                "--from-offset",
                dest="from_offset",
                type=uint,
                metavar="OFFSET",
                help="first offset to read (default: the start of the log)",
            ),
            arg(
                "-l",
                "--limit",
                type=uint,
                metavar="N",
                help=f"at most N records (default: {handlers.WAL_PAGE})",
            ),
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
        "backup",
        "Write a consistent backup of the server to FILE",
        backup.backup,
        (arg("file", metavar="FILE", help="archive to write (replaced only once complete)"),),
        usage="backup FILE",
    ),
    Command(
        "hash-token",
        "Print the SHA-256 hash of a token (offline)",
        handlers.hash_token,
        (arg("plain_token", metavar="TOKEN", help="the token to hash"),),
        usage="hash-token TOKEN",
        server=False,
    ),
    Command(
        "watch-instance",
        "Stream the events of one instance",
        watch.watch_instance,
        (INSTANCE_ID, NO_CTX, FROM_OFFSET),
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
        (arg("subscription_id", metavar="SUB_ID", help="the subscription id"),),
        usage="unwatch SUB_ID",
    ),
)

BY_NAME: dict[str, Command] = {
    name: command for command in COMMANDS for name in (command.name, *command.aliases)
}


def commands_for(repl: bool) -> list[Command]:
    excluded = "cli" if repl else "repl"
    return [command for command in COMMANDS if command.where != excluded]


def _add(parser: argparse._ActionsContainer, item: Arg, default: Any = None) -> None:
    """Add ``item`` to ``parser``, without the option strings the parser already has."""
    options = dict(item.options)
    flags = item.flags
    if item.is_flag:
        taken = parser._option_string_actions
        flags = tuple(flag for flag in flags if flag not in taken)
        if not flags:
            return
        if default is not None:
            options["default"] = default
    parser.add_argument(*flags, **options)


def add_commands(
    subparsers: argparse._SubParsersAction[CommandParser],
    repl: bool,
    shared: tuple[Arg, ...] = (),
) -> dict[str, CommandParser]:
    """One subparser per command (aliases included); returns them by every name.

    ``shared`` (the global options) are accepted after the command too; there they only
    set a value when given, so one placed before the command is not overwritten.
    """
    parsers: dict[str, CommandParser] = {}
    for command in commands_for(repl):
        words = " ".join(item.usage() for item in command.args)
        parser = subparsers.add_parser(
            command.name,
            aliases=list(command.aliases),
            help=command.summary,
            description=command.summary,
            usage=f"%(prog)s {words}".rstrip() + (" [OPTIONS]" if shared else ""),
        )
        for item in command.args:
            _add(parser, item)
        group = parser.add_argument_group("global options") if shared else parser
        for item in shared:
            _add(group, item, default=argparse.SUPPRESS)
        parser.set_defaults(command=command.name)
        for name in (command.name, *command.aliases):
            parsers[name] = parser
    return parsers


JSON_OPTION = arg("--json", action="store_true", help="print the result as one JSON document")


def repl_parsers() -> dict[str, CommandParser]:
    """The REPL's parsers: the same table, with the REPL-only commands (and ``--json``)."""
    root = CommandParser(prog="", add_help=False)
    return add_commands(root.add_subparsers(parser_class=CommandParser), True, (JSON_OPTION,))
