"""The ops files under deploy/: Dockerfiles and systemd units, checked by real parsers."""

from __future__ import annotations

import configparser
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from dockerfile_parse import DockerfileParser

from gateway.paths import REPO_ROOT

DOCKER = REPO_ROOT / "deploy" / "docker"
TEST_ONLY_R_PACKAGES = {"r-cran-testthat", "r-cran-httr"}


def makefile_apt_packages() -> set[str]:
    text = (REPO_ROOT / "Makefile").read_text(encoding="utf-8").replace("\\\n", " ")
    match = re.search(r"^APT_PACKAGES :=(.*)$", text, re.MULTILINE)
    assert match is not None
    return set(match.group(1).split())


def parse(name: str) -> DockerfileParser:
    parser = DockerfileParser(path=str(DOCKER / name))
    return parser


def instructions(parser: DockerfileParser, kind: str) -> list[str]:
    return [item["value"] for item in parser.structure if item["instruction"] == kind]


def installed_packages(parser: DockerfileParser) -> set[str]:
    packages: set[str] = set()
    for command in instructions(parser, "RUN"):
        for install in re.findall(r"apt-get install ([^&]*)", command):
            assert "--no-install-recommends" in install
            packages |= {word for word in install.split() if not word.startswith("-")}
    return packages


@pytest.mark.parametrize("name", ["gateway.Dockerfile", "r-worker.Dockerfile"])
def test_images_are_debian_bookworm_non_root_with_a_health_check(name: str) -> None:
    parser = parse(name)
    assert parser.baseimage.startswith("debian:bookworm")
    users = instructions(parser, "USER")
    assert users and users[-1] not in ("root", "0")
    assert instructions(parser, "HEALTHCHECK")
    for source in instructions(parser, "COPY"):
        for path in source.split()[:-1]:
            assert (REPO_ROOT / path).exists(), f"{name} copies {path}, which is not in the repository"


def test_the_r_worker_image_installs_the_runtime_r_packages_make_installs() -> None:
    wanted = {p for p in makefile_apt_packages() if p.startswith("r-")} - TEST_ONLY_R_PACKAGES
    assert wanted <= installed_packages(parse("r-worker.Dockerfile"))


def test_the_gateway_image_installs_nginx_as_make_does() -> None:
    nginx = {p for p in makefile_apt_packages() if p.startswith("nginx")}
    assert nginx and nginx <= installed_packages(parse("gateway.Dockerfile"))


@pytest.mark.parametrize(("unit_name", "command"), [("gateway.service", "up"), ("gateway-worker.service", "worker")])
def test_systemd_units_run_attached_so_sigterm_stops_everything(unit_name: str, command: str) -> None:
    unit = configparser.ConfigParser(strict=True, interpolation=None)
    unit.optionxform = str  # type: ignore[assignment,method-assign]  # systemd keys are case-sensitive
    unit.read(REPO_ROOT / "deploy" / "systemd" / unit_name, encoding="utf-8")
    service = unit["Service"]
    assert service["ExecStart"].split()[1:3] == [command, "--config"]
    assert "--detach" not in service["ExecStart"]
    assert service["KillMode"] == "mixed"  # SIGTERM to the gateway command alone, which stops the rest
    assert unit["Install"]["WantedBy"] == "multi-user.target"


@pytest.mark.parametrize("unit_name", ["gateway.service", "gateway-worker.service"])
def test_systemd_units_verify_where_systemd_analyze_exists(tmp_path: Path, unit_name: str) -> None:
    """`systemd-analyze verify` when the machine has it; the structural test above always runs."""
    analyze = shutil.which("systemd-analyze")
    unit = (REPO_ROOT / "deploy" / "systemd" / unit_name).read_text(encoding="utf-8")
    if analyze is None:
        assert "ExecStart=" in unit
        return
    # Point the unit at this checkout, as an operator adjusts the paths on install.
    local = unit.replace("/opt/gateway", str(REPO_ROOT)).replace("User=gateway", "User=root")
    local = local.replace("Group=gateway", "Group=root").replace("/etc/gateway/gateway.env", str(tmp_path / "env"))
    (tmp_path / "env").write_text("WORKER_ADDRESS=198.18.1.2\n", encoding="utf-8")
    path = tmp_path / unit_name
    path.write_text(local, encoding="utf-8")
    result = subprocess.run([analyze, "verify", str(path)], capture_output=True, text=True, check=False, timeout=60)
    problems = [line for line in result.stderr.splitlines() if unit_name in line]
    assert result.returncode == 0 and not problems, result.stderr
