"""Tests of the server configuration: sources, precedence, value forms, errors."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import pytest

from pyrstmdb import config as config_module
from pyrstmdb.config import (
    AuthConfig,
    CompactionConfig,
    Config,
    ConfigError,
    LoggingConfig,
    MetricsConfig,
    NetworkConfig,
    StorageConfig,
    SubscriptionConfig,
    TlsConfig,
    format_address,
    load,
    load_from_environment,
    parse_address,
    parse_secrets,
)
from pyrstmdb.storage.policy import FsyncPolicy

H1 = hashlib.sha256(b"first-token").hexdigest()
H2 = hashlib.sha256(b"second-token").hexdigest()
H3 = hashlib.sha256(b"third-token").hexdigest()
ROOT = Path(__file__).resolve().parents[2]


def error_of(yaml_text: str | None = None, env: dict[str, str] | None = None, **kw: object) -> str:
    """Load and return the key of the ConfigError it must raise."""
    overrides = kw.pop("overrides", None)
    with pytest.raises(ConfigError) as info:
        load(yaml_text, env or {}, overrides, **kw)  # type: ignore[arg-type]
    assert info.value.key in str(info.value)
    return info.value.key


# --- defaults ------------------------------------------------------------------------------


def test_defaults_match_the_operations_table() -> None:
    cfg = load(None, {})
    assert cfg.network == NetworkConfig("127.0.0.1", 7401, 300, 1000)
    assert cfg.storage == StorageConfig("./data", 64, FsyncPolicy("every_write"), 0, False)
    assert cfg.storage.idempotency_ttl_secs == 86400
    assert cfg.storage.idempotency_max_keys == 1_000_000
    assert cfg.compaction == CompactionConfig(True, 10000, 100, 60)
    assert cfg.auth == AuthConfig(False, frozenset(), None)
    assert cfg.tls == TlsConfig(False, None, None, False, None)
    assert cfg.metrics == MetricsConfig(False, "0.0.0.0", 9090)
    assert cfg.logging == LoggingConfig("info", "auto")
    assert cfg.subscriptions == SubscriptionConfig(1024)
    assert cfg.warnings == ()
    assert cfg.bind_addr == "127.0.0.1:7401"
    assert cfg.metrics_addr == "0.0.0.0:9090"


def test_default_constructed_config_equals_loaded_defaults() -> None:
    assert load(None, {}) == Config()
    assert load("", {}) == Config()
    assert load("# nothing here\n", {}) == Config()


def test_config_is_frozen() -> None:
    cfg = load(None, {})
    with pytest.raises(AttributeError):
        cfg.network.bind_port = 1  # type: ignore[misc]


# --- every key from YAML ----------------------------------------------------------------------

FULL_YAML = f"""
network:
  bind_addr: "10.1.2.3:8000"
  idle_timeout_secs: 30
  max_connections: 7
storage:
  data_dir: /var/lib/rstmdb
  wal_segment_size_mb: 8
  fsync_policy: {{every_n: 10}}
  max_machine_versions: 5
  allow_flush_all: true
  idempotency_ttl_secs: 60
  idempotency_max_keys: 500
compaction:
  enabled: false
  events_threshold: 0
  size_threshold_mb: 0
  min_interval_secs: 0
auth:
  required: true
  token_hashes: ["{H1.upper()}", "  {H2}  "]
  secrets_file: /etc/rstmdb/secrets
tls:
  enabled: true
  cert_path: /tls/cert.pem
  key_path: /tls/key.pem
  require_client_cert: true
  client_ca_path: /tls/ca.pem
metrics:
  enabled: true
  bind_addr: "[::1]:9100"
logging:
  level: DEBUG
  format: text
subscriptions:
  buffer_events: 64
