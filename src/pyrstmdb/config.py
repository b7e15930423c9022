"""Server configuration: one typed, frozen :class:`Config` and the rules that build it.

Precedence, key by key (a later source only replaces the keys it names)::

    defaults  <  YAML file  <  environment  <  overrides (command-line flags)

Then the hashes of ``auth.secrets_file`` are added to the accepted token hashes,
and the whole configuration is validated. :func:`load` is pure: it takes the
YAML text, an environment mapping and the overrides. :func:`load_from_environment`
is the thin I/O edge: it reads the YAML file (``config_path`` or else
``RSTMDB_CONFIG``) and the secrets file, then does the same.

=================================  ================================  ====================
YAML key                           Environment variable              Default
=================================  ================================  ====================
``network.bind_addr``              ``RSTMDB_BIND``                   ``127.0.0.1:7401``
``network.idle_timeout_secs``      ``RSTMDB_IDLE_TIMEOUT``           ``300`` (≥ 1)
``network.max_connections``        ``RSTMDB_MAX_CONNECTIONS``        ``1000`` (≥ 1)
``storage.data_dir``               ``RSTMDB_DATA``                   ``./data``
``storage.wal_segment_size_mb``    ``RSTMDB_WAL_SEGMENT_SIZE_MB``    ``64`` (≥ 1)
``storage.fsync_policy``           ``RSTMDB_FSYNC_POLICY``           ``every_write``
``storage.max_machine_versions``   ``RSTMDB_MAX_MACHINE_VERSIONS``   ``0`` (unlimited)
``storage.allow_flush_all``        ``RSTMDB_ALLOW_FLUSH_ALL``        ``false``
``storage.idempotency_ttl_secs``   ``RSTMDB_IDEMPOTENCY_TTL_SECS``   ``86400`` (≥ 1)
``storage.idempotency_max_keys``   ``RSTMDB_IDEMPOTENCY_MAX_KEYS``   ``1000000`` (≥ 1)
``storage.history_per_instance``   ``RSTMDB_HISTORY_PER_INSTANCE``   ``100`` (0 = off)
``compaction.enabled``             ``RSTMDB_COMPACT_ENABLED``        ``true``
``compaction.events_threshold``    ``RSTMDB_COMPACT_EVENTS``         ``10000`` (0 = off)
``compaction.size_threshold_mb``   ``RSTMDB_COMPACT_SIZE_MB``        ``100`` (0 = off)
``compaction.min_interval_secs``   ``RSTMDB_COMPACT_INTERVAL``       ``60``
``auth.required``                  ``RSTMDB_AUTH_REQUIRED``          ``false``
``auth.token_hashes``              ``RSTMDB_AUTH_TOKEN_HASH`` (adds)  ``[]``
``auth.secrets_file``              ``RSTMDB_AUTH_SECRETS_FILE``      none
``tls.enabled``                    ``RSTMDB_TLS_ENABLED``            ``false``
``tls.cert_path``                  ``RSTMDB_TLS_CERT``               none
``tls.key_path``                   ``RSTMDB_TLS_KEY``                none
``tls.require_client_cert``        ``RSTMDB_TLS_REQUIRE_CLIENT_CERT``  ``false``
``tls.client_ca_path``             ``RSTMDB_TLS_CLIENT_CA``          none
``metrics.enabled``                ``RSTMDB_METRICS_ENABLED``        ``false``
``metrics.bind_addr``              ``RSTMDB_METRICS_BIND``           ``0.0.0.0:9090``
``http.enabled``                   ``RSTMDB_HTTP_ENABLED``           ``true``
``http.bind_addr``                 ``RSTMDB_HTTP_BIND``              ``127.0.0.1:7402``
``http.sse_keepalive_secs``        ``RSTMDB_HTTP_SSE_KEEPALIVE``     ``15`` (1..15)
``logging.level``                  ``RSTMDB_LOG_LEVEL``, ``RUST_LOG``  ``info``
``logging.format``                 ``RSTMDB_LOG_FORMAT``             ``json``
``subscriptions.buffer_events``    ``RSTMDB_SUBSCRIPTION_BUFFER``    ``1024`` (≥ 1)
=================================  ================================  ====================

Overrides: ``bind`` (``"host:port"``) and ``data_dir``, or any YAML key written
with its dot (``"network.max_connections"``), valued as in YAML; ``None`` means
"not given".

Value forms:

* Addresses: ``host:port`` where host is an IPv4 literal, ``[IPv6]`` or a host
  name; port 0-65535 (0 picks a free port). IPv6 hosts are stored without brackets.
* Booleans: YAML ``true``/``false``; environment ``1`` or ``true`` (any case) is
  true, any other value false.
* ``storage.fsync_policy``: YAML ``every_write``, ``never``, ``{every_n: N}``,
  ``{every_ms: N}`` or the tag form ``!every_n N``; environment ``every_write``,
  ``everywrite``, ``every_n:N``, ``every_ms:N``, ``never`` (a bad number becomes
  100 and an unknown value ``every_write``, each with a note in ``Config.warnings``).
* Token hashes: SHA-256 hex digests; stripped and lower-cased. The YAML list, the
  environment hash and the secrets file (one hash a line; blank and ``#`` lines
  skipped) are merged.
* ``logging.level``: trace, debug, info, warn, warning, error (any case).
  ``RUST_LOG`` counts only when it is a plain level word; ``RSTMDB_LOG_LEVEL`` wins.
* ``logging.format``: ``text`` or ``json`` (``pretty`` is read as ``text``).

An environment variable that is empty (or only blanks) counts as not set. Unknown
YAML keys and sections, and unknown ``RSTMDB_*`` variables, are ignored with a
note in ``Config.warnings``.

Raises :class:`ConfigError` for every invalid input: its ``key`` is the YAML key
path (``network.max_connections``), the environment variable, the override name,
or, for a YAML document that does not parse, the file. Values that might be
secrets (token hashes) are never echoed in messages.
"""

