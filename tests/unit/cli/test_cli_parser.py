"""The command table: global options and environment, aliases, positional forms."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import pytest

from pyrstmdb.cli.context import CliError, Positionals, UsageError, json_arg
from pyrstmdb.cli.main import build_parser, client_factory
from pyrstmdb.cli.table import BY_NAME, COMMANDS, ParserExit, repl_parsers


def parse(argv: list[str], env: dict[str, str] | None = None) -> argparse.Namespace:
    return build_parser(env or {}).parse_args(argv)


def test_defaults_environment_and_flags() -> None:
    assert parse(["ping"]).server == "127.0.0.1:7401"
    env = {
        "RSTMDB_SERVER": "db.example:9000",
        "RSTMDB_TOKEN": "t",
        "RSTMDB_TLS": "Yes",
        "RSTMDB_CA_CERT": "/ca.pem",
    }
    ns = parse(["ping"], env)
    assert (ns.server, ns.token, ns.tls, ns.ca_cert) == ("db.example:9000", "t", True, "/ca.pem")
    ns = parse(["-s", "[::1]:7401", "-t", "u", "ping"], env)
    assert (ns.server, ns.token) == ("[::1]:7401", "u")
    assert parse(["ping"], {"RSTMDB_TLS": "0"}).tls is False


def test_global_options_go_before_or_after_the_command() -> None:
    ns = parse(["--json", "-s", "h:1", "get-instance", "x"])
    assert (ns.json, ns.command, ns.id, ns.server) == (True, "get-instance", "x", "h:1")
    ns = parse(["get-instance", "x", "--json", "--server", "h:2", "-t", "tok", "--tls"])
    assert (ns.json, ns.id, ns.server, ns.token, ns.tls) == (True, "x", "h:2", "tok", True)
    # An option given before the command is not reset by the command's own parser.
    ns = parse(["-s", "h:3", "--json", "apply-event", "-i", "o", "-e", "PAY"])
    assert (ns.server, ns.json, ns.instance) == ("h:3", True, "o")
    ns = parse(["get-instance", "x"])
    assert (ns.json, ns.server, ns.tls) == (False, "127.0.0.1:7401", False)
    # The command's own flags win where the names overlap (-v / -V are versions there).
    ns = parse(["put-machine", "-n", "m", "-v", "2", "{}", "--json"])
    assert (ns.version, ns.json) == (2, True)
    with pytest.raises(UsageError, match="server"):
        parse(["get-instance", "x", "-s", "nonsense"])


@pytest.mark.parametrize("bad", ["nonsense", "host:99999", "::1:7401"])
def test_bad_server_address_is_a_usage_error(bad: str) -> None:
    with pytest.raises(UsageError, match="server"):
        parse(["-s", bad, "ping"])


def test_version_and_help_do_not_exit_the_process() -> None:
    with pytest.raises(ParserExit) as done:
        parse(["--version"])
    assert done.value.status == 0


def test_reference_flags() -> None:
    ns = parse(["create-instance", "-m", "order", "-V", "1", "-i", "o", "-c", "{}"])
    assert (ns.machine, ns.machine_version, ns.id, ns.ctx) == ("order", 1, "o", "{}")
    assert parse(["create-instance", "--machine-version", "2"]).machine_version == 2
    ns = parse(["apply-event", "-i", "o", "-e", "PAY", "-p", "{}", "--expected-state", "a"])
    assert (ns.instance, ns.event, ns.payload, ns.expected_state) == ("o", "PAY", "{}", "a")
    ns = parse(["watch-all", "--machines", "a,b", "--to-states", "shipped", "--no-ctx"])
    assert (ns.machines, ns.to_states, ns.no_ctx) == (["a", "b"], ["shipped"], True)
    assert parse(["wal-read", "--from-offset", "5", "-l", "2"]).from_offset == 5
    assert parse(["compact", "-f"]).force is True
    with pytest.raises(UsageError, match="non-negative"):
        parse(["put-machine", "-n", "m", "-v", "-1", "{}"])


def test_repl_aliases_are_the_same_commands() -> None:
    parsers = repl_parsers()
    for alias, name in [
        ("c", "create-instance"),
        ("a", "apply-event"),
        ("li", "list-instances"),
        ("g", "get-instance"),
        ("d", "delete-instance"),
        ("pm", "put-machine"),
        ("gm", "get-machine"),
        ("lm", "list-machines"),
        ("ws", "wal-stats"),
        ("wal", "wal-read"),
        ("q", "quit"),
        ("rc", "reconnect"),
        ("?", "help"),
    ]:
        assert parsers[alias] is parsers[name]
        assert BY_NAME[alias].name == name
    ns = parsers["create"].parse_args(["order", "1", "o-1", '{"a": 1}'])
    assert ns.command == "create-instance" and ns.words == ["order", "1", "o-1", '{"a": 1}']
    assert "quit" not in build_parser({})._subparsers._group_actions[0].choices  # type: ignore[union-attr]


def test_every_command_has_a_usage_line() -> None:
    for command in COMMANDS:
        assert command.summary
        if command.where != "cli" and command.name not in ("reconnect",):
            assert command.usage.split()[0] in (command.name, *command.aliases)


def test_positionals_fill_what_flags_left_open() -> None:
    words = Positionals(["o-1", "7"])
    assert words.take("order", "MACHINE") == "order"
    assert words.take(None, "ID") == "o-1"
    assert words.take_uint(None, "VERSION") == 7
    assert words.take(None, "CTX", required=False) is None
    words.done()
    with pytest.raises(UsageError, match="missing EVENT"):
        Positionals([]).take(None, "EVENT")
    with pytest.raises(UsageError, match="unexpected arguments: x"):
        Positionals(["x"]).done()
    with pytest.raises(UsageError, match="VERSION"):
        Positionals(["one"]).take_uint(None, "VERSION")


def test_json_arguments_inline_or_from_a_file(tmp_path: Path) -> None:
    path = tmp_path / "def.json"
    path.write_text('{"states": ["a"]}')
    assert json_arg(f"@{path}", "DEFINITION") == {"states": ["a"]}
    assert json_arg("[1, 2]", "OPS") == [1, 2]
    with pytest.raises(CliError, match="invalid JSON in --ctx"):
        json_arg("{bad", "--ctx")
    with pytest.raises(CliError, match="cannot read DEFINITION file"):
        json_arg(f"@{tmp_path / 'missing.json'}", "DEFINITION")


def test_client_certificate_needs_its_key() -> None:
    ns: Any = parse(["--client-cert", "c.pem", "ping"])
    with pytest.raises(CliError, match="--client-cert and --client-key must be used together"):
        client_factory(ns)
