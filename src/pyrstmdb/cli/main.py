"""``rstmdb-cli``: run one command, or the REPL when none is given.

::

    rstmdb-cli [GLOBAL OPTIONS] COMMAND [ARGS]
    rstmdb-cli --json -s db.example:7401 get-instance o-1

Global options may come before or after the command; flags beat the environment
(``RSTMDB_SERVER``, ``RSTMDB_TOKEN``, ``RSTMDB_TLS``, ``RSTMDB_CA_CERT``,
``RSTMDB_CLIENT_CERT``, ``RSTMDB_CLIENT_KEY``), which beats the defaults.
``--json`` prints exactly one JSON document: the protocol result object.

Exit status: 0 success; 1 a server error (``Error [CODE]: <message>`` on stderr),
a ``best_effort`` batch with failed ops, a local failure, or ``Connection failed:
<address>: <reason>``; 2 a usage error; 130 interrupted. No Python traceback
reaches the user.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Mapping, Sequence

from pyrstmdb import __version__
from pyrstmdb.cli import render
from pyrstmdb.cli.context import CliError, ConnectFailed, Context, UsageError
from pyrstmdb.cli.outcome import EXIT_ERROR, EXIT_INTERRUPTED, EXIT_OK, emit, report
from pyrstmdb.cli.table import (
    BY_NAME,
    JSON_OPTION,
    Arg,
    CommandParser,
    ParserExit,
    add_commands,
    arg,
    commands_for,
)
from pyrstmdb.client import Client, ClientConnectionError
from pyrstmdb.client.options import DEFAULT_ADDRESS
from pyrstmdb.config import parse_address
from pyrstmdb.errors import RstmdbError

CLIENT_NAME = "rstmdb-cli"
_TRUE = {"1", "true", "yes", "on"}


def _address(text: str) -> str:
    try:
        parse_address(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return text


def global_options(env: Mapping[str, str]) -> tuple[Arg, ...]:
    """The global options, with their defaults from ``env`` (accepted before or after a command)."""
    server = env.get("RSTMDB_SERVER") or DEFAULT_ADDRESS
    tls_default = env.get("RSTMDB_TLS", "").strip().lower() in _TRUE
    return (
        arg(
            "-s",
            "--server",
            type=_address,
            default=server,
            metavar="ADDR",
            help="server host:port (env RSTMDB_SERVER; default 127.0.0.1:7401)",
        ),
        arg(
            "-t",
            "--token",
            default=env.get("RSTMDB_TOKEN"),
            metavar="TOKEN",
            help="authentication token (env RSTMDB_TOKEN)",
        ),
        arg(
            "--tls",
            action="store_true",
            default=tls_default,
            help="connect with TLS (env RSTMDB_TLS)",
        ),
        arg(
            "--ca-cert",
            default=env.get("RSTMDB_CA_CERT"),
            metavar="PATH",
            help="CA bundle; implies TLS (env RSTMDB_CA_CERT)",
        ),
        arg(
            "--client-cert",
            default=env.get("RSTMDB_CLIENT_CERT"),
            metavar="PATH",
            help="client certificate for mTLS (env RSTMDB_CLIENT_CERT)",
        ),
        arg(
            "--client-key",
            default=env.get("RSTMDB_CLIENT_KEY"),
            metavar="PATH",
            help="its key (env RSTMDB_CLIENT_KEY)",
        ),
        arg("-k", "--insecure", action="store_true", help="TLS without certificate verification"),
        arg("--server-name", metavar="NAME", help="TLS server name (default: the host)"),
        JSON_OPTION,
    )


def build_parser(env: Mapping[str, str]) -> CommandParser:
    parser = CommandParser(
        prog="rstmdb-cli",
        usage="rstmdb-cli [OPTIONS] COMMAND [ARGS] [OPTIONS]",
        description="Command line for the rstmdb state machine database",
        epilog="Options may come before or after the command. "
        "'rstmdb-cli COMMAND --help' shows the arguments of a command; "
        "'rstmdb-cli completion bash|zsh' prints a shell completion script. See docs/CLI.md.",
    )
    shared = global_options(env)
    for item in shared:
        parser.add_argument(*item.flags, **item.options)
    parser.add_argument("-V", "--version", action="version", version=f"rstmdb-cli {__version__}")
    sub = parser.add_subparsers(
        dest="command", metavar="COMMAND", parser_class=CommandParser, prog="rstmdb-cli"
    )
    add_commands(sub, repl=False, shared=shared)
    return parser


def client_factory(ns: argparse.Namespace) -> Callable[[], Client]:
    """Connects with the global options; raises :class:`ConnectFailed` naming the reason."""
    if bool(ns.client_cert) != bool(ns.client_key):
        raise CliError("--client-cert and --client-key must be used together")

    def connect() -> Client:
        try:
            return Client(
                ns.server,
                token=ns.token,
                tls=ns.tls,
                ca_file=ns.ca_cert,
                cert_file=ns.client_cert,
                key_file=ns.client_key,
                insecure=ns.insecure,
                server_name=ns.server_name,
                client_name=CLIENT_NAME,
            )
        except ClientConnectionError as exc:
            raise ConnectFailed(_with_hint(str(exc), ns)) from None
        except RstmdbError as exc:
            raise ConnectFailed(f"{ns.server}: {exc.message}") from None

    return connect


def _with_hint(reason: str, ns: argparse.Namespace) -> str:
    """A plain connection to a TLS port breaks in the handshake: say what to try."""
    plain = not (ns.tls or ns.ca_cert or ns.client_cert or ns.insecure)
    if plain and "during handshake" in reason:
        return f"{reason} (is the server using TLS? try --tls, or --ca-cert PATH)"
    return reason


def run_command(ctx: Context) -> int:
    command = BY_NAME[ctx.ns.command]
    if command.handler is None:
        print(help_text(), file=ctx.out)
        return EXIT_OK
    try:
        return emit(ctx, command.handler(ctx))
    except (CliError, ConnectFailed, UsageError, RstmdbError, ClientConnectionError) as exc:
        return report(exc, ctx.err)
    finally:
        if ctx._client is not None:
            ctx._client.close()


def help_text() -> str:
    lines = ["Commands:"]
    for command in commands_for(repl=False):
        names = ", ".join((command.name, *command.aliases))
        lines.append(f"  {names:<34} {command.summary}")
    return "\n".join(lines)


def _parse(argv: Sequence[str], env: Mapping[str, str]) -> argparse.Namespace | int:
    parser = build_parser(env)
    try:
        return parser.parse_args(argv)
    except ParserExit as done:
        if done.message:
            print(done.message, end="", file=sys.stderr if done.status else sys.stdout)
        return done.status
    except UsageError as exc:
        return report(exc, sys.stderr)


def _main(argv: Sequence[str], env: Mapping[str, str]) -> int:
    ns = _parse(argv, env)
    if isinstance(ns, int):
        return ns
    try:
        connect = client_factory(ns)
    except CliError as exc:
        return report(exc, sys.stderr)
    if ns.command == "completion":
        from pyrstmdb.cli.completion import script

        print(script(ns.shell, global_options(env)), end="")
        return EXIT_OK
    if ns.command in (None, "repl"):
        from pyrstmdb.cli.repl import run_repl

        return run_repl(ns, connect)
    ctx = Context(ns, render.style_for(sys.stdout), sys.stdout, sys.stderr, connect, ns.json)
    return run_command(ctx)


def main(argv: Sequence[str] | None = None) -> int:
    """The ``rstmdb-cli`` entry point."""
    try:
        return _main(sys.argv[1:] if argv is None else argv, os.environ)
    except KeyboardInterrupt:
        print(file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:  # the reader went away (e.g. `| head`): stop quietly
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return EXIT_ERROR


if __name__ == "__main__":
    sys.exit(main())
