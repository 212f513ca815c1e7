"""renv.lock records every R package `make` installs, at the versions installed here."""

from __future__ import annotations

import json
import os
import re
import subprocess

from gateway.paths import REPO_ROOT

LOCK = json.loads((REPO_ROOT / "renv.lock").read_text(encoding="utf-8"))


def makefile_r_packages() -> list[str]:
    text = (REPO_ROOT / "Makefile").read_text(encoding="utf-8").replace("\\\n", " ")
    packages = re.search(r"^APT_PACKAGES :=(.*)$", text, re.MULTILINE)
    assert packages is not None
    return [name.removeprefix("r-cran-") for name in packages.group(1).split() if name.startswith("r-cran-")]


def test_every_r_package_make_installs_is_locked() -> None:
    locked = {name.lower() for name in LOCK["Packages"]}
    wanted = makefile_r_packages()
    assert "plumber" in wanted
    assert [name for name in wanted if name not in locked] == []


def test_locked_versions_are_the_installed_ones() -> None:
    code = ("v <- vapply(commandArgs(TRUE), function(p) utils::packageDescription(p)$Version, ''); "
            "cat(paste(names(v), v, sep = '='), sep = '\\n'); cat('R=', as.character(getRversion()), '\\n', sep = '')")
    result = subprocess.run(["Rscript", "-e", code, *LOCK["Packages"]], capture_output=True, text=True,
                            env={**os.environ, "R_LIBS": str(REPO_ROOT / ".rlib")}, check=True, timeout=60)
    installed = dict(line.split("=", 1) for line in result.stdout.split())
    assert installed.pop("R") == LOCK["R"]["Version"]
    assert installed == {name: entry["Version"] for name, entry in LOCK["Packages"].items()}
