"""``rstmdb-cli`` over TLS and mTLS: flags, environment and failures."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import trustme
from cli_support import RunCli, no_traceback


def _files(base: Path) -> dict[str, str]:
    ca, client_ca = trustme.CA(), trustme.CA()
    server = ca.issue_cert("127.0.0.1", "localhost")
    client = client_ca.issue_cert("client.example")
    paths = {
        name: base / f"{name}.pem" for name in ("ca", "client_ca", "cert", "key", "ccert", "ckey")
    }
    ca.cert_pem.write_to_path(str(paths["ca"]))
    client_ca.cert_pem.write_to_path(str(paths["client_ca"]))
    paths["cert"].write_bytes(b"".join(b.bytes() for b in server.cert_chain_pems))
    server.private_key_pem.write_to_path(str(paths["key"]))
    paths["ccert"].write_bytes(b"".join(b.bytes() for b in client.cert_chain_pems))
    client.private_key_pem.write_to_path(str(paths["ckey"]))
    return {name: str(path) for name, path in paths.items()}


@pytest.mark.slow
def test_tls_flags_and_environment(run_cli: RunCli, rstmdb_server: Any, tmp_path: Path) -> None:
    pem = _files(tmp_path)
    tls = {
        "RSTMDB_TLS_ENABLED": "true",
        "RSTMDB_TLS_CERT": pem["cert"],
        "RSTMDB_TLS_KEY": pem["key"],
    }
    mtls = rstmdb_server(
        env={
            **tls,
            "RSTMDB_TLS_REQUIRE_CLIENT_CERT": "true",
            "RSTMDB_TLS_CLIENT_CA": pem["client_ca"],
        }
    )
    good = run_cli(
        "--ca-cert",
        pem["ca"],
        "--client-cert",
        pem["ccert"],
        "--client-key",
        pem["ckey"],
        "ping",
        server=mtls,
    )
    assert good.stdout == "PONG\n", good.stderr
    by_env = run_cli(
        "ping",
        server=mtls,
        env={
            "RSTMDB_CA_CERT": pem["ca"],
            "RSTMDB_CLIENT_CERT": pem["ccert"],
            "RSTMDB_CLIENT_KEY": pem["ckey"],
        },
    )
    assert by_env.stdout == "PONG\n", by_env.stderr
    anonymous = run_cli("--ca-cert", pem["ca"], "ping", server=mtls)
    assert anonymous.returncode == 1
    assert anonymous.stderr.startswith(f"Connection failed: {mtls.address}: ")
    plain = rstmdb_server(env=tls)
    unverified = run_cli("--tls", "ping", server=plain)
    assert unverified.returncode == 1
    assert "certificate verification failed" in unverified.stderr
    assert run_cli("-k", "ping", server=plain).stdout == "PONG\n"
    named = run_cli("--ca-cert", pem["ca"], "--server-name", "localhost", "ping", server=plain)
    assert named.stdout == "PONG\n"
    assert no_traceback(anonymous.stderr, unverified.stderr)


@pytest.mark.slow
def test_a_plain_connection_to_a_tls_server_suggests_tls(
    run_cli: RunCli, rstmdb_server: Any, tmp_path: Path
) -> None:
    pem = _files(tmp_path)
    server = rstmdb_server(
        env={
            "RSTMDB_TLS_ENABLED": "true",
            "RSTMDB_TLS_CERT": pem["cert"],
            "RSTMDB_TLS_KEY": pem["key"],
        }
    )
    plain = run_cli("ping", server=server)
    assert plain.returncode == 1 and len(plain.stderr.splitlines()) == 1
    assert plain.stderr.startswith(f"Connection failed: {server.address}: ")
    assert "try --tls" in plain.stderr
    with_tls = run_cli("ping", "--ca-cert", pem["ca"], server=server)  # option after the command
    assert with_tls.stdout == "PONG\n", with_tls.stderr