"""


def test_every_key_from_yaml() -> None:
    cfg = load(FULL_YAML, {})
    assert cfg.network == NetworkConfig("10.1.2.3", 8000, 30, 7)
    assert cfg.storage == StorageConfig(
        "/var/lib/rstmdb", 8, FsyncPolicy("every_n", 10), 5, True, 60, 500
    )
    assert cfg.compaction == CompactionConfig(False, 0, 0, 0)
    assert cfg.compaction.automatic is False
    assert cfg.auth == AuthConfig(True, frozenset({H1, H2}), "/etc/rstmdb/secrets")
    assert cfg.tls == TlsConfig(True, "/tls/cert.pem", "/tls/key.pem", True, "/tls/ca.pem")
    assert cfg.metrics == MetricsConfig(True, "::1", 9100)
    assert cfg.metrics_addr == "[::1]:9100"
    assert cfg.logging == LoggingConfig("debug", "text")
    assert cfg.subscriptions == SubscriptionConfig(64)
    assert cfg.warnings == ()


# --- every key from the environment ---------------------------------------------------------

FULL_ENV = {
    "RSTMDB_BIND": "0.0.0.0:7500",
    "RSTMDB_IDLE_TIMEOUT": "45",
    "RSTMDB_MAX_CONNECTIONS": "12",
    "RSTMDB_DATA": "/srv/data",
    "RSTMDB_WAL_SEGMENT_SIZE_MB": "1",
    "RSTMDB_FSYNC_POLICY": "every_ms:250",
    "RSTMDB_MAX_MACHINE_VERSIONS": "3",
    "RSTMDB_ALLOW_FLUSH_ALL": "TRUE",
    "RSTMDB_IDEMPOTENCY_TTL_SECS": "120",
    "RSTMDB_IDEMPOTENCY_MAX_KEYS": "99",
    "RSTMDB_COMPACT_ENABLED": "0",
    "RSTMDB_COMPACT_EVENTS": "500",
    "RSTMDB_COMPACT_SIZE_MB": "0",
    "RSTMDB_COMPACT_INTERVAL": "5",
    "RSTMDB_AUTH_REQUIRED": "1",
    "RSTMDB_AUTH_TOKEN_HASH": H3.upper(),
    "RSTMDB_AUTH_SECRETS_FILE": "/run/secrets/hashes",
    "RSTMDB_TLS_ENABLED": "true",
    "RSTMDB_TLS_CERT": "/c.pem",
    "RSTMDB_TLS_KEY": "/k.pem",
    "RSTMDB_TLS_REQUIRE_CLIENT_CERT": "True",
    "RSTMDB_TLS_CLIENT_CA": "/ca.pem",
    "RSTMDB_METRICS_ENABLED": "1",
    "RSTMDB_METRICS_BIND": "metrics.internal:9191",
    "RSTMDB_LOG_LEVEL": "warn",
    "RSTMDB_LOG_FORMAT": "TEXT",
    "RSTMDB_SUBSCRIPTION_BUFFER": "16",
}


def test_every_key_from_the_environment() -> None:
    cfg = load(None, FULL_ENV)
    assert cfg.network == NetworkConfig("0.0.0.0", 7500, 45, 12)
    assert cfg.storage == StorageConfig(
        "/srv/data", 1, FsyncPolicy("every_ms", 250), 3, True, 120, 99
    )
    assert cfg.compaction == CompactionConfig(False, 500, 0, 5)
    assert cfg.auth == AuthConfig(True, frozenset({H3}), "/run/secrets/hashes")
    assert cfg.tls == TlsConfig(True, "/c.pem", "/k.pem", True, "/ca.pem")
    assert cfg.metrics == MetricsConfig(True, "metrics.internal", 9191)
    assert cfg.logging == LoggingConfig("warn", "text")
    assert cfg.subscriptions == SubscriptionConfig(16)
    assert cfg.warnings == ()


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("1", True),
        ("true", True),
        ("TRUE", True),
        ("tRuE", True),
        (" true ", True),
        ("0", False),
        ("false", False),
        ("yes", False),
        ("on", False),
        ("2", False),
    ],
)
def test_env_booleans(value: str, expected: bool) -> None:
    cfg = load("metrics: {enabled: true}", {"RSTMDB_METRICS_ENABLED": value})
    assert cfg.metrics.enabled is expected


def test_empty_env_values_count_as_unset() -> None:
    yaml_text = "network: {max_connections: 9}\nmetrics: {enabled: true}"
    env = {"RSTMDB_MAX_CONNECTIONS": "", "RSTMDB_METRICS_ENABLED": "  ", "RSTMDB_BIND": ""}
    cfg = load(yaml_text, env)
    assert cfg.network.max_connections == 9
    assert cfg.metrics.enabled is True
    assert cfg.bind_addr == "127.0.0.1:7401"


# --- precedence --------------------------------------------------------------------------------


def test_env_beats_file_beats_defaults_key_by_key() -> None:
    yaml_text = "network:\n  bind_addr: 10.0.0.1:1000\n  max_connections: 50\n"
    cfg = load(yaml_text, {"RSTMDB_BIND": "10.0.0.2:2000"})
    assert cfg.bind_addr == "10.0.0.2:2000"  # env over file
    assert cfg.network.max_connections == 50  # file over default
    assert cfg.network.idle_timeout_secs == 300  # default


def test_overrides_beat_env() -> None:
    env = {"RSTMDB_BIND": "10.0.0.2:2000", "RSTMDB_DATA": "/env"}
    cfg = load("storage: {data_dir: /file}", env, {"bind": "127.0.0.1:0", "data_dir": "/flag"})
    assert cfg.bind_addr == "127.0.0.1:0"
    assert cfg.storage.data_dir == "/flag"


def test_override_none_means_not_given() -> None:
    cfg = load(None, {"RSTMDB_BIND": "10.0.0.2:2000"}, {"bind": None, "data_dir": None})
    assert cfg.bind_addr == "10.0.0.2:2000"
    assert cfg.storage.data_dir == "./data"


def test_overrides_accept_dotted_keys_and_paths() -> None:
    cfg = load(None, {}, {"network.max_connections": 3, "data_dir": Path("/p/q")})
    assert cfg.network.max_connections == 3
    assert cfg.storage.data_dir == "/p/q"


def test_override_errors_name_the_override() -> None:
    assert error_of(overrides={"bind": "nope"}) == "bind"
    assert error_of(overrides={"network.max_connections": "3"}) == "network.max_connections"
    assert error_of(overrides={"colour": "blue"}) == "colour"


def test_rstmdb_log_level_beats_rust_log_beats_yaml() -> None:
    yaml_text = "logging: {level: error}"
    assert load(yaml_text, {}).logging.level == "error"
    assert load(yaml_text, {"RUST_LOG": "Trace"}).logging.level == "trace"
    both = {"RUST_LOG": "trace", "RSTMDB_LOG_LEVEL": "warning"}
    assert load(yaml_text, both).logging.level == "warning"


def test_rust_log_directives_are_ignored_with_a_warning() -> None:
    cfg = load("logging: {level: debug}", {"RUST_LOG": "rstmdb=trace,tokio=info"})
    assert cfg.logging.level == "debug"
    assert cfg.warnings == (
        "RUST_LOG: 'rstmdb=trace,tokio=info' is not a plain level word; ignored",
    )


def test_log_level_numbers_for_python_logging() -> None:
    levels = {lv: LoggingConfig(lv).python_level for lv in config_module.LOG_LEVELS}
    assert levels == {"trace": 5, "debug": 10, "info": 20, "warn": 30, "warning": 30, "error": 40}


def test_log_format_pretty_is_text() -> None:
    assert load("logging: {format: pretty}", {}).logging.format == "text"
    assert load(None, {"RSTMDB_LOG_FORMAT": "json"}).logging.format == "json"


# --- token hashes ------------------------------------------------------------------------------


def test_env_token_hash_adds_to_the_yaml_list() -> None:
    yaml_text = f"auth: {{token_hashes: [{H1}, {H2}]}}"
    cfg = load(yaml_text, {"RSTMDB_AUTH_TOKEN_HASH": f"  {H3.upper()}\n"})
    assert cfg.auth.token_hashes == frozenset({H1, H2, H3})


def test_token_hashes_are_lower_cased_and_stripped() -> None:
    cfg = load(f"auth: {{token_hashes: ['  {H1.upper()}  ']}}", {})
    assert cfg.auth.token_hashes == frozenset({H1})


def test_bad_token_hashes_name_the_key_and_hide_the_value() -> None:
    with pytest.raises(ConfigError) as info:
        load(f"auth: {{token_hashes: [{H1}, my-plain-token]}}", {})
    assert info.value.key == "auth.token_hashes"
    assert "item 1" in str(info.value)
    assert "my-plain-token" not in str(info.value)
    with pytest.raises(ConfigError) as info:
        load(None, {"RSTMDB_AUTH_TOKEN_HASH": "secret" + "0" * 58})
    assert info.value.key == "RSTMDB_AUTH_TOKEN_HASH"
    assert "secret" not in str(info.value)
    assert error_of("auth: {token_hashes: abc}") == "auth.token_hashes"
    assert error_of("auth: {token_hashes: [12]}") == "auth.token_hashes"
    assert error_of(f"auth: {{token_hashes: ['{H1[:-1]}g']}}") == "auth.token_hashes"


def test_null_token_hash_list_is_empty() -> None:
    assert load("auth:\n  token_hashes:\n", {}).auth.token_hashes == frozenset()


# --- secrets file ------------------------------------------------------------------------------


def test_parse_secrets_skips_blank_and_comment_lines() -> None:
    text = f"# accepted tokens\n\n  {H1.upper()}  \r\n   # indented comment\n{H2}\n\t\n"
    assert parse_secrets(text) == frozenset({H1, H2})
    assert parse_secrets("") == frozenset()


def test_parse_secrets_reports_the_line_without_the_value() -> None:
    with pytest.raises(ConfigError) as info:
        parse_secrets(f"{H1}\n\nhunter2\n", "/etc/secrets")
    assert info.value.key == "auth.secrets_file"
    assert "/etc/secrets, line 3" in str(info.value)
    assert "hunter2" not in str(info.value)


def test_secrets_text_is_merged_before_validation() -> None:
    yaml_text = f"auth: {{required: true, secrets_file: /s, token_hashes: [{H1}]}}"
    cfg = load(yaml_text, {"RSTMDB_AUTH_TOKEN_HASH": H2}, secrets_text=f"{H3}\n")
    assert cfg.auth.token_hashes == frozenset({H1, H2, H3})


def test_auth_required_needs_a_hash() -> None:
    assert error_of("auth: {required: true}") == "auth.required"
    assert error_of(None, {"RSTMDB_AUTH_REQUIRED": "true"}) == "auth.required"
    key = error_of("auth: {required: true, secrets_file: /s}", secrets_text="# empty\n")
    assert key == "auth.required"
    with pytest.raises(ConfigError, match="was not read"):
        load("auth: {required: true, secrets_file: /s}", {})
    assert load(None, {"RSTMDB_AUTH_REQUIRED": "1", "RSTMDB_AUTH_TOKEN_HASH": H1}).auth.required


# --- fsync policy ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("yaml_value", "expected"),
    [
        ("every_write", FsyncPolicy("every_write")),
        ("never", FsyncPolicy("never")),
        ("{every_n: 50}", FsyncPolicy("every_n", 50)),
        ("{every_ms: 20}", FsyncPolicy("every_ms", 20)),
        ("'every_n:7'", FsyncPolicy("every_n", 7)),
        ("!every_n 30", FsyncPolicy("every_n", 30)),
        ("!every_ms 5", FsyncPolicy("every_ms", 5)),
        ("!never", FsyncPolicy("never")),
    ],
)
def test_fsync_policy_yaml_forms(yaml_value: str, expected: FsyncPolicy) -> None:
    cfg = load(f"storage:\n  fsync_policy: {yaml_value}\n", {})
    assert cfg.storage.fsync_policy == expected


@pytest.mark.parametrize(
    "yaml_value",
    [
        "sometimes",
        "{every_n: 0}",
        "{every_n: many}",
        "{every_n: 1, every_ms: 2}",
        "'every_n:x'",
        "!every_n x",
        "5",
        "[every_write]",
    ],
)
def test_bad_fsync_policy_in_yaml_fails(yaml_value: str) -> None:
    assert error_of(f"storage:\n  fsync_policy: {yaml_value}\n") == "storage.fsync_policy"


def test_unknown_yaml_tag_is_a_document_error_with_its_line() -> None:
    with pytest.raises(ConfigError, match=r"line 2.*unsupported tag !sometimes") as info:
        load("storage:\n  fsync_policy: !sometimes 3\n", {}, source="/r.yaml")
    assert info.value.key == "/r.yaml"


@pytest.mark.parametrize(
    ("env_value", "expected"),
    [
        ("every_n:50", FsyncPolicy("every_n", 50)),
        ("EVERY_MS:10", FsyncPolicy("every_ms", 10)),
        ("everywrite", FsyncPolicy("every_write")),
        ("Never", FsyncPolicy("never")),
    ],
)
def test_fsync_policy_env_forms(env_value: str, expected: FsyncPolicy) -> None:
    cfg = load("storage: {fsync_policy: never}", {"RSTMDB_FSYNC_POLICY": env_value})
    assert cfg.storage.fsync_policy == expected
    assert cfg.warnings == ()


def test_fsync_policy_env_bad_number_falls_back_to_100_with_a_warning() -> None:
    cfg = load(None, {"RSTMDB_FSYNC_POLICY": "every_n:lots"})
    assert cfg.storage.fsync_policy == FsyncPolicy("every_n", 100)
    assert len(cfg.warnings) == 1
    assert cfg.warnings[0].startswith("RSTMDB_FSYNC_POLICY:")
    assert "every_n:100" in cfg.warnings[0]
    assert load(None, {"RSTMDB_FSYNC_POLICY": "every_ms:0"}).storage.fsync_policy.amount == 100


def test_fsync_policy_env_unknown_falls_back_to_every_write_with_a_warning() -> None:
    cfg = load("storage: {fsync_policy: never}", {"RSTMDB_FSYNC_POLICY": "sometimes"})
    assert cfg.storage.fsync_policy == FsyncPolicy("every_write")
    assert cfg.warnings == ("RSTMDB_FSYNC_POLICY: unknown policy 'sometimes'; using every_write",)


# --- addresses ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("127.0.0.1:7401", ("127.0.0.1", 7401)),
        ("0.0.0.0:0", ("0.0.0.0", 0)),
        ("[::1]:65535", ("::1", 65535)),
        ("[::]:80", ("::", 80)),
        ("[fe80::1%eth0]:1", ("fe80::1%eth0", 1)),
        ("localhost:7401", ("localhost", 7401)),
        ("db-1.example.com:9", ("db-1.example.com", 9)),
        ("my_service:9", ("my_service", 9)),
    ],
)
def test_address_forms(text: str, expected: tuple[str, int]) -> None:
    assert parse_address(text) == expected
    assert format_address(*expected) == text
    assert load(None, {"RSTMDB_BIND": text}).network.bind_host == expected[0]


@pytest.mark.parametrize(
    "text",
    [
        *("7401", "127.0.0.1", "127.0.0.1:", ":7401", "127.0.0.1:65536", "127.0.0.1:-1"),
        *("127.0.0.1:+80", "256.0.0.1:80", "1.2.3:80", "::1:80", "[::g]:80", "[::1]80"),
        *("bad host:80", "-lead.example:80", "a..b:80", "host:８０", "127.0.0.1:80x"),
    ],
)
def test_bad_addresses_fail(text: str) -> None:
    with pytest.raises(ValueError):
        parse_address(text)
    assert error_of(None, {"RSTMDB_BIND": text}) == "RSTMDB_BIND"
    assert error_of(None, {"RSTMDB_METRICS_BIND": text}) == "RSTMDB_METRICS_BIND"
    assert error_of(f"network: {{bind_addr: '{text}'}}") == "network.bind_addr"
    assert error_of(f"metrics: {{bind_addr: '{text}'}}") == "metrics.bind_addr"


# --- environment errors ------------------------------------------------------------------------

INT_VARS = [
    "RSTMDB_IDLE_TIMEOUT",
    "RSTMDB_MAX_CONNECTIONS",
    "RSTMDB_WAL_SEGMENT_SIZE_MB",
    "RSTMDB_MAX_MACHINE_VERSIONS",
    "RSTMDB_IDEMPOTENCY_TTL_SECS",
    "RSTMDB_IDEMPOTENCY_MAX_KEYS",
    "RSTMDB_COMPACT_EVENTS",
    "RSTMDB_COMPACT_SIZE_MB",
    "RSTMDB_COMPACT_INTERVAL",
    "RSTMDB_SUBSCRIPTION_BUFFER",
]


@pytest.mark.parametrize("var", INT_VARS)
@pytest.mark.parametrize("value", ["abc", "1.5", "-1", "12 34", "0x10"])
def test_unparsable_env_numbers_fail_naming_the_variable(var: str, value: str) -> None:
    with pytest.raises(ConfigError) as info:
        load(None, {var: value})
    assert info.value.key == var
    assert str(info.value).startswith(f"{var}: ")


@pytest.mark.parametrize(
    "var",
    [
        "RSTMDB_IDLE_TIMEOUT",
        "RSTMDB_MAX_CONNECTIONS",
        "RSTMDB_WAL_SEGMENT_SIZE_MB",
        "RSTMDB_IDEMPOTENCY_TTL_SECS",
        "RSTMDB_IDEMPOTENCY_MAX_KEYS",
        "RSTMDB_SUBSCRIPTION_BUFFER",
    ],
)
def test_zero_is_rejected_where_it_makes_no_sense(var: str) -> None:
    assert error_of(None, {var: "0"}) == var


def test_zero_thresholds_are_allowed() -> None:
    env = {"RSTMDB_COMPACT_EVENTS": "0", "RSTMDB_COMPACT_SIZE_MB": "0"}
    env |= {"RSTMDB_COMPACT_INTERVAL": "0", "RSTMDB_MAX_MACHINE_VERSIONS": "0"}
    cfg = load(None, env)
    assert cfg.compaction == CompactionConfig(True, 0, 0, 0)
    assert cfg.storage.max_machine_versions == 0


def test_segment_size_upper_bound() -> None:
    assert error_of(None, {"RSTMDB_WAL_SEGMENT_SIZE_MB": str(1 << 20)}) == (
        "RSTMDB_WAL_SEGMENT_SIZE_MB"
    )
    cfg = load(None, {"RSTMDB_WAL_SEGMENT_SIZE_MB": "1024"})
    assert cfg.storage.wal_segment_size_mb == 1024


def test_bad_log_level_and_format_in_env_fail() -> None:
    assert error_of(None, {"RSTMDB_LOG_LEVEL": "loud"}) == "RSTMDB_LOG_LEVEL"
    assert error_of(None, {"RSTMDB_LOG_FORMAT": "xml"}) == "RSTMDB_LOG_FORMAT"


def test_unknown_rstmdb_variables_are_noted() -> None:
    env = {"RSTMDB_BND": "x", "RSTMDB_CONFIG": "/c.yaml", "RSTMDB_TOKEN": "t", "HOME": "/root"}
    assert load(None, env).warnings == ("unknown environment variable RSTMDB_BND ignored",)


# --- YAML errors -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("yaml_text", "key"),
    [
        ("network: {max_connections: many}", "network.max_connections"),
        ("network: {max_connections: true}", "network.max_connections"),
        ("network: {max_connections: 1.5}", "network.max_connections"),
        ("network: {max_connections: 0}", "network.max_connections"),
        ("network: {idle_timeout_secs: 0}", "network.idle_timeout_secs"),
        ("network: {idle_timeout_secs: null}", "network.idle_timeout_secs"),
        ("network: {bind_addr: 7401}", "network.bind_addr"),
        ("storage: {wal_segment_size_mb: 0}", "storage.wal_segment_size_mb"),
        ("storage: {max_machine_versions: -1}", "storage.max_machine_versions"),
        ("storage: {data_dir: 5}", "storage.data_dir"),
        ("storage: {data_dir: ''}", "storage.data_dir"),
        ("storage: {allow_flush_all: 'yes'}", "storage.allow_flush_all"),
        ("storage: {idempotency_ttl_secs: 0}", "storage.idempotency_ttl_secs"),
        ("storage: {idempotency_max_keys: -5}", "storage.idempotency_max_keys"),
        ("compaction: {enabled: 1}", "compaction.enabled"),
        ("compaction: {events_threshold: -1}", "compaction.events_threshold"),
        ("compaction: {size_threshold_mb: '100'}", "compaction.size_threshold_mb"),
        ("compaction: {min_interval_secs: -1}", "compaction.min_interval_secs"),
        ("auth: {required: 'true'}", "auth.required"),
        ("auth: {secrets_file: [a]}", "auth.secrets_file"),
        ("tls: {enabled: on_request}", "tls.enabled"),
        ("tls: {cert_path: 1}", "tls.cert_path"),
        ("tls: {key_path: {a: 1}}", "tls.key_path"),
        ("tls: {require_client_cert: 0}", "tls.require_client_cert"),
        ("tls: {client_ca_path: ''}", "tls.client_ca_path"),
        ("metrics: {enabled: null}", "metrics.enabled"),
        ("logging: {level: loud}", "logging.level"),
        ("logging: {format: xml}", "logging.format"),
        ("subscriptions: {buffer_events: 0}", "subscriptions.buffer_events"),
        ("network: [1, 2]", "network"),
        ("storage: fast", "storage"),
    ],
)
def test_wrong_yaml_values_fail_naming_the_key(yaml_text: str, key: str) -> None:
    assert error_of(yaml_text) == key


def test_yaml_document_must_be_a_mapping() -> None:
    assert error_of("- a\n- b\n") == "config file"
    assert error_of("just text", source="/etc/rstmdb.yaml") == "/etc/rstmdb.yaml"


def test_yaml_syntax_error_reports_the_line() -> None:
    with pytest.raises(ConfigError) as info:
        load("network:\n  bind_addr: [unclosed\nstorage: {}\n", {}, source="/etc/r.yaml")
    assert info.value.key == "/etc/r.yaml"
    assert re.search(r"line \d+, column \d+", str(info.value))
    with pytest.raises(ConfigError, match="line 2"):
        load("network:\n\tmax_connections: 1\n", {})


def test_unknown_yaml_keys_and_sections_are_ignored_with_warnings() -> None:
    yaml_text = "replication: {role: primary}\nnetwork: {bind_adr: x, max_connections: 4}\n"
    cfg = load(yaml_text, {})
    assert cfg.network.max_connections == 4
    assert cfg.warnings == (
        "unknown configuration section replication ignored",
        "unknown configuration key network.bind_adr ignored",
    )


def test_null_section_and_null_optional_path_are_empty() -> None:
    cfg = load("network:\ntls:\n  cert_path: null\n", {})
    assert cfg.network == NetworkConfig()
    assert cfg.tls.cert_path is None


# --- TLS validation ----------------------------------------------------------------------------


def test_tls_enabled_needs_cert_and_key() -> None:
    assert error_of("tls: {enabled: true}") == "tls.cert_path"
    assert error_of("tls: {enabled: true, cert_path: /c}") == "tls.key_path"
    assert error_of(None, {"RSTMDB_TLS_ENABLED": "1", "RSTMDB_TLS_KEY": "/k"}) == "tls.cert_path"
    cfg = load(None, {"RSTMDB_TLS_ENABLED": "1", "RSTMDB_TLS_CERT": "/c", "RSTMDB_TLS_KEY": "/k"})
    assert cfg.tls == TlsConfig(True, "/c", "/k", False, None)


def test_client_certificates_need_a_ca_and_tls() -> None:
    tls = "tls: {enabled: true, cert_path: /c, key_path: /k, require_client_cert: true}"
    with pytest.raises(ConfigError) as info:
        load(tls, {})
    assert info.value.key == "tls.client_ca_path"
    assert "RSTMDB_TLS_CLIENT_CA" in str(info.value)
    env = {"RSTMDB_TLS_REQUIRE_CLIENT_CERT": "true", "RSTMDB_TLS_CLIENT_CA": "/ca"}
    assert error_of(None, env) == "tls.require_client_cert"


def test_tls_paths_are_not_checked_when_tls_is_off() -> None:
    cfg = load("tls: {cert_path: /c}", {})
    assert cfg.tls == TlsConfig(False, "/c", None, False, None)


# --- load_from_environment ---------------------------------------------------------------------


def test_load_from_environment_reads_rstmdb_config_and_secrets(tmp_path: Path) -> None:
    secrets = tmp_path / "secrets"
    secrets.write_text(f"# tokens\n{H2.upper()}\n", encoding="utf-8")
    cfg_file = tmp_path / "rstmdb.yaml"
    cfg_file.write_text(
        f"auth:\n  required: true\n  secrets_file: {secrets}\n  token_hashes: [{H1}]\n"
        "network:\n  max_connections: 5\n",
        encoding="utf-8",
    )
    env = {"RSTMDB_CONFIG": str(cfg_file), "RSTMDB_AUTH_TOKEN_HASH": H3}
    cfg = load_from_environment(env)
    assert cfg.auth.token_hashes == frozenset({H1, H2, H3})
    assert cfg.network.max_connections == 5


def test_load_from_environment_prefers_the_explicit_path(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text("network: {max_connections: 1}", encoding="utf-8")
    (tmp_path / "b.yaml").write_text("network: {max_connections: 2}", encoding="utf-8")
    env = {"RSTMDB_CONFIG": str(tmp_path / "a.yaml")}
    cfg = load_from_environment(env, str(tmp_path / "b.yaml"), {"data_dir": "/x"})
    assert cfg.network.max_connections == 2
    assert cfg.storage.data_dir == "/x"


def test_load_from_environment_without_a_file() -> None:
    assert load_from_environment({"RSTMDB_BIND": "127.0.0.1:0"}).bind_addr == "127.0.0.1:0"


def test_unreadable_files_name_the_path(tmp_path: Path) -> None:
    missing = str(tmp_path / "missing.yaml")
    with pytest.raises(ConfigError) as info:
        load_from_environment({"RSTMDB_CONFIG": missing})
    assert info.value.key == "RSTMDB_CONFIG"
    assert missing in str(info.value)
    with pytest.raises(ConfigError) as info:
        load_from_environment({}, missing)
    assert info.value.key == "config"
    gone = str(tmp_path / "gone")
    with pytest.raises(ConfigError) as info:
        load_from_environment({"RSTMDB_AUTH_SECRETS_FILE": gone})
    assert info.value.key == "auth.secrets_file"
    assert gone in str(info.value)


def test_file_yaml_errors_name_the_file(tmp_path: Path) -> None:
    cfg_file = tmp_path / "bad.yaml"
    cfg_file.write_text("network: [\n", encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_from_environment({"RSTMDB_CONFIG": str(cfg_file)})
    assert info.value.key == str(cfg_file)
    cfg_file.write_bytes(b"\xff\xfe\x00")
    with pytest.raises(ConfigError):
        load_from_environment({"RSTMDB_CONFIG": str(cfg_file)})


def test_bad_hash_in_secrets_file(tmp_path: Path) -> None:
    secrets = tmp_path / "secrets"
    secrets.write_text(f"{H1}\nnot-a-hash\n", encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_from_environment({"RSTMDB_AUTH_SECRETS_FILE": str(secrets)})
    assert info.value.key == "auth.secrets_file"
    assert "line 2" in str(info.value)


# --- documentation stays in step with the key tables ----------------------------------------


def test_every_key_and_variable_is_documented() -> None:
    docs = (ROOT / "docs" / "CONFIGURATION.md").read_text(encoding="utf-8")
    module_doc = config_module.__doc__ or ""
    names = list(config_module._KEYS) + [var.name for var in config_module._ENV]
    for name in names:
        assert f"`{name}`" in docs, name
        assert f"``{name}``" in module_doc, name
