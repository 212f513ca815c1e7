"""The R packages a Plumber script needs, checked at `gateway register` and `gateway up`.

A script whose package is missing would otherwise start, then fail on its first request (or
never start, leaving only R's words in a worker log). R reads the scripts without running them
(gatewayr::missing_script_packages); one Rscript call covers every script.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from gateway.errors import ConfigError
from gateway.rscript import run_rscript

if TYPE_CHECKING:
    from gateway.settings import Settings
    from gateway.topology import Plan

log = logging.getLogger(__name__)

_CHECK = """
args <- commandArgs(trailingOnly = TRUE)
for (i in seq(1, length(args), by = 2)) {
  missing <- tryCatch(gatewayr::missing_script_packages(args[[i + 1]]), error = function(e) e)
  if (inherits(missing, "error")) {
    cat(args[[i]], "", "", conditionMessage(missing), sep = "\\t"); cat("\\n")
  } else for (j in seq_len(nrow(missing))) {
    cat(args[[i]], missing$package[[j]], missing$file[[j]], missing$why[[j]], sep = "\\t"); cat("\\n")
  }
}
"""


def check_script_packages(scripts: Mapping[str, Path]) -> None:
    """Raise ConfigError (one line per model) when a script needs an R package not installed.

    `scripts` maps a model name to its script, entrypoint.R or directory.
    """
    if not scripts:
        return
    args = [str(part) for name, path in scripts.items() for part in (name, path)]
    problems: dict[str, list[tuple[str, str, str]]] = {}
    for line in run_rscript(["-e", _CHECK, *args]).splitlines():
        name, package, file, why = [*line.split("\t", 3), "", "", ""][:4]
        problems.setdefault(name, []).append((package, file, why))
    if problems:
        raise ConfigError("\n".join(_problem_line(name, found) for name, found in problems.items()))


def check_pool_scripts(settings: Settings, plan: Plan) -> None:
    """`gateway up`: every script this host's R pools will serve has its packages.

    An `optional` model's problem is logged, not raised: the others still start.
    """
    pools = [p for p in [*plan.pools.values(), *plan.extra_pools.values()] if p.kind == "script" and p.workers]
    # Rollout pools serve other stored versions of the same model: each is checked, named by version.
    label = {p.key: p.model if p.primary else f"{p.model}' version '{p.version}" for p in pools}
    required = {label[p.key]: Path(p.target) for p in pools if not settings.models[p.model].optional}
    for pool in (p for p in pools if settings.models[p.model].optional):
        try:
            check_script_packages({label[pool.key]: Path(pool.target)})
        except ConfigError as exc:
            log.warning("optional model %s will not serve: %s", pool.model, exc)
    check_script_packages(required)


def _problem_line(name: str, found: list[tuple[str, str, str]]) -> str:
    unreadable = [why for package, _, why in found if not package]
    if unreadable:
        return f"model '{name}': {unreadable[0]}"
    uses = ", ".join(f"'{package}' (for {why} in {file})" for package, file, why in found)
    debian = " ".join(f"r-cran-{package.lower()}" for package, _, _ in found)
    if len(found) == 1:
        return (f"model '{name}' needs the R package {uses}, which is not installed; "
                f"install the Debian package: apt-get install {debian}")
    return (f"model '{name}' needs R packages that are not installed: {uses}; "
            f"install the Debian packages: apt-get install {debian}")
