"""Run a short R script with the project's R library: registration checks, demo builds."""

from __future__ import annotations

import os
import subprocess

from gateway.errors import ConfigError
from gateway.paths import REPO_ROOT


def run_rscript(args: list[str], refusal: str | None = None) -> str:
    """`Rscript args...` with gatewayr on R_LIBS; its stdout. Raises ConfigError with R's stderr.

    Exit status 3 is R code refusing on purpose (its message alone on stderr): one line,
    prefixed with `refusal`.
    """
    env = {**os.environ, "R_LIBS": str(REPO_ROOT / ".rlib")}
    result = subprocess.run(["Rscript", *args], capture_output=True, text=True, env=env, check=False)
    if result.returncode == 3 and refusal is not None:
        raise ConfigError(f"{refusal}: {' '.join(result.stderr.split())}")
    if result.returncode != 0:
        raise ConfigError(f"R failed: {result.stderr.strip()[-2000:]}")
    return result.stdout