from __future__ import annotations

import ipaddress
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields, replace
from typing import Any, Literal

import yaml

from pyrstmdb.storage.policy import FsyncPolicy

__all__ = [
    "LOG_LEVELS",
    "AuthConfig",
    "CompactionConfig",
    "Config",
    "ConfigError",
    "HttpConfig",
    "LogFormat",
    "LogLevel",
    "LoggingConfig",
    "MetricsConfig",
    "NetworkConfig",
    "StorageConfig",
    "SubscriptionConfig",
    "TlsConfig",
    "format_address",
    "load",
    "load_from_environment",
    "normalize_hash",
    "parse_address",
    "parse_secrets",
]

LogLevel = Literal["trace", "debug", "info", "warn", "warning", "error"]
LogFormat = Literal["text", "json"]
LOG_LEVELS: tuple[LogLevel, ...] = ("trace", "debug", "info", "warn", "warning", "error")
TRACE = 5  # numeric level used for "trace" with the standard logging module
_PYTHON_LEVELS = {"trace": TRACE, "debug": 10, "info": 20, "warn": 30, "warning": 30, "error": 40}

# A segment plus one maximal record (16 MiB + header) must fit in a 40-bit position.
_MAX_SEGMENT_MB = (1 << 20) - 17


class ConfigError(Exception):
    """An invalid configuration input; ``key`` names the setting, file or variable."""

    def __init__(self, key: str, reason: str) -> None:
        super().__init__(f"{key}: {reason}")
        self.key = key
        self.reason = reason


# ---------------------------------------------------------------------------
# The typed configuration
# ---------------------------------------------------------------------------


