"""`gateway certs`: a CA and host certificates that TLS stacks accept, keys private."""

from __future__ import annotations

import ssl
import stat
import subprocess
from pathlib import Path

import pytest

from gateway.certs import CA_CERT, CA_KEY, init_ca, issue
from gateway.errors import ConfigError


def test_keys_are_private_and_a_host_certificate_verifies_against_the_ca(tmp_path: Path) -> None:
    init_ca(tmp_path)
    cert, key = issue(tmp_path, "198.18.1.2")
    for path in (tmp_path / CA_KEY, key):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
    for purpose in ("sslserver", "sslclient"):  # one certificate serves both ends of a hop
        verified = subprocess.run(["openssl", "verify", "-CAfile", str(tmp_path / CA_CERT), "-purpose", purpose,
                                   str(cert)], capture_output=True, text=True, check=False)
        assert verified.returncode == 0, verified.stdout + verified.stderr
    context = ssl.create_default_context(cafile=str(tmp_path / CA_CERT))
    context.load_cert_chain(str(cert), str(key))  # the pair matches


def test_init_refuses_to_replace_a_ca_and_issue_needs_one(tmp_path: Path) -> None:
    init_ca(tmp_path / "ca")
    with pytest.raises(ConfigError, match="exists already"):
        init_ca(tmp_path / "ca")
    with pytest.raises(ConfigError, match="gateway certs init"):
        issue(tmp_path / "none", "worker-1")
