"""Shell completion scripts for ``rstmdb-cli``, generated from the command table.

``rstmdb-cli completion bash`` and ``rstmdb-cli completion zsh`` print a script
that completes the command names and aliases, each command's flags and the
global options (before or after the command), the choices of arguments that
have them (``batch --mode``, ``completion SHELL``) and file names after the
certificate options. Nothing here talks to a server; pure text generation.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from pyrstmdb.cli.table import Arg, Command, commands_for

FILE_OPTIONS = ("--ca-cert", "--client-cert", "--client-key")


@dataclass(frozen=True, slots=True)
class _Words:
    """What the scripts need to know about the table, as words."""

    commands: list[Command]
    global_flags: list[str]
    value_flags: list[str]  # options (global or not) that take a value


def _flags(args: Sequence[Arg]) -> list[str]:
    return [flag for item in args if item.is_flag for flag in item.flags]


def _takes_value(item: Arg) -> bool:
    return item.is_flag and item.options.get("action") not in ("store_true", "store_false")


def _words(shared: Sequence[Arg]) -> _Words:
    commands = commands_for(repl=False)
    every = [*shared, *(item for command in commands for item in command.args)]
    value_flags = sorted({flag for item in every if _takes_value(item) for flag in item.flags})
    return _Words(commands, [*_flags(shared), "-h", "--help"], value_flags)


def _choices(command: Command) -> list[str]:
    """Words offered where a flag is not being typed (choices of positional arguments)."""
    found: list[str] = []
    for item in command.args:
        if not item.is_flag:
            found.extend(item.options.get("choices") or ())
    return found


def _option_choices(words: _Words) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for command in words.commands:
        for item in command.args:
            if item.is_flag and item.options.get("choices"):
                for flag in item.flags:
                    found[flag] = list(item.options["choices"])
    return found


def _names(command: Command) -> list[str]:
    return [command.name, *command.aliases]


def _pattern(command: Command) -> str:
    """A ``case`` pattern matching the command's names literally (``?`` is an alias)."""
    return "|".join(f'"{name}"' for name in _names(command))


def bash(shared: Sequence[Arg]) -> str:
    words = _words(shared)
    cases = []
    for command in words.commands:
        flags = " ".join(_flags(command.args))
        choices = " ".join(_choices(command))
        pattern = _pattern(command)
        cases.append(f'        {pattern}) flags="{flags}"; choices="{choices}" ;;')
    option_cases = [
        f'        {flag}) COMPREPLY=($(compgen -W "{" ".join(values)}" -- "$cur")); return ;;'
        for flag, values in sorted(_option_choices(words).items())
    ]
    names = " ".join(name for command in words.commands for name in _names(command))
    return "\n".join(
        [
            "# bash completion for rstmdb-cli; load it with",
            '#   eval "$(rstmdb-cli completion bash)"',
            "_rstmdb_cli() {",
            '    local cur="${COMP_WORDS[COMP_CWORD]}" prev="${COMP_WORDS[COMP_CWORD-1]}"',
            f'    local global="{" ".join(words.global_flags)}"',
            f'    local commands="{names}"',
            '    local cmd="" flags="" choices="" i',
            "    for ((i = 1; i < COMP_CWORD; i++)); do",
            '        case "${COMP_WORDS[i]}" in',
            f"        {'|'.join(words.value_flags)}) ((i++)) ;;",
            "        -*) ;;",
            '        *) cmd="${COMP_WORDS[i]}"; break ;;',
            "        esac",
            "    done",
            '    case "$prev" in',
            f'        {"|".join(FILE_OPTIONS)}) COMPREPLY=($(compgen -f -- "$cur")); return ;;',
            *option_cases,
            f"        {'|'.join(words.value_flags)}) return ;;",
            "    esac",
            '    if [[ -z "$cmd" ]]; then',
            '        if [[ "$cur" == -* ]]; then',
            '            COMPREPLY=($(compgen -W "$global" -- "$cur"))',
            "        else",
            '            COMPREPLY=($(compgen -W "$commands" -- "$cur"))',
            "        fi",
            "        return",
            "    fi",
            '    case "$cmd" in',
            *cases,
            "    esac",
            '    if [[ "$cur" == -* ]]; then',
            '        COMPREPLY=($(compgen -W "$flags $global" -- "$cur"))',
            "    else",
            '        COMPREPLY=($(compgen -W "$choices" -- "$cur"))',
            "    fi",
            "}",
            "complete -o default -F _rstmdb_cli rstmdb-cli",
            "",
        ]
    )


def _zsh_quote(text: str) -> str:
    return "'" + text.replace("'", "'\\''") + "'"


def zsh(shared: Sequence[Arg]) -> str:
    words = _words(shared)
    described = [
        _zsh_quote(f"{name}:{command.summary}")
        for command in words.commands
        for name in _names(command)
    ]
    cases = [
        f"    ({_pattern(command)}) flags=({' '.join(_flags(command.args))}); "
        f"choices=({' '.join(_choices(command))}) ;;"
        for command in words.commands
    ]
    option_cases = [
        f"    ({flag}) compadd -- {' '.join(values)}; return ;;"
        for flag, values in sorted(_option_choices(words).items())
    ]
    return "\n".join(
        [
            "#compdef rstmdb-cli",
            "# zsh completion for rstmdb-cli; load it with",
            "#   source <(rstmdb-cli completion zsh)",
            "# or save it as _rstmdb-cli in a directory of $fpath.",
            "_rstmdb_cli() {",
            "  local -a commands global flags choices",
            f"  commands=({' '.join(described)})",
            f"  global=({' '.join(words.global_flags)})",
            "  local cmd='' i",
            "  for (( i = 2; i < CURRENT; i++ )); do",
            "    case ${words[i]} in",
            f"    ({'|'.join(words.value_flags)}) (( i++ )) ;;",
            "    (-*) ;;",
            "    (*) cmd=${words[i]}; break ;;",
            "    esac",
            "  done",
            "  case ${words[CURRENT-1]} in",
            f"    ({'|'.join(FILE_OPTIONS)}) _files; return ;;",
            *option_cases,
            f"    ({'|'.join(words.value_flags)}) return ;;",
            "  esac",
            "  if [[ -z $cmd ]]; then",
            "    if [[ ${words[CURRENT]} == -* ]]; then",
            "      compadd -- $global",
            "    else",
            "      _describe 'command' commands",
            "    fi",
            "    return",
            "  fi",
            "  case $cmd in",
            *cases,
            "  esac",
            "  if [[ ${words[CURRENT]} == -* ]]; then",
            "    compadd -- $flags $global",
            "  elif (( ${#choices} )); then",
            "    compadd -- $choices",
            "  else",
            "    _files",
            "  fi",
            "}",
            'if [[ "${zsh_eval_context[-1]}" == loadautofunc ]]; then',
            '  _rstmdb_cli "$@"',
            "else",
            "  compdef _rstmdb_cli rstmdb-cli",
            "fi",
            "",
        ]
    )


def script(shell: str, shared: Sequence[Arg]) -> str:
    """The completion script for ``shell`` (``bash`` or ``zsh``)."""
    return bash(shared) if shell == "bash" else zsh(shared)
