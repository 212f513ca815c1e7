"""deploy/prometheus: promtool accepts the config and the rules, and the alerts' own unit tests pass."""

from __future__ import annotations

import subprocess

import pytest

from gateway.paths import REPO_ROOT

PROMTOOL = REPO_ROOT / ".tools" / "promtool"  # `make deps` extracts it from Debian's prometheus
PROMETHEUS_DIR = REPO_ROOT / "deploy" / "prometheus"


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["check", "rules", "alerts.yml"], "SUCCESS: 7 rules found"),
        (["check", "config", "prometheus.yml"], "is valid prometheus config file syntax"),
        (["test", "rules", "alerts_test.yml"], "SUCCESS"),
    ],
)
def test_promtool_accepts_the_prometheus_files(args: list[str], expected: str) -> None:
    assert PROMTOOL.is_file(), "run `make deps`: it extracts promtool into .tools/"
    result = subprocess.run([str(PROMTOOL), *args], cwd=PROMETHEUS_DIR, capture_output=True, text=True,
                            timeout=60, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    assert expected in result.stdout
