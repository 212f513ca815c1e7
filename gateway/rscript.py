"""Run a short R script with the project's R library: registration checks, demo builds."""

from __future__ import annotations

import os
import subprocess

from gateway.errors import ConfigError
from gateway.rlib import ensure_r_library, library_dir


def run_rscript(args: list[str], refusal: str | None = None, *, install: bool = True) -> str:
    """`Rscript args...` with gatewayr on R_LIBS; its stdout. Raises ConfigError with R's stderr.

    gatewayr is installed first unless current (gateway.rlib); `install=False` (doctor's
    checks, which only look) uses the library as it is. Exit status 3 is R code refusing on
    purpose (its message alone on stderr): one line, prefixed with `refusal`.
    """
    library = ensure_r_library() if install else library_dir()
    env = {**os.environ, "R_LIBS": str(library)}
    result = subprocess.run(["Rscript", *args], capture_output=True, text=True, env=env, check=False)
    if result.returncode == 3 and refusal is not None:
        raise ConfigError(f"{refusal}: {' '.join(result.stderr.split())}")
    if result.returncode != 0:
        raise ConfigError(f"R failed: {result.stderr.strip()[-2000:]}")
    return result.stdout
