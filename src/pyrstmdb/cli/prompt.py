"""prompt_toolkit pieces of the REPL: the session, completion and multi-line entry.

:func:`prompt_session` returns a ``PromptSession`` with history in the given
file, completion of command names (first word) and of known machine and
instance ids (later words), and an Enter key that accepts the entry only
once its brackets and quotes are balanced (otherwise it starts a new line).
Imported only when the REPL runs on a terminal.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from prompt_toolkit import PromptSession
from prompt_toolkit.completion import CompleteEvent, Completer, Completion
from prompt_toolkit.document import Document
from prompt_toolkit.history import FileHistory
from prompt_toolkit.key_binding import KeyBindings, KeyPressEvent

from pyrstmdb.cli.known import Known
from pyrstmdb.cli.lexer import is_complete


class ReplCompleter(Completer):
    """Command names for the first word, known ids for the others."""

    def __init__(self, names: Iterable[str], known: Known) -> None:
        self.names = sorted(set(names))
        self.known = known

    def get_completions(
        self, document: Document, complete_event: CompleteEvent
    ) -> Iterator[Completion]:
        text = document.text_before_cursor
        words = text.split()
        typing_word = bool(text) and not text[-1].isspace()
        prefix = words[-1] if words and typing_word else ""
        first = len(words) == 0 or (len(words) == 1 and typing_word)
        candidates = self.names if first else self.known.words()
        for candidate in candidates:
            if candidate.startswith(prefix.lower() if first else prefix):
                yield Completion(candidate, start_position=-len(prefix))


def _key_bindings() -> KeyBindings:
    bindings = KeyBindings()

    @bindings.add("enter")
    @bindings.add("c-j")
    def _enter(event: KeyPressEvent) -> None:
        buffer = event.current_buffer
        state = buffer.complete_state
        if state is not None and state.current_completion is not None:
            buffer.apply_completion(state.current_completion)
        elif is_complete(buffer.text):
            buffer.validate_and_handle()
        else:
            buffer.insert_text("\n")

    return bindings


def _continuation(width: int, line_number: int, wrap_count: int) -> str:
    return "." * (width - 1) + " "


def prompt_session(history_path: str, known: Known, names: Iterable[str]) -> PromptSession[str]:
    return PromptSession(
        history=FileHistory(history_path),
        completer=ReplCompleter(names, known),
        complete_while_typing=False,
        multiline=True,
        key_bindings=_key_bindings(),
        prompt_continuation=_continuation,
    )