def format_address(host: str, port: int) -> str:
    """``host:port``, with brackets around an IPv6 host."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


@dataclass(frozen=True, slots=True)
class NetworkConfig:
    bind_host: str = "127.0.0.1"
    bind_port: int = 7401
    idle_timeout_secs: int = 300
    max_connections: int = 1000

    @property
    def bind_addr(self) -> str:
        return format_address(self.bind_host, self.bind_port)


@dataclass(frozen=True, slots=True)
class StorageConfig:
    data_dir: str = "./data"
    wal_segment_size_mb: int = 64
    fsync_policy: FsyncPolicy = field(default_factory=FsyncPolicy)
    max_machine_versions: int = 0
    allow_flush_all: bool = False
    idempotency_ttl_secs: int = 86400
    idempotency_max_keys: int = 1_000_000
    history_per_instance: int = 100


@dataclass(frozen=True, slots=True)
class CompactionConfig:
    enabled: bool = True
    events_threshold: int = 10000
    size_threshold_mb: int = 100
    min_interval_secs: int = 60

    @property
    def automatic(self) -> bool:
        """True when the background compactor has at least one trigger."""
        return self.enabled and (self.events_threshold > 0 or self.size_threshold_mb > 0)


@dataclass(frozen=True, slots=True)
class AuthConfig:
    required: bool = False
    token_hashes: frozenset[str] = frozenset()
    secrets_file: str | None = None


@dataclass(frozen=True, slots=True)
class TlsConfig:
    enabled: bool = False
    cert_path: str | None = None
    key_path: str | None = None
    require_client_cert: bool = False
    client_ca_path: str | None = None


@dataclass(frozen=True, slots=True)
class MetricsConfig:
    enabled: bool = False
    bind_host: str = "0.0.0.0"
    bind_port: int = 9090

    @property
    def bind_addr(self) -> str:
        return format_address(self.bind_host, self.bind_port)


@dataclass(frozen=True, slots=True)
class HttpConfig:
    enabled: bool = True
    bind_host: str = "127.0.0.1"
    bind_port: int = 7402
    sse_keepalive_secs: int = 15

    @property
    def bind_addr(self) -> str:
        return format_address(self.bind_host, self.bind_port)


@dataclass(frozen=True, slots=True)
class LoggingConfig:
    level: LogLevel = "info"
    format: LogFormat = "json"

    @property
    def python_level(self) -> int:
        """The level for the standard ``logging`` module (trace is 5)."""
        return _PYTHON_LEVELS[self.level]


@dataclass(frozen=True, slots=True)
class SubscriptionConfig:
    buffer_events: int = 1024


@dataclass(frozen=True, slots=True)
class Config:
    network: NetworkConfig = field(default_factory=NetworkConfig)
    storage: StorageConfig = field(default_factory=StorageConfig)
    compaction: CompactionConfig = field(default_factory=CompactionConfig)
    auth: AuthConfig = field(default_factory=AuthConfig)
    tls: TlsConfig = field(default_factory=TlsConfig)
    metrics: MetricsConfig = field(default_factory=MetricsConfig)
    http: HttpConfig = field(default_factory=HttpConfig)
    logging: LoggingConfig = field(default_factory=LoggingConfig)
    subscriptions: SubscriptionConfig = field(default_factory=SubscriptionConfig)
    warnings: tuple[str, ...] = ()

    @property
    def bind_addr(self) -> str:
        """The server address as ``host:port`` (for messages)."""
        return self.network.bind_addr

    @property
    def metrics_addr(self) -> str:
        """The metrics address as ``host:port`` (for messages)."""
        return self.metrics.bind_addr


_SECTIONS: dict[str, type[Any]] = {
    "network": NetworkConfig,
    "storage": StorageConfig,
    "compaction": CompactionConfig,
    "auth": AuthConfig,
    "tls": TlsConfig,
    "metrics": MetricsConfig,
    "http": HttpConfig,
    "logging": LoggingConfig,
    "subscriptions": SubscriptionConfig,
}


# ---------------------------------------------------------------------------
# Value forms. Each parser raises ValueError with the reason; callers add the key.
# ---------------------------------------------------------------------------

_SKIP = object()  # an environment parser's "leave this key alone"
_PORT_RE = re.compile(r"[0-9]{1,5}")
_LABEL_RE = re.compile(r"[A-Za-z0-9_]([A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?")
_INT_RE = re.compile(r"[+-]?[0-9]+")
_HASH_RE = re.compile(r"[0-9a-f]{64}")


def parse_address(text: str) -> tuple[str, int]:
    """Split ``host:port`` (IPv4, ``[IPv6]`` or host name); raises ``ValueError``."""
    host, colon, port_text = text.strip().rpartition(":")
    if not colon:
        raise ValueError(f"expected host:port, got {text!r}")
    if not _PORT_RE.fullmatch(port_text) or int(port_text) > 65535:
        raise ValueError(f"port must be a number from 0 to 65535, got {port_text!r}")
    return _parse_host(host), int(port_text)


def _parse_host(host: str) -> str:
    if host.startswith("[") and host.endswith("]"):
        try:
            ipaddress.IPv6Address(host[1:-1])
        except ValueError:
            raise ValueError(f"invalid IPv6 address {host!r}") from None
        return host[1:-1]
    if ":" in host:
        raise ValueError(f"an IPv6 address needs brackets, e.g. [::1]:7401, got {host!r}")
    if re.fullmatch(r"[0-9.]+", host):
        try:
            ipaddress.IPv4Address(host)
        except ValueError:
            raise ValueError(f"invalid IPv4 address {host!r}") from None
        return host
    name = host.removesuffix(".")
    if 0 < len(name) <= 253 and all(_LABEL_RE.fullmatch(part) for part in name.split(".")):
        return host
    raise ValueError(f"invalid host {host!r}")


_TYPE_NAMES: dict[type, str] = {
    bool: "a boolean",
    int: "an integer",
    float: "a number",
    str: "a string",
    list: "a list",
    dict: "a mapping",
    type(None): "null",
}


def _type_name(value: object) -> str:
    return _TYPE_NAMES.get(type(value), type(value).__name__)


def _check_range(number: int, minimum: int, maximum: int | None) -> int:
    if number < minimum:
        raise ValueError(f"must be at least {minimum}, got {number}")
    if maximum is not None and number > maximum:
        raise ValueError(f"must be at most {maximum}, got {number}")
    return number


def _yaml_int(minimum: int, maximum: int | None = None) -> Callable[[object], object]:
    def parse(value: object) -> object:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError(f"expected an integer, got {_type_name(value)}")
        return _check_range(value, minimum, maximum)

    return parse


def _env_int(minimum: int, maximum: int | None = None) -> Callable[[str, list[str]], object]:
    def parse(text: str, _warnings: list[str]) -> object:
        if not _INT_RE.fullmatch(text):
            raise ValueError(f"expected an integer, got {text!r}")
        return _check_range(int(text), minimum, maximum)

    return parse


def _yaml_bool(value: object) -> object:
    if not isinstance(value, bool):
        raise ValueError(f"expected true or false, got {_type_name(value)}")
    return value


def _env_bool(text: str, _warnings: list[str]) -> object:
    return text.lower() in ("1", "true")


def _yaml_str(value: object) -> str:
    if not isinstance(value, str):
        raise ValueError(f"expected a string, got {_type_name(value)}")
    if not value.strip():
        raise ValueError("must not be empty")
    return value


def _yaml_optional_path(value: object) -> object:
    return None if value is None else _yaml_str(value)


def _env_text(text: str, _warnings: list[str]) -> object:
    return text


def _yaml_address(value: object) -> object:
    if not isinstance(value, str):
        raise ValueError(f'expected a quoted "host:port" string, got {_type_name(value)}')
    return parse_address(value)


def _env_address(text: str, _warnings: list[str]) -> object:
    return parse_address(text)


def normalize_hash(text: str) -> str:
    """Strip and lower-case a SHA-256 hex digest; raises ``ValueError`` (value not shown)."""
    digest = text.strip().lower()
    if not _HASH_RE.fullmatch(digest):
        raise ValueError(
            f"not a SHA-256 hash: expected 64 hexadecimal characters "
            f"(got {len(digest)} characters; value not shown)"
        )
    return digest


def _yaml_hashes(value: object) -> object:
    if value is None:
        return frozenset()
    if not isinstance(value, list):
        raise ValueError(f"expected a list of SHA-256 hex strings, got {_type_name(value)}")
    hashes: set[str] = set()
    for index, item in enumerate(value):
        if not isinstance(item, str):
            raise ValueError(f"item {index}: expected a string, got {_type_name(item)}")
        try:
            hashes.add(normalize_hash(item))
        except ValueError as exc:
            raise ValueError(f"item {index}: {exc}") from None
    return frozenset(hashes)


def _env_hash(text: str, _warnings: list[str]) -> object:
    return frozenset({normalize_hash(text)})


def _is_positive(number: str) -> bool:
    return number.isascii() and number.isdigit() and int(number) > 0


def _yaml_fsync(value: object) -> object:
    if isinstance(value, str) and ":" in value:
        number = value.partition(":")[2].strip()
        if not _is_positive(number):
            raise ValueError(f"{value!r} needs a positive integer after the colon")
    return FsyncPolicy.from_yaml(value)


def _env_fsync(text: str, warnings: list[str]) -> object:
    name, _, number = text.lower().partition(":")
    name = name.strip()
    if name in ("every_n", "every_ms"):
        if not _is_positive(number.strip()):
            warnings.append(
                f"RSTMDB_FSYNC_POLICY: {text!r} has no positive number after the colon; "
                f"using {name}:100"
            )
    elif name not in ("every_write", "everywrite", "never"):
        warnings.append(f"RSTMDB_FSYNC_POLICY: unknown policy {text!r}; using every_write")
    return FsyncPolicy.from_env(text)


def _level(text: str) -> LogLevel:
    word = text.strip().lower()
    for level in LOG_LEVELS:
        if word == level:
            return level
    raise ValueError(f"expected one of {', '.join(LOG_LEVELS)}, got {text!r}")


def _yaml_level(value: object) -> object:
    return _level(_yaml_str(value))


def _env_level(text: str, _warnings: list[str]) -> object:
    return _level(text)


def _env_rust_log(text: str, warnings: list[str]) -> object:
    try:
        return _level(text)
    except ValueError:
        warnings.append(f"RUST_LOG: {text!r} is not a plain level word; ignored")
        return _SKIP


def _format(text: str) -> LogFormat:
    word = text.strip().lower()
    if word in ("text", "pretty"):
        return "text"
    if word == "json":
        return "json"
    raise ValueError(f"expected text or json, got {text!r}")


def _yaml_format(value: object) -> object:
    return _format(_yaml_str(value))


def _env_format(text: str, _warnings: list[str]) -> object:
    return _format(text)


# ---------------------------------------------------------------------------
# The key tables
# ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Key:
    """How one YAML key is read from YAML and from its environment variable."""

    from_yaml: Callable[[object], object]
    from_env: Callable[[str, list[str]], object]
    fields: tuple[str, ...] = ()  # the dataclass fields set, when not the key's own name


_ADDRESS_FIELDS = ("bind_host", "bind_port")


def _int_key(minimum: int, maximum: int | None = None) -> _Key:
    return _Key(_yaml_int(minimum, maximum), _env_int(minimum, maximum))


_BOOL = _Key(_yaml_bool, _env_bool)
_OPTIONAL_PATH = _Key(_yaml_optional_path, _env_text)

_KEYS: dict[str, _Key] = {
    "network.bind_addr": _Key(_yaml_address, _env_address, _ADDRESS_FIELDS),
    "network.idle_timeout_secs": _int_key(1),
    "network.max_connections": _int_key(1),
    "storage.data_dir": _Key(_yaml_str, _env_text),
    "storage.wal_segment_size_mb": _int_key(1, _MAX_SEGMENT_MB),
    "storage.fsync_policy": _Key(_yaml_fsync, _env_fsync),
    "storage.max_machine_versions": _int_key(0),
    "storage.allow_flush_all": _BOOL,
    "storage.idempotency_ttl_secs": _int_key(1),
    "storage.idempotency_max_keys": _int_key(1),
    "storage.history_per_instance": _int_key(0, 1_000_000),
    "compaction.enabled": _BOOL,
    "compaction.events_threshold": _int_key(0),
    "compaction.size_threshold_mb": _int_key(0),
    "compaction.min_interval_secs": _int_key(0),
    "auth.required": _BOOL,
    "auth.token_hashes": _Key(_yaml_hashes, _env_hash),
    "auth.secrets_file": _OPTIONAL_PATH,
    "tls.enabled": _BOOL,
    "tls.cert_path": _OPTIONAL_PATH,
    "tls.key_path": _OPTIONAL_PATH,
    "tls.require_client_cert": _BOOL,
    "tls.client_ca_path": _OPTIONAL_PATH,
    "metrics.enabled": _BOOL,
    "metrics.bind_addr": _Key(_yaml_address, _env_address, _ADDRESS_FIELDS),
    "http.enabled": _BOOL,
    "http.bind_addr": _Key(_yaml_address, _env_address, _ADDRESS_FIELDS),
    "http.sse_keepalive_secs": _int_key(1, 15),
    "logging.level": _Key(_yaml_level, _env_level),
    "logging.format": _Key(_yaml_format, _env_format),
    "subscriptions.buffer_events": _int_key(1),
}


@dataclass(frozen=True, slots=True)
class _EnvVar:
    name: str
    key: str
    parse: Callable[[str, list[str]], object] | None = None  # else the key's own
    adds: bool = False  # merge into the current set instead of replacing it


# Applied in this order, so a later variable for the same key wins.
_ENV: tuple[_EnvVar, ...] = (
    _EnvVar("RSTMDB_BIND", "network.bind_addr"),
    _EnvVar("RSTMDB_IDLE_TIMEOUT", "network.idle_timeout_secs"),
    _EnvVar("RSTMDB_MAX_CONNECTIONS", "network.max_connections"),
    _EnvVar("RSTMDB_DATA", "storage.data_dir"),
    _EnvVar("RSTMDB_WAL_SEGMENT_SIZE_MB", "storage.wal_segment_size_mb"),
    _EnvVar("RSTMDB_FSYNC_POLICY", "storage.fsync_policy"),
    _EnvVar("RSTMDB_MAX_MACHINE_VERSIONS", "storage.max_machine_versions"),
    _EnvVar("RSTMDB_ALLOW_FLUSH_ALL", "storage.allow_flush_all"),
    _EnvVar("RSTMDB_IDEMPOTENCY_TTL_SECS", "storage.idempotency_ttl_secs"),
    _EnvVar("RSTMDB_IDEMPOTENCY_MAX_KEYS", "storage.idempotency_max_keys"),
    _EnvVar("RSTMDB_HISTORY_PER_INSTANCE", "storage.history_per_instance"),
    _EnvVar("RSTMDB_COMPACT_ENABLED", "compaction.enabled"),
    _EnvVar("RSTMDB_COMPACT_EVENTS", "compaction.events_threshold"),
    _EnvVar("RSTMDB_COMPACT_SIZE_MB", "compaction.size_threshold_mb"),
    _EnvVar("RSTMDB_COMPACT_INTERVAL", "compaction.min_interval_secs"),
    _EnvVar("RSTMDB_AUTH_REQUIRED", "auth.required"),
    _EnvVar("RSTMDB_AUTH_TOKEN_HASH", "auth.token_hashes", adds=True),
    _EnvVar("RSTMDB_AUTH_SECRETS_FILE", "auth.secrets_file"),
    _EnvVar("RSTMDB_TLS_ENABLED", "tls.enabled"),
    _EnvVar("RSTMDB_TLS_CERT", "tls.cert_path"),
    _EnvVar("RSTMDB_TLS_KEY", "tls.key_path"),
    _EnvVar("RSTMDB_TLS_REQUIRE_CLIENT_CERT", "tls.require_client_cert"),
    _EnvVar("RSTMDB_TLS_CLIENT_CA", "tls.client_ca_path"),
    _EnvVar("RSTMDB_METRICS_ENABLED", "metrics.enabled"),
    _EnvVar("RSTMDB_METRICS_BIND", "metrics.bind_addr"),
    _EnvVar("RSTMDB_HTTP_ENABLED", "http.enabled"),
    _EnvVar("RSTMDB_HTTP_BIND", "http.bind_addr"),
    _EnvVar("RSTMDB_HTTP_SSE_KEEPALIVE", "http.sse_keepalive_secs"),
    _EnvVar("RUST_LOG", "logging.level", parse=_env_rust_log),
    _EnvVar("RSTMDB_LOG_LEVEL", "logging.level"),
    _EnvVar("RSTMDB_LOG_FORMAT", "logging.format"),
    _EnvVar("RSTMDB_SUBSCRIPTION_BUFFER", "subscriptions.buffer_events"),
)

# Variables of this package read elsewhere (config file path, command-line client).
_OTHER_ENV = frozenset(
    {
        "RSTMDB_CONFIG",
        "RSTMDB_SERVER",
        "RSTMDB_TOKEN",
        "RSTMDB_TLS",
        "RSTMDB_CA_CERT",
        "RSTMDB_CLIENT_CERT",
        "RSTMDB_CLIENT_KEY",
    }
)
_KNOWN_ENV = frozenset(var.name for var in _ENV) | _OTHER_ENV

_OVERRIDE_ALIASES = {
    "bind": "network.bind_addr",
    "http_bind": "http.bind_addr",
    "data_dir": "storage.data_dir",
}

_ENV_OF = {var.key: var.name for var in _ENV if var.name != "RUST_LOG"}


# ---------------------------------------------------------------------------
# Loading
# ---------------------------------------------------------------------------

_Values = dict[str, dict[str, Any]]


class _Loader(yaml.SafeLoader):
    """The safe loader, plus the tag form of fsync policies (``!every_n 100``)."""


def _construct_tagged(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> object:
    if isinstance(node, yaml.ScalarNode):
        text = loader.construct_scalar(node).strip()
        if suffix in ("every_write", "never") and not text:
            return suffix
        if suffix in ("every_n", "every_ms"):
            return {suffix: int(text) if _INT_RE.fullmatch(text) else text}
    raise yaml.constructor.ConstructorError(
        None, None, f"unsupported tag !{suffix}", node.start_mark
    )


_Loader.add_multi_constructor("!", _construct_tagged)


def _parse_yaml(text: str | None, source: str) -> dict[Any, Any]:
    if text is None:
        return {}
    try:
        document = yaml.load(text, Loader=_Loader)
    except yaml.YAMLError as exc:
        raise ConfigError(source, _yaml_reason(exc)) from None
    if document is None:
        return {}
    if not isinstance(document, dict):
        raise ConfigError(source, f"expected a mapping of sections, got {_type_name(document)}")
    return document


def _yaml_reason(exc: yaml.YAMLError) -> str:
    if isinstance(exc, yaml.MarkedYAMLError) and exc.problem_mark is not None:
        mark = exc.problem_mark
        return f"invalid YAML at line {mark.line + 1}, column {mark.column + 1}: {exc.problem}"
    return f"invalid YAML: {exc}"


def _default_values() -> _Values:
    default = Config()
    return {
        name: {f.name: getattr(getattr(default, name), f.name) for f in fields(cls)}
        for name, cls in _SECTIONS.items()
    }


def _assign(values: _Values, path: str, value: object, adds: bool = False) -> None:
    section, name = path.split(".")
    targets = _KEYS[path].fields or (name,)
    slot = values[section]
    if len(targets) == 2:
        slot[targets[0]], slot[targets[1]] = value  # type: ignore[misc]
    elif adds:
        slot[name] = slot[name] | value
    else:
        slot[name] = value


def _convert(label: str, parse: Callable[[Any], object], raw: object) -> object:
    try:
        return parse(raw)
    except ValueError as exc:
        raise ConfigError(label, str(exc)) from None


def _apply_yaml(document: dict[Any, Any], values: _Values, warnings: list[str]) -> None:
    for section, body in document.items():
        if section not in _SECTIONS:
            warnings.append(f"unknown configuration section {section!s} ignored")
        elif body is not None:
            if not isinstance(body, dict):
                raise ConfigError(str(section), f"expected a mapping, got {_type_name(body)}")
            _apply_section(str(section), body, values, warnings)


def _apply_section(
    section: str, body: dict[Any, Any], values: _Values, warnings: list[str]
) -> None:
    for name, raw in body.items():
        path = f"{section}.{name}"
        key = _KEYS.get(path)
        if key is None:
            warnings.append(f"unknown configuration key {path} ignored")
            continue
        _assign(values, path, _convert(path, key.from_yaml, raw))


def _apply_env(env: Mapping[str, str], values: _Values, warnings: list[str]) -> None:
    for var in _ENV:
        text = env.get(var.name, "").strip()
        if not text:
            continue
        parse = var.parse or _KEYS[var.key].from_env
        try:
            value = parse(text, warnings)
        except ValueError as exc:
            raise ConfigError(var.name, str(exc)) from None
        if value is not _SKIP:
            _assign(values, var.key, value, adds=var.adds)
    for name in sorted(env):
        if name.startswith("RSTMDB_") and name not in _KNOWN_ENV:
            warnings.append(f"unknown environment variable {name} ignored")


def _apply_overrides(overrides: Mapping[str, object], values: _Values) -> None:
    for name, raw in overrides.items():
        if raw is None:
            continue
        path = _OVERRIDE_ALIASES.get(name, name)
        key = _KEYS.get(path)
        if key is None:
            raise ConfigError(name, "unknown configuration override")
        value = os.fspath(raw) if isinstance(raw, os.PathLike) else raw
        _assign(values, path, _convert(name, key.from_yaml, value))


def _resolve(
    yaml_text: str | None,
    env: Mapping[str, str],
    overrides: Mapping[str, object] | None,
    source: str,
) -> Config:
    """Merge the sources into a Config; no cross-key validation yet."""
    warnings: list[str] = []
    values = _default_values()
    _apply_yaml(_parse_yaml(yaml_text, source), values, warnings)
    _apply_env(env, values, warnings)
    _apply_overrides(overrides or {}, values)
    parts = {name: cls(**values[name]) for name, cls in _SECTIONS.items()}
    return Config(**parts, warnings=tuple(warnings))


def _named(key: str) -> str:
    """``key`` with its environment variable, for messages."""
    return f"{key} ({_ENV_OF[key]})"


def _check_auth(config: Config) -> None:
    if config.auth.required and not config.auth.token_hashes:
        unread = config.auth.secrets_file
        hint = f"; the secrets file {unread!r} was not read" if unread else ""
        raise ConfigError(
            "auth.required",
            "authentication is required but no token hash is configured (auth.token_hashes, "
            f"RSTMDB_AUTH_TOKEN_HASH or auth.secrets_file){hint}",
        )


def _check_tls(config: Config) -> None:
    tls = config.tls
    if tls.require_client_cert and not tls.enabled:
        raise ConfigError(
            "tls.require_client_cert",
            f"client certificates need TLS: set {_named('tls.enabled')} as well",
        )
    needed = {"tls.cert_path": tls.cert_path, "tls.key_path": tls.key_path}
    for key, value in needed.items():
        if tls.enabled and value is None:
            raise ConfigError(key, f"TLS is enabled but {_named(key)} is not set")
    if tls.require_client_cert and tls.client_ca_path is None:
        raise ConfigError(
            "tls.client_ca_path",
            f"client certificates are required but {_named('tls.client_ca_path')} is not set",
        )


def _finish(config: Config, secrets_text: str | None) -> Config:
    if secrets_text is not None:
        path = config.auth.secrets_file or "auth.secrets_file"
        hashes = config.auth.token_hashes | parse_secrets(secrets_text, path)
        config = replace(config, auth=replace(config.auth, token_hashes=hashes))
    _check_auth(config)
    _check_tls(config)
    return config


def parse_secrets(text: str, path: str = "auth.secrets_file") -> frozenset[str]:
    """The hashes of a secrets file's text: one a line, trimmed; blank and ``#`` lines skipped.

    ``path`` only appears in error messages. Raises :class:`ConfigError` keyed
    ``auth.secrets_file`` for a line that is not a SHA-256 hex digest.
    """
    hashes: set[str] = set()
    for number, line in enumerate(text.splitlines(), start=1):
        entry = line.strip()
        if not entry or entry.startswith("#"):
            continue
        try:
            hashes.add(normalize_hash(entry))
        except ValueError as exc:
            raise ConfigError("auth.secrets_file", f"{path}, line {number}: {exc}") from None
    return frozenset(hashes)


def load(
    yaml_text: str | None,
    env: Mapping[str, str],
    overrides: Mapping[str, object] | None = None,
    *,
    secrets_text: str | None = None,
    source: str = "config file",
) -> Config:
    """Build and validate the configuration from YAML text, environment and overrides.

    ``secrets_text`` is the content of ``auth.secrets_file`` when the caller has
    read it; ``source`` names the YAML document in error messages. Pure.
    """
    return _finish(_resolve(yaml_text, env, overrides, source), secrets_text)


def _read_text(path: str, key: str, what: str) -> str:
    try:
        with open(path, encoding="utf-8") as handle:
            return handle.read()
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(key, f"cannot read {what} {path!r}: {exc}") from None


def load_from_environment(
    env: Mapping[str, str],
    config_path: str | None = None,
    overrides: Mapping[str, object] | None = None,
) -> Config:
    """Read the YAML file (``config_path``, else ``RSTMDB_CONFIG``) and the secrets file, then load.

    Raises :class:`ConfigError` when a named file cannot be read.
    """
    if config_path:
        path, key = config_path, "config"
    else:
        path, key = env.get("RSTMDB_CONFIG", "").strip(), "RSTMDB_CONFIG"
    yaml_text = _read_text(path, key, "config file") if path else None
    config = _resolve(yaml_text, env, overrides, path or "config file")
    secrets = config.auth.secrets_file
    secrets_text = _read_text(secrets, "auth.secrets_file", "secrets file") if secrets else None
    return _finish(config, secrets_text)
