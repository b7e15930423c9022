"""Fsync policies (STORAGE §5) and their YAML and environment forms.

The policy decides when appended WAL records are forced to disk:

* ``every_write``: before a write is acknowledged (group commit: concurrent
  writers share one fsync);
* ``every_n``: once ``n`` records have accumulated since the last fsync;
* ``every_ms``: at most ``n`` milliseconds after a record was appended;
* ``never``: only at a clean shutdown or an explicit sync.

Pure: no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

PolicyKind = Literal["every_write", "every_n", "every_ms", "never"]

_DEFAULT_AMOUNT = 100


@dataclass(frozen=True, slots=True)
class FsyncPolicy:
    kind: PolicyKind = "every_write"
    amount: int = 0  # records for every_n, milliseconds for every_ms

    @property
    def waits_for_disk(self) -> bool:
        """True when a write is acknowledged only after its fsync."""
        return self.kind == "every_write"

    def describe(self) -> str:
        if self.kind in ("every_n", "every_ms"):
            return f"{self.kind}:{self.amount}"
        return self.kind

    @classmethod
    def from_env(cls, text: str) -> FsyncPolicy:
        """Parse ``every_write``, ``everywrite``, ``every_n:N``, ``every_ms:N``, ``never``.

        Case-insensitive. A bad number after the colon becomes 100; an unknown
        value falls back to ``every_write`` (STORAGE §5).
        """
        value = text.strip().lower()
        name, _, number = value.partition(":")
        name = name.strip()
        if name in ("every_n", "every_ms"):
            amount = _positive_int(number.strip())
            return cls(name, _DEFAULT_AMOUNT if amount is None else amount)  # type: ignore[arg-type]
        if name == "never":
            return cls("never")
        return cls("every_write")

    @classmethod
    def from_yaml(cls, value: Any) -> FsyncPolicy:
        """Parse the YAML form: a plain string, or a one-key map ``{every_n: 100}``.

        Raises ``ValueError`` with a readable reason for anything else.
        """
        if isinstance(value, str):
            name = value.strip().lower()
            if name in ("every_write", "everywrite"):
                return cls("every_write")
            if name == "never":
                return cls("never")
            if ":" in name:
                head = name.partition(":")[0].strip()
                if head in ("every_n", "every_ms"):
                    return cls.from_env(name)
            raise ValueError(
                f"unknown fsync policy {value!r} "
                "(expected every_write, never, {every_n: N} or {every_ms: N})"
            )
        if isinstance(value, dict) and len(value) == 1:
            ((key, amount),) = value.items()
            name = str(key).strip().lower()
            if name in ("every_n", "every_ms"):
                if isinstance(amount, bool) or not isinstance(amount, int) or amount <= 0:
                    raise ValueError(f"{name} needs a positive integer, got {amount!r}")
                return cls(name, amount)  # type: ignore[arg-type]
        raise ValueError(
            f"invalid fsync policy {value!r} "
            "(expected every_write, never, {every_n: N} or {every_ms: N})"
        )


def _positive_int(text: str) -> int | None:
    try:
        number = int(text)
    except ValueError:
        return None
    return number if number > 0 else None
